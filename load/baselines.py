"""Same-run ceilings that put Orion's numbers in proportion.

- HTTP ceiling: bare uvicorn (a subprocess on 127.0.0.1, a free port, stopped by its pid)
  serving load/bare_app.py, the same endpoints with the same validation and no Kafka or
  Redis, hit with the scenario's own load shape and client count for a bounded time.
- Database ceiling: orion.adapters.ledger.apply_batch called directly on one connection,
  batches of 1,000, for as many transfers as the scenario sends, between fresh accounts of
  its own (a random 18-digit range, currency CHF): nobody else's account is touched, and
  kafka_partition/offset 0 keeps its rows out of the audit's per-account order comparison.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from load.shapes import LoadShape, new_id_prefix, transfer_id
from orion.adapters import ledger, ledger_seed
from orion.config import Settings
from orion.domain.model import Transfer
from orion.messages import AcceptedTransfer, QueuedTransfer
from orion.seeding import plan_seed

LOAD_ROOT = Path(__file__).resolve().parent.parent  # the checkout: `load` imports from here
SERVER_READY_S = 30.0  # uvicorn imports FastAPI and binds well within this
SERVER_STOP_S = 10.0
DB_CURRENCY = "CHF"  # no Orion transfer uses it: the ceiling's money never meets real money
DB_FIRST_ACCOUNT_BASE = 900_000_000_000_000_000  # 18 digits: outside the 17-digit seed range
DB_RANGE_STRIDE = 10_000_000  # accounts per random range slot (the pool is far smaller)
DB_BALANCE_MAJOR = "1000000"  # each account's opening balance: no transfer is ever refused
DB_BATCH_TRANSFERS = 1_000  # what a shard applies in one transaction at most
DB_CEILING_S_MAX = 600.0  # the apply loop stops here even if transfers remain
DB_AMOUNT_MINOR = 100  # 1.00 CHF, like the scenarios' amount 1
BENCH_SHARD = -1  # no real shard has it: these rows are the benchmark's


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def bare_server(app_spec: str, log_file: Path) -> Iterator[str]:
    """Run `uvicorn app_spec` on 127.0.0.1:<free port>; yield its base URL; stop it by pid."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app_spec,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--app-dir",
        str(LOAD_ROOT),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=LOAD_ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, SERVER_READY_S, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=SERVER_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=SERVER_STOP_S)


def wait_healthy(
    base: str,
    timeout_s: float,
    proc: subprocess.Popen[bytes] | None = None,
    path: str = "/healthz",
) -> None:
    """GET {base}{path} until 200; RuntimeError after `timeout_s` or if `proc` exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base}{path}", timeout=2.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {base} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base}{path} did not answer 200 within {timeout_s:.0f} s")
        time.sleep(0.2)


def db_shape(shape: LoadShape) -> LoadShape:
    """The scenario's pairing over a fresh CHF account range, with fresh ids."""
    first = DB_FIRST_ACCOUNT_BASE + secrets.randbelow(10**10) * DB_RANGE_STRIDE
    return replace(shape, first_account=first, currency=DB_CURRENCY, id_prefix=new_id_prefix())


def db_ceiling(settings: Settings, shape: LoadShape) -> dict[str, Any]:
    """Seed `shape`'s fresh accounts, then apply its transfers in batches; time the applies."""
    plan = plan_seed(shape.first_account, shape.accounts, DB_BALANCE_MAJOR, shape.currency)
    seeded = ledger_seed.seed(settings.postgres_dsn, plan)
    applied, apply_s, statuses = 0, 0.0, Counter[str]()
    wall = time.monotonic()
    with ledger.connect(settings.postgres_dsn) as conn:
        for start in range(0, shape.count, DB_BATCH_TRANSFERS):
            if time.monotonic() - wall > DB_CEILING_S_MAX:
                break
            batch = _queued(shape, range(start, min(start + DB_BATCH_TRANSFERS, shape.count)))
            began = time.perf_counter()
            outcomes = ledger.apply_batch(conn, batch, str(uuid.uuid4()), BENCH_SHARD)
            apply_s += time.perf_counter() - began
            applied += len(outcomes)
            statuses.update(o.status for o in outcomes)
    return {
        "transfers": applied,
        "batch_transfers": DB_BATCH_TRANSFERS,
        "apply_s": round(apply_s, 3),
        "transfers_per_s": round(applied / apply_s, 1) if apply_s else None,
        "statuses": dict(statuses),
        "accounts": f"{plan.first}..{plan.last} {plan.currency}",
        "seed_s": round(seeded.seconds, 2),
    }


def _queued(shape: LoadShape, indices: range) -> list[QueuedTransfer]:
    now_ms = int(time.time() * 1000)
    out = []
    for i in indices:
        debit, credit = shape.accounts_of(i)
        transfer = Transfer(
            transfer_id(shape.id_prefix, i), debit, credit, DB_AMOUNT_MINOR, shape.currency
        )
        # partition 0, offset 0 for every row: these accounts see no other transfers, and
        # rows with equal coordinates are never compared by the audit's order check.
        out.append(QueuedTransfer(AcceptedTransfer(transfer, now_ms), partition=0, offset=0))
    return out

"""The harness of the fault tests: bounded seed-shaped load, a fault in the middle, and the
accounting every fault test asserts (each accepted transfer settled exactly once, nothing
else applied, the API back within a bound, no crash loop).

Load goes to the API on loopback only, from a few threads, bounded in time and count. Each
request carries its own transaction id, so "applied twice" is measured per id.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from orion.adapters import kafka as kafka_adapter
from orion.config import Settings
from orion.infra.process import Managed
from tests.e2e.conftest import wait_settled

CLIENTS = 6  # closed-loop client threads: a steady few hundred requests/s on this box
REQUESTS_MAX = 40_000  # per run, whatever the duration: bounds memory and settling time
CLIENT_TIMEOUT_S = 15.0  # the API answers 503 within ~12 s when the broker does not ack
PAUSE_AFTER_ERROR_S = 0.05  # a failing client backs off a little, as a real one would
CLI_TIMEOUT_S = 300.0
REPORT = Path(__file__).resolve().parents[2] / "load" / "out" / "faults.json"
SEED_ACCOUNT_BASE = 40_817_810_000_000_000


@dataclass
class Answer:
    sent: float  # time.monotonic() when the request went out
    at: float  # time.monotonic() when the answer came
    status: int  # HTTP status; 0 for no answer (connection refused, timeout)
    transfer_id: str


@dataclass
class Load:
    """Closed-loop POST /transactions/ between `accounts` until stopped (bounded)."""

    base_url: str
    first_account: int
    accounts: int
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(CLIENT_TIMEOUT_S + 5)

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT_S) as client:
            while not self._stop.is_set() and len(self.answers) < REQUESTS_MAX:
                sent = time.monotonic()
                status, tid = self._post(client, rng)
                with self._lock:
                    self.answers.append(Answer(sent, time.monotonic(), status, tid))
                if status >= 300 or status == 0:
                    time.sleep(PAUSE_AFTER_ERROR_S)

    def _post(self, client: httpx.Client, rng: random.Random) -> tuple[int, str]:
        a, b = rng.sample(range(self.accounts), 2)
        tid = str(uuid.uuid4())
        body = {
            "sender_account": str(self.first_account + a),
            "receiver_account": str(self.first_account + b),
            "amount": 1,
            "transaction_id": tid,
        }
        try:
            return client.post("/transactions/", json=body).status_code, tid
        except httpx.HTTPError:
            return 0, tid

    def accepted(self) -> list[str]:
        return [a.transfer_id for a in self.answers if 200 <= a.status < 300]

    def first_success_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first 2xx answer to a request sent after it; None if
        none came (a request already in flight when the fault hit does not count)."""
        times = [a.at for a in list(self.answers) if a.sent >= moment and 200 <= a.status < 300]
        return min(times) - moment if times else None

    def longest_gap_s(self, start: float, end: float) -> float:
        """The longest time without any 2xx answer between `start` and `end`."""
        times = sorted(a.at for a in self.answers if start <= a.at <= end and a.status < 300)
        edges = [start, *times, end]
        return max(b - a for a, b in itertools.pairwise(edges))

    def failures_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.answers if start <= a.at <= end and not 200 <= a.status < 300)


def settling_resumed_s(settings: Settings, load: Load, back: float, timeout_s: float) -> float:
    """Seconds from `back` until a transfer accepted after it has its final row: settlement
    works again end to end (API, Kafka, orchestrator, shards, PostgreSQL)."""
    deadline = back + timeout_s
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            fresh = [a.transfer_id for a in list(load.answers) if a.at >= back and a.status == 200]
            row = conn.execute(
                "SELECT 1 FROM transfers WHERE id = ANY(%s::uuid[]) AND status <> 'claimed'"
                " LIMIT 1",
                (fresh,),
            ).fetchone()
            if row is not None:
                return time.monotonic() - back
            time.sleep(0.2)
    raise AssertionError(f"nothing accepted after recovery settled within {timeout_s} s")


WAIT_PROBE_S = 10.0  # ?wait= bound of the probe below (the API's maximum)


def outcome_arrives(base_url: str, first_account: int) -> bool:
    """POST one transfer with ?wait=: True when the API answers 200 with its final outcome,
    i.e. its results-topic consumer delivers outcomes again (it reconnects on its own)."""
    body = {
        "debit_account_id": str(first_account),
        "credit_account_id": str(first_account + 1),
        "amount": "0.01",
        "currency": "RUB",
    }
    with httpx.Client(base_url=base_url, timeout=WAIT_PROBE_S + CLIENT_TIMEOUT_S) as client:
        resp = client.post("/v1/transfers", params={"wait": WAIT_PROBE_S}, json=body)
    return resp.status_code == 200 and resp.json()["status"] == "completed"


def seed_accounts(count: int, env: dict[str, str] | None = None) -> int:
    """Fund `count` fresh 17-digit accounts through `orion accounts seed`; the first id."""
    first = SEED_ACCOUNT_BASE + random.randrange(10**8) * 1000
    done = orion("accounts", "seed", "--first", str(first), "--count", str(count),
                 "--balance", "1000000", env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return first


def orion(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI; `env` adds ORION_* settings to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "orion.cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def stack_shaped(env: dict[str, str]) -> Iterator[None]:
    """The whole stack restarted with these settings; the default stack again afterwards
    (for the `stack_switch` modules, which run after every other e2e test)."""
    for args, shape in ((("down",), None), (("up",), env)):
        done = orion(*args, env=shape)
        assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield
    finally:
        for args, shape in ((("down",), env), (("up",), None)):
            done = orion(*args, env=shape)
            assert done.returncode == 0, done.stdout + done.stderr


def kill_service(settings: Settings, name: str) -> int:
    """SIGKILL one of Orion's infrastructure processes by its pid file; its pid."""
    managed = Managed(name, settings.state_dir.resolve() / "run" / f"{name}.pid", Path("/dev/null"))
    pid = managed.pid()
    assert pid is not None, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    return pid


def kafka_active_controller(settings: Settings) -> str:
    """The node ("kafka-N") leading the KRaft metadata quorum: killing it costs the most (a
    controller election before the dead broker can be fenced)."""
    client = kafka_adapter.admin(settings.kafka_bootstrap)
    try:
        quorum = client.describe_metadata_quorum()
    finally:
        client.close()
    leader = quorum["topics"][0]["partitions"][0]["leader_id"]
    return f"kafka-{leader}"


def restart_infra(env: dict[str, str] | None = None) -> float:
    """`orion infra up` (starts what is missing, waits until ready); when it returned."""
    done = orion("infra", "up", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic()


def listener_pid(ports: range) -> int:
    """The pid listening on one of `ports` (an API replica, behind the front)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid:
            return int(conn.pid)
    raise AssertionError(f"nothing listens on ports {ports}")


@dataclass(frozen=True)
class Settled:
    accepted: int
    lost: int
    applied_twice: int
    unknown_applied: int  # answered non-2xx (or no answer) yet applied: allowed, counted


def account_for(settings: Settings, load: Load) -> Settled:
    """Every accepted id has exactly one final row (with two entries if completed); ids that
    were not accepted may have settled too (a timeout is not a refusal) but only once."""
    accepted = load.accepted()
    wait_settled(settings, accepted)
    every = [a.transfer_id for a in load.answers]
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT t.id::text, t.status, count(e.id) FROM transfers t"
            " LEFT JOIN entries e ON e.transfer_id = t.id"
            " WHERE t.id = ANY(%s::uuid[]) GROUP BY t.id, t.status",
            (every,),
        ).fetchall()
    entries = {str(r[0]): (str(r[1]), int(r[2])) for r in rows}
    lost = sum(1 for tid in accepted if tid not in entries)
    twice = sum(1 for status, n in entries.values() if n != (2 if status == "completed" else 0))
    unknown = len(entries.keys() - set(accepted))
    return Settled(len(accepted), lost, twice, unknown)


def record(name: str, **numbers: Any) -> None:
    """Append one fault's numbers to load/out/faults.json (the closing note quotes them)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    runs[name] = numbers | {"at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    REPORT.write_text(json.dumps(runs, indent=2, sort_keys=True))


def restarts_grew(
    before: dict[str, int], after: dict[str, int], allowed: dict[str, int]
) -> dict[str, int]:
    """Actors restarted more often than `allowed` (default 0) between two readings."""
    grown = {a: after.get(a, 0) - before.get(a, 0) for a in after}
    return {a: n for a, n in grown.items() if n > allowed.get(a, 0)}


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def ids_of(answers: Sequence[Answer]) -> list[str]:
    return [a.transfer_id for a in answers]

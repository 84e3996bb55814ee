"""A small, bounded benchmark of a running Orion: single and batch transfers over HTTP.

Seeds its own accounts, sends N transfers from C concurrent clients to 127.0.0.1 only, then
waits (bounded) until every accepted transfer is settled and reports accepted/s, settled/s,
HTTP latency and accept→settled latency (from the ledger's own timestamps), then the audit.

    python -m load.quick single --count 5000 --clients 50
    python -m load.quick batch --count 50000 --clients 8 --batch-size 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import psycopg

from orion.audit import run_audit
from orion.config import get_settings

SETTLE_WAIT_S_MAX = 300  # give up waiting for settlement after this (reported, not hidden)
FIRST_ACCOUNT = 50_000_000_000_000_000  # a 17-digit range of its own
COUNT_MAX = 1_000_000  # the benchmark is bounded in count...
DURATION_S_MAX = 900  # ...and in time


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _seed(first: int, count: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "orion.cli",
        "accounts",
        "seed",
        "--first",
        str(first),
        "--count",
        str(count),
        "--balance",
        "1000000",
    ]
    subprocess.run(cmd, check=True, capture_output=True)


def _bodies(first: int, accounts: int, count: int) -> list[dict[str, str]]:
    rng = random.Random(1)
    out = []
    for _ in range(count):
        debit, credit = rng.sample(range(first, first + accounts), 2)
        out.append(
            {
                "id": str(uuid.uuid4()),
                "debit_account_id": str(debit),
                "credit_account_id": str(credit),
                "amount": "1.00",
                "currency": "RUB",
            }
        )
    return out


async def _send(base: str, chunks: list[Any], path: str, clients: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                start = time.perf_counter()
                resp = await client.post(path, json=body)
                latencies.append(time.perf_counter() - start)
                if resp.status_code not in (200, 202):
                    raise RuntimeError(f"{resp.status_code}: {resp.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def _settled(dsn: str, ids: list[str], deadline: float) -> list[tuple[float, float]]:
    """(accepted_at, settled_at) epoch seconds of every transfer, once all are final."""
    with psycopg.connect(dsn) as conn:
        while True:
            rows = conn.execute(
                "SELECT extract(epoch FROM accepted_at), extract(epoch FROM settled_at)"
                " FROM transfers WHERE id = ANY(%s::uuid[]) AND status <> 'claimed'",
                (ids,),
            ).fetchall()
            if len(rows) == len(ids) or time.monotonic() > deadline:
                return [(float(a), float(s)) for a, s in rows]
            time.sleep(0.2)


def run(mode: str, count: int, clients: int, batch_size: int, accounts: int) -> dict[str, Any]:
    settings = get_settings()
    base = f"http://{settings.host}:{settings.api_port}"
    first = FIRST_ACCOUNT + random.randrange(10**12)
    _seed(first, accounts)
    bodies = _bodies(first, accounts, min(count, COUNT_MAX))
    if mode == "batch":
        chunks: list[Any] = [
            {"transfers": bodies[i : i + batch_size]} for i in range(0, len(bodies), batch_size)
        ]
        path = "/v1/transfers/batch"
    else:
        chunks, path = bodies, "/v1/transfers"
    start = time.time()
    latencies = asyncio.run(asyncio.wait_for(_send(base, chunks, path, clients), DURATION_S_MAX))
    sent_s = time.time() - start
    rows = _settled(
        settings.postgres_dsn, [b["id"] for b in bodies], time.monotonic() + SETTLE_WAIT_S_MAX
    )
    last_settled = max(s for _, s in rows)
    settle_lat = [s - a for a, s in rows]
    report = {
        "mode": mode,
        "transfers": len(bodies),
        "requests": len(chunks),
        "clients": clients,
        "accepted_per_s": round(len(bodies) / sent_s),
        "settled": len(rows),
        "settled_per_s": round(len(rows) / (last_settled - start)),
        "backlog_drain_s": round(last_settled - (start + sent_s), 2),
        "http_ms": {
            q: round(_pct(latencies, p) * 1000, 1)
            for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "settle_ms": {
            q: round(_pct(settle_lat, p) * 1000, 1)
            for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "settle_ms_mean": round(statistics.fmean(settle_lat) * 1000, 1),
        "audit_ok": run_audit(settings).ok,
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["single", "batch"])
    parser.add_argument("--count", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=1_000)
    args = parser.parse_args()
    print(json.dumps(run(args.mode, args.count, args.clients, args.batch_size, args.accounts)))


if __name__ == "__main__":
    main()

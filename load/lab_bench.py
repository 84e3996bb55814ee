"""Orion on the multi-node lab: settled/s with 1 and with N orchestrators, and where the CPU
went, per lab host and part (Orion's actors, Serve's controller and proxy, Ray's own
processes; Kafka, PostgreSQL, Redis and the API front in the infrastructure host).

    python -m load.lab_bench --count 20000 --orchestrators 1 2

For each orchestrator count: `orion lab down`, `orion lab up --nodes 3 --api-replicas 2`,
Ray idle for IDLE_S (its own CPU with nothing to do), then `orion bench seed` through the
lab's API (its report, exactly-once check and audit included), with every host's cgroup CPU
read before and after. The lab is removed at the end. The lab's hosts share this machine's
cores: this shows what distribution costs, not a speed-up. Results: load/out/lab-bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orion.lab import layout, nodes
from orion.lab.commands import api_url, client_env

NODES, API_REPLICAS = 3, 2
IDLE_S = 30.0  # long enough to average Ray's periodic work (heartbeats, metrics, GCS)
BENCH_TIMEOUT_S = 1_800.0
LAB_TIMEOUT_S = 900.0
OUT = Path("load/out/lab-bench.json")
ORION = str(Path(sys.executable).parent / "orion")


def _orion(*args: str, env: dict[str, str] | None = None, timeout_s: float = LAB_TIMEOUT_S) -> str:
    done = subprocess.run(
        [ORION, *args], capture_output=True, text=True, timeout=timeout_s, check=False,
        env=dict(os.environ, **(env or {})),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"orion {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _cpu(count: int) -> dict[str, dict[str, float]]:
    hosts = layout.nodes(count)
    out = {n.name: nodes.cpu_by_part(n) for n in hosts}
    out[layout.INFRA] = {"infrastructure": nodes.cpu_seconds(layout.infra())}
    return out


def _delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    return {
        host: {part: round(value - before[host].get(part, 0.0), 2) for part, value in parts.items()}
        for host, parts in after.items()
    }


def run_one(orchestrators: int, count: int) -> dict[str, Any]:
    _orion("lab", "down")
    started = time.monotonic()
    _orion("lab", "up", "--nodes", str(NODES), "--orchestrators", str(orchestrators),
           "--api-replicas", str(API_REPLICAS))  # fmt: skip
    up_s = time.monotonic() - started
    status = json.loads(_orion("lab", "status", "--json"))
    placement = {n["name"]: sorted(a["kind"] for a in n["actors"]) for n in status["nodes"]}
    idle_before = _cpu(NODES)
    time.sleep(IDLE_S)
    idle = _delta(idle_before, _cpu(NODES))
    before = _cpu(NODES)
    bench = _orion("bench", "seed", "-n", str(count), "--base-url", api_url(),
                   env=client_env(), timeout_s=BENCH_TIMEOUT_S)  # fmt: skip
    used = _delta(before, _cpu(NODES))
    found = re.search(r"report: (\S+)/summary\.md", bench)
    if found is None:
        raise RuntimeError(f"no report in the bench output:\n{bench}")
    report = json.loads((Path(found.group(1)) / "report.json").read_text())
    settled = report["transfers"].get("settled", count)
    return {
        "orchestrators": orchestrators,
        "lab_up_s": round(up_s, 1),
        "placement": placement,
        "accepted_per_s": report["throughput"]["accepted_per_s"],
        "settled_per_s": report["throughput"]["settled_per_s"],
        "http_p99_ms": report["latency_ms"]["http"]["p99"],
        "ok": report["ok"],
        "report": found.group(1),
        "idle_cores": {h: round(sum(p.values()) / IDLE_S, 3) for h, p in idle.items()},
        "idle_ray_cores": {h: round(p.get("ray", 0.0) / IDLE_S, 3) for h, p in idle.items()},
        "cpu_s": used,
        "cpu_ms_per_transfer": {
            h: {part: round(1000 * v / max(settled, 1), 3) for part, v in parts.items()}
            for h, parts in used.items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--orchestrators", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    results = []
    try:
        for k in args.orchestrators:
            results.append(run_one(k, args.count))
            print(json.dumps(results[-1], indent=1), flush=True)
    finally:
        _orion("lab", "down")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()

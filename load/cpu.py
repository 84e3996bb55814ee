"""Where a run's CPU went: seconds each part of the stack spent, from the kernel's accounts.

The stack is what Orion started (its pid files: PostgreSQL, Redis, Kafka, Prometheus and the
Ray head) and every descendant (PostgreSQL backends, Ray's workers and actors), found afresh
at each sample. Ray's processes are told apart by their titles: the API replica, the shards,
the orchestrator, and Ray's own (GCS, raylet, dashboard, Serve controller). A process that
starts during the window counts from zero; one that ends during it is lost (Orion's are
long-lived). With the load generator's own CPU this accounts for the box's busy time, which
the same window reads from /proc/stat.

`implied_ceiling_per_s` is what the box's cores would settle at this run's CPU cost per
transfer if they did nothing else: the upper bound the accounting itself proves.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil

from orion.config import Settings
from orion.infra import manager
from orion.stack import api_front, ray_head

RAY = "ray (GCS, raylet, dashboard, Serve controller)"
API_FRONT = "api front (haproxy)"
# First title fragment that matches names a Ray process's part; the rest are Ray's own.
RAY_PARTS = (
    ("ServeReplica:", "API replica"),
    ("ray::Shard", "shards"),
    ("ray::Orchestrator", "orchestrator"),
)
GENERATOR = "load generator + results watcher"


@dataclass(frozen=True, slots=True)
class Sample:
    by_pid: dict[int, tuple[str, float]]  # pid: (part, CPU seconds so far)
    box_busy_s: float  # all CPUs: non-idle seconds since boot
    box_all_s: float

    @property
    def by_part(self) -> dict[str, float]:
        parts: defaultdict[str, float] = defaultdict(float)
        for part, seconds in self.by_pid.values():
            parts[part] += seconds
        return dict(parts)


def roots(settings: Settings) -> dict[str, int]:
    """The stack's top processes Orion started, by part name (pid files; not running: absent)."""
    found = {svc.name: svc.managed.pid() for svc in manager.services(settings)}
    found[RAY] = ray_head(settings).pid()
    found[API_FRONT] = api_front(settings).managed.pid()
    return {name: pid for name, pid in found.items() if pid is not None}


def sample(root_pids: dict[str, int]) -> Sample:
    by_pid: dict[int, tuple[str, float]] = {}
    for part, proc in _stack(root_pids):
        try:
            t = proc.cpu_times()
            title = part if part != RAY else _ray_part(" ".join(proc.cmdline()) or proc.name())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        by_pid[proc.pid] = (title, t.user + t.system)
    box = psutil.cpu_times()
    idle = box.idle + getattr(box, "iowait", 0.0)
    total = sum(box)
    return Sample(by_pid, total - idle, total)


def between(
    before: Sample, after: Sample, transfers: int, generator_cpu_s: float
) -> dict[str, Any]:
    """Per part: CPU seconds and ms per transfer in the window, biggest first."""
    spent: defaultdict[str, float] = defaultdict(float)
    for pid, (title, seconds) in after.by_pid.items():
        old = before.by_pid.get(pid)
        spent[title] += seconds - (old[1] if old is not None and old[0] == title else 0.0)
    spent[GENERATOR] += generator_cpu_s
    total = sum(spent.values())
    cores = os.cpu_count() or 1
    window = (after.box_all_s - before.box_all_s) / cores
    busy = after.box_busy_s - before.box_busy_s
    per_transfer = 1000.0 * total / transfers if transfers else None
    return {
        "window_s": round(window, 2),
        "cores": cores,
        "box_busy_percent": round(100.0 * busy / (window * cores), 1) if window > 0 else None,
        "accounted_percent_of_busy": round(100.0 * total / busy, 1) if busy > 0 else None,
        "parts": [
            {
                "part": part,
                "cpu_s": round(seconds, 2),
                "ms_per_transfer": round(1000.0 * seconds / transfers, 3) if transfers else None,
            }
            for part, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
        ],
        "total_cpu_s": round(total, 2),
        "ms_per_transfer": None if per_transfer is None else round(per_transfer, 3),
        "implied_ceiling_per_s": round(cores * 1000.0 / per_transfer) if per_transfer else None,
    }


def _ray_part(title: str) -> str:
    return next((part for fragment, part in RAY_PARTS if fragment in title), RAY)


def _stack(root_pids: dict[str, int]) -> Iterator[tuple[str, psutil.Process]]:
    for part, pid in root_pids.items():
        try:
            root = psutil.Process(pid)
            children = root.children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        yield part, root
        yield from ((part, child) for child in children)

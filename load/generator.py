"""The load generator: W worker processes (client.py) started together, merged afterwards.

One Python event loop tops out at a few thousand requests a second; on a 2-core machine the
server needs those cores too, so the generator is split across processes (default 2) that
start at one common instant t0 and each send a strided share of the requests.

Guarantees:
- Workers are spawned (not forked: the parent runs a Kafka thread) and stopped by their own
  Process handle, never by name; a worker that outlives the run's bound is terminated.
- Bounded waits everywhere: start-up, the run itself (time limit + request timeout + slack).
- The merged result keeps every request's start, latency and kind, and which transfer
  indices were accepted, as compact arrays.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from load.client import PROGRESS_SLOTS, WorkerJob, WorkerResult, worker_main
from load.shapes import LoadShape

START_SLACK_S = 0.2  # t0 lies this far ahead of "go", so every worker starts on time
SPAWN_WAIT_S = 60.0  # a worker imports aiohttp and opens its pool well within this
FINISH_SLACK_S = 30.0  # beyond time limit + request timeout: then a worker is stuck
TICK_S = 0.5  # progress callback period
JOIN_S = 10.0

Tick = Callable[[int, int, int], None]  # (requests done, transfers accepted, failed requests)


class GeneratorError(RuntimeError):
    """A worker failed or overran its bound; the run has no trustworthy numbers."""


@dataclass(slots=True)
class LoadResult:
    """Every worker's requests, merged; times are seconds since t0 (epoch `t0`)."""

    t0: float
    workers: int
    starts_s: array[float] = field(default_factory=lambda: array("d"))
    latencies_s: array[float] = field(default_factory=lambda: array("d"))
    ok: array[int] = field(default_factory=lambda: array("b"))
    accepted_items: array[int] = field(default_factory=lambda: array("H"))
    accepted: array[int] = field(default_factory=lambda: array("q"))
    errors: Counter[str] = field(default_factory=Counter)
    item_errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    cpu_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.starts_s)

    @property
    def last_end_s(self) -> float:
        ends = (s + lat for s, lat in zip(self.starts_s, self.latencies_s, strict=True))
        return max(ends, default=0.0)

    def merge(self, part: WorkerResult) -> None:
        self.starts_s.extend(part.starts_s)
        self.latencies_s.extend(part.latencies_s)
        self.ok.extend(1 if k == 0 else 0 for k in part.kinds)
        self.accepted_items.extend(part.accepted_items)
        self.accepted.extend(part.accepted)
        self.errors.update(part.kind_names[k] for k in part.kinds if k != 0)
        self.item_errors.update(part.item_errors)
        for kind, sample in part.error_samples.items():
            self.error_samples.setdefault(kind, sample)
        self.cpu_s += part.cpu_s


def split_connections(total: int, workers: int) -> list[int]:
    """`total` connections over `workers` as evenly as possible, every worker at least one."""
    return [max(1, total // workers + (1 if w < total % workers else 0)) for w in range(workers)]


def jobs_for(
    shape: LoadShape,
    base_url: str,
    clients: int,
    workers: int,
    time_limit_s: float,
    request_timeout_s: float,
    rate_per_s: float | None = None,
    duration_s: float = 0.0,
    http_client: str = "wire",
) -> list[WorkerJob]:
    """One job per worker process (never more workers than clients or requests)."""
    count = max(1, min(workers, clients, shape.requests))
    conns = split_connections(clients, count)
    return [
        WorkerJob(
            shape=shape,
            base_url=base_url,
            worker=w,
            workers=count,
            connections=conns[w],
            time_limit_s=time_limit_s,
            request_timeout_s=request_timeout_s,
            rate_per_s=rate_per_s,
            duration_s=duration_s,
            http_client=http_client,
        )
        for w in range(count)
    ]


def run_load(jobs: list[WorkerJob], on_tick: Tick | None = None) -> LoadResult:
    """Start one process per job, release them together at t0, wait (bounded), merge."""
    ctx = mp.get_context("spawn")
    results: mp.Queue[Any] = ctx.Queue()
    progress = ctx.RawArray("q", PROGRESS_SLOTS * len(jobs))
    go, t0 = ctx.Event(), ctx.Value("d", 0.0, lock=False)
    procs = [
        ctx.Process(target=worker_main, args=(j, results, progress, go, t0), daemon=True)
        for j in jobs
    ]
    for proc in procs:
        proc.start()
    try:
        _await_ready(results, len(jobs))
        t0.value = time.time() + START_SLACK_S
        go.set()
        bound = max(j.time_limit_s + j.request_timeout_s for j in jobs) + FINISH_SLACK_S
        parts = _collect(results, len(jobs), t0.value + bound, progress, on_tick)
    except BaseException:  # a failed worker, or Ctrl-C: stop the others now, not later
        _stop(procs, grace_s=0.0)
        raise
    _stop(procs, grace_s=JOIN_S)
    merged = LoadResult(t0=t0.value, workers=len(jobs))
    for part in sorted(parts, key=lambda p: p.worker):
        merged.merge(part)
    return merged


def _await_ready(results: mp.Queue[Any], count: int) -> None:
    deadline = time.monotonic() + SPAWN_WAIT_S
    ready = 0
    while ready < count:
        kind, worker, payload = _get(results, deadline)
        if kind == "failed":
            raise GeneratorError(f"worker {worker} failed to start: {payload}")
        ready += kind == "ready"


def _collect(
    results: mp.Queue[Any], count: int, deadline_epoch: float, progress: Any, on_tick: Tick | None
) -> list[WorkerResult]:
    parts: list[WorkerResult] = []
    deadline = time.monotonic() + (deadline_epoch - time.time())
    while len(parts) < count:
        try:
            kind, worker, payload = results.get(timeout=TICK_S)
        except queue_mod.Empty:
            if time.monotonic() > deadline:
                raise GeneratorError("a worker overran the run's time bound") from None
        else:
            if kind == "failed":
                raise GeneratorError(f"worker {worker} failed: {payload}")
            parts.append(payload)
        if on_tick is not None:
            on_tick(*(sum(progress[i::PROGRESS_SLOTS]) for i in range(PROGRESS_SLOTS)))
    return parts


def _get(results: mp.Queue[Any], deadline: float) -> tuple[str, int, Any]:
    try:
        item: tuple[str, int, Any] = results.get(timeout=max(0.01, deadline - time.monotonic()))
    except queue_mod.Empty:
        raise GeneratorError(f"workers not ready within {SPAWN_WAIT_S} s") from None
    return item


def _stop(procs: list[Any], grace_s: float) -> None:
    """Our own processes only, by handle: join within `grace_s`, then terminate the rest."""
    for proc in procs:
        proc.join(timeout=grace_s)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=JOIN_S)

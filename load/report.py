"""A run's report: the numbers, as a JSON-ready dict (pure; summary.py renders it).

Definitions, so two reports compare:
- times are seconds since the run's start t0 (all workers released together);
- accepted/s = accepted transfers / time from t0 to the end of the last accepting answer;
- settled/s = settled accepted transfers / time from t0 to the last of their settlements
  (settled_at of the outcome record, stamped by the shard's database transaction);
- drained within X s = last settlement - end of the last answer (negative: settled before
  the last answer came back);
- HTTP latency: answer end - request start (open loop: - its scheduled time);
- accept -> settled: settled_at_ms - accepted_at_ms of each outcome record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from load.generator import LoadResult
from load.stats import per_second_counts, per_second_percentiles, rate, summary_ms

SERIES_PERCENTILES = (50.0, 99.0)
SERIES_SECONDS_MAX = 7_200  # a plot's x axis; longer runs are cut (never happens by default)


@dataclass(slots=True)
class RunFacts:
    """Everything measured in one run, as plain values."""

    scenario: str
    options: dict[str, Any]
    target: str
    started_at: str  # ISO 8601, UTC
    load: LoadResult
    attempted: int  # transfers the run meant to send
    settled_s: list[float]  # per settled accepted transfer: settled_at, seconds since t0
    settle_latency_s: list[float]  # the same transfers: settled_at - accepted_at
    outcomes: dict[str, Any] = field(default_factory=dict)
    scheduled_to_settled_s: list[float] | None = None  # open loop only
    drain: dict[str, Any] = field(default_factory=dict)
    once: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    baselines: dict[str, Any] = field(default_factory=dict)
    driver_cpu_s: float | None = None  # the driving process: results watcher and progress
    cpu: dict[str, Any] | None = None  # load/cpu.py: where the CPU went while it ran


def build_report(f: RunFacts) -> dict[str, Any]:
    load = f.load
    accepted = len(load.accepted)
    ends = [s + lat for s, lat in zip(load.starts_s, load.latencies_s, strict=True)]
    accept_end = max((e for e, n in zip(ends, load.accepted_items, strict=True) if n), default=0)
    last_settled = max(f.settled_s, default=0.0)
    throughput = {
        "accepted_per_s": rate(accepted, accept_end),
        "settled_per_s": rate(len(f.settled_s), last_settled),
        "requests_per_s": rate(load.requests, max(ends, default=0.0)),
        "send_s": round(max(ends, default=0.0), 3),
    }
    report: dict[str, Any] = {
        "scenario": f.scenario,
        "started_at": f.started_at,
        "target": f.target,
        "options": f.options,
        "generator": _generator(load) | {"driver_cpu_s": f.driver_cpu_s},
        "requests": _requests(load),
        "transfers": {"attempted": f.attempted, "accepted": accepted}
        | {"settled": len(f.settled_s), "not_settled": accepted - len(f.settled_s)}
        | f.outcomes,
        "throughput": throughput,
        "latency_ms": _latency(f),
        "drain": f.drain | {"within_s": _within(f.settled_s, ends)},
        "exactly_once": f.once,
        "audit": f.audit,
        "baselines": _ratios(f.baselines, throughput),
        "cpu": f.cpu,
        "series": _series(f, ends),
    }
    report["ok"] = bool((f.once or {}).get("ok", True) and (f.audit or {}).get("ok", True))
    return report


def _within(settled_s: list[float], ends: list[float]) -> float | None:
    if not settled_s or not ends:
        return None
    return round(max(settled_s) - max(ends), 3)


def _generator(load: LoadResult) -> dict[str, Any]:
    """Worker CPU per request, and its inverse: requests per CPU-second, what one core
    could push if the generator had it to itself."""
    per_request = load.cpu_s / load.requests * 1e6 if load.requests else None
    return {
        "workers": load.workers,
        "cpu_s": round(load.cpu_s, 3),
        "cpu_us_per_request": None if per_request is None else round(per_request, 1),
        "requests_per_cpu_s": rate(load.requests, load.cpu_s),
    }


def _requests(load: LoadResult) -> dict[str, Any]:
    return {
        "sent": load.requests,
        "ok": sum(load.ok),
        "errors": dict(load.errors.most_common()),
        "item_errors": dict(load.item_errors.most_common()),
        "error_samples": load.error_samples,
    }


def _latency(f: RunFacts) -> dict[str, Any]:
    out = {
        "http": summary_ms(f.load.latencies_s),
        "http_ok": summary_ms(
            lat for lat, ok in zip(f.load.latencies_s, f.load.ok, strict=True) if ok
        ),
        "accept_to_settled": summary_ms(f.settle_latency_s),
    }
    if f.scheduled_to_settled_s is not None:
        out["scheduled_to_settled"] = summary_ms(f.scheduled_to_settled_s)
    return out


def _ratios(baselines: dict[str, Any], throughput: dict[str, Any]) -> dict[str, Any]:
    """Orion's rate over each ceiling's: accepted/s over bare HTTP (before the run, after it,
    and the mean of the two when both ran), settled/s over raw SQL."""
    out = {name: dict(values) for name, values in baselines.items()}
    before, after = (out.get(name, {}).get("transfers_per_s") for name in ("http", "http_after"))
    if before and after:
        out["http_mean"] = {"transfers_per_s": round((before + after) / 2, 1)}
    pairs = (
        ("http", "accepted_per_s"),
        ("http_after", "accepted_per_s"),
        ("http_mean", "accepted_per_s"),
        ("db", "settled_per_s"),
    )
    for name, ours in pairs:
        ceiling = out.get(name, {}).get("transfers_per_s")
        mine = throughput.get(ours)
        if ceiling and mine is not None:
            out[name]["ratio"] = round(mine / ceiling, 3)
    return out


def _series(f: RunFacts, ends: list[float]) -> dict[str, Any]:
    horizon = max([*ends, *f.settled_s, 0.0])
    seconds = min(SERIES_SECONDS_MAX, math.floor(horizon) + 1)
    http = per_second_percentiles(f.load.starts_s, f.load.latencies_s, SERIES_PERCENTILES, seconds)
    settle = per_second_percentiles(f.settled_s, f.settle_latency_s, SERIES_PERCENTILES, seconds)
    return {
        "second": list(range(seconds)),
        "accepted": per_second_counts(ends, f.load.accepted_items, seconds),
        "settled": per_second_counts(f.settled_s, None, seconds),
        "errors": per_second_counts(
            (e for e, ok in zip(ends, f.load.ok, strict=True) if not ok), None, seconds
        ),
        "http_p50_ms": http[50.0],
        "http_p99_ms": http[99.0],
        "settle_p50_ms": settle[50.0],
        "settle_p99_ms": settle[99.0],
    }

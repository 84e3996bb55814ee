"""Percentiles and per-second series of a run's samples (pure, stdlib only).

Percentiles use the nearest-rank definition: the q-th percentile of n sorted values is the
value at rank ceil(q/100 * n) (1-based), so it is always an observed value, p100 is the
maximum and p0 the minimum. With 1,000 samples p99 is the 990th smallest: one slow request
in a hundred shows up, one in a thousand does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

LATENCY_PERCENTILES = (50.0, 95.0, 99.0)


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in 0..100 (got {q})")
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, p50/p95/p99 and max of durations given in seconds, in milliseconds."""
    ordered = sorted(seconds)
    out: dict[str, float | int | None] = {"count": len(ordered)}
    out["mean"] = _ms(sum(ordered) / len(ordered)) if ordered else None
    for q in LATENCY_PERCENTILES:
        out[f"p{q:g}"] = _ms(percentile(ordered, q))
    out["max"] = _ms(ordered[-1]) if ordered else None
    return out


def per_second_counts(
    at_s: Iterable[float], weights: Iterable[int] | None = None, seconds: int | None = None
) -> list[int]:
    """How many events (or how much weight) fell in each whole second since the run's t0;
    events before t0 count in second 0. `seconds` fixes the length (later events dropped)."""
    counts: dict[int, int] = {}
    ws = weights if weights is not None else _ones()
    for t, w in zip(at_s, ws, strict=False):
        second = max(0, int(t))
        counts[second] = counts.get(second, 0) + w
    length = seconds if seconds is not None else (max(counts) + 1 if counts else 0)
    return [counts.get(s, 0) for s in range(length)]


def per_second_percentiles(
    at_s: Iterable[float], values_s: Iterable[float], qs: Sequence[float], seconds: int
) -> dict[float, list[float | None]]:
    """For each q, the q-th percentile (in ms) of the values whose event fell in each second;
    None for a second without events."""
    buckets: list[list[float]] = [[] for _ in range(seconds)]
    for t, v in zip(at_s, values_s, strict=True):
        second = max(0, int(t))
        if second < seconds:
            buckets[second].append(v)
    for bucket in buckets:
        bucket.sort()
    return {q: [_ms(percentile(b, q)) for b in buckets] for q in qs}


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _ones() -> Iterable[int]:
    while True:
        yield 1

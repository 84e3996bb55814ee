"""Label values of Orion's metrics, and what they sample, importable without Ray.

Ray reads its environment (loopback mode, Serve's ingress mode) when it is first imported,
so tools and tests that need these values must not import `orion.actors.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

from orion.domain import Reason, Status

NO_REASON = "none"  # the reason label of every status but rejected
SETTLED_LABEL_SETS: list[dict[str, str]] = [
    *({"status": status.value, "reason": NO_REASON} for status in Status if status != "rejected"),
    *({"status": Status.REJECTED.value, "reason": reason.value} for reason in Reason),
]

# The settle latency is observed for one transfer in this many: Ray's metrics agent replays a
# histogram one observation at a time (`record_histogram_aggregated_batch`), ~8 us each on
# this box, which at one per transfer cost ~3 % of the box's CPU in a bulk load. A batch's
# latencies are sorted and each group of this many ranks gives its middle one, so every
# quantile keeps its place; counts come from orion_transfers_settled_total.
LATENCY_SAMPLE_EVERY = 8


def latency_sample(latencies_ms: Sequence[int], every: int = LATENCY_SAMPLE_EVERY) -> list[int]:
    """The middle rank of each group of `every` sorted latencies (a short last group too)."""
    ranked = sorted(latencies_ms)
    n = len(ranked)
    return [ranked[i + (min(every, n - i) - 1) // 2] for i in range(0, n, every)]

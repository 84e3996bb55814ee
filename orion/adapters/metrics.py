"""Ray's metrics adapter: what Orion needs from `ray.util.metrics` beyond its public calls.

Ray exports application metrics through its per-node metrics agent, which Prometheus finds
via Ray's service-discovery file, prefixing each name with `ray_`. Serve's
`ray.serve.metrics` classes are the same classes, so this works for the API replica too.
"""

from __future__ import annotations

from collections.abc import Mapping

from ray.util.metrics import Counter


def start_at_zero(counter: Counter, tags: Mapping[str, str] | None = None) -> None:
    """Export `counter`'s series with the value 0 before its first event.

    Ray's `Counter.inc` refuses 0, but the OpenTelemetry counter under it records a zero add,
    which is how a series exists before anything happened (so `rate()` and alerts see 0, not
    "no data"). `_record` is the method `inc` itself ends in.
    """
    counter._record(0.0, tags=dict(tags) if tags else None)

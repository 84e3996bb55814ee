"""Label values of Orion's metrics, importable without Ray.

Ray reads its environment (loopback mode, Serve's ingress mode) when it is first imported,
so tools and tests that need these values must not import `orion.actors.metrics`.
"""

from __future__ import annotations

from orion.domain import Reason, Status

NO_REASON = "none"  # the reason label of every status but rejected
SETTLED_LABEL_SETS: list[dict[str, str]] = [
    *({"status": status.value, "reason": NO_REASON} for status in Status if status != "rejected"),
    *({"status": Status.REJECTED.value, "reason": reason.value} for reason in Reason),
]

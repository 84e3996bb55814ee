"""Named fault-injection hooks for tests (as Ray Serve's test-only crash probability).

`ORION_FAULTS="shard.after_commit=0.05,orchestrator.tick=0.001"` makes the named point kill
its process with that probability. Unset (the default), every hook is a no-op. Used only by
fault tests, which then check the invariant audit.
"""

from __future__ import annotations

import os
import random

_FAULTS: dict[str, float] | None = None


def _parse(spec: str) -> dict[str, float]:
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, probability = item.partition("=")
        faults[name] = float(probability or "1")
    return faults


def maybe_crash(point: str) -> None:
    """Hard-kill this process at `point` when a fault is configured for it."""
    global _FAULTS  # noqa: PLW0603 - parsed once per process, on first use
    if _FAULTS is None:
        _FAULTS = _parse(os.environ.get("ORION_FAULTS", ""))
    probability = _FAULTS.get(point)
    if probability and random.random() < probability:
        os._exit(17)

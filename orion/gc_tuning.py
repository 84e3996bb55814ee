"""The garbage collector of Orion's long-lived processes (API replica, shards, orchestrator).

CPython's cyclic collector runs a young collection every 700 net new container objects, and
after enough of those a full one, which walks every tracked object: in a Ray worker that is
Ray, FastAPI, pydantic and Orion, hundreds of thousands of objects that live as long as the
process. Under `orion bench seed` the API replica spent about a fifth of its
CPU time in the collector, the shards and the orchestrator 4-5 % (load/RESULTS.md,
2026-12-03 night, with the A/B of this module).

`tune()` freezes what the process built while starting (the collector never walks it again;
it lives as long as the process anyway) and lets the young generation grow larger before
it is collected, so fewer collections find the same garbage (at the cost of holding up to
10,000 more young objects). Cycles are still collected.
"""

from __future__ import annotations

import gc

# Net new container objects between young collections (CPython's default: 700); then
# collections of the next generation per collection of the younger one (defaults 10, 10).
YOUNG_THRESHOLD = 10_000
MIDDLE_PER_YOUNG = 10
OLD_PER_MIDDLE = 10


def tune() -> None:
    """Call once a process has built its long-lived state."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_PER_YOUNG, OLD_PER_MIDDLE)

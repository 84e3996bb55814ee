"""Open-loop arrivals: send times fixed up front, latency measured from the scheduled time.

A closed-loop client sends its next request only after the previous answer, so a server
that stalls for a second also stops the clock of everything that should have been sent
meanwhile: the stall shows as one slow sample instead of a second's worth ("coordinated
omission"). Here every send time is computed before the run; the scheduler starts each send
as its own task at its time and never waits for an answer before starting the next, and a
send that starts late (the machine was busy, or the in-flight bound was reached) still
measures from the time it was due.

Guarantees: request k of a run at R/s is due at k/R seconds after the start; with W
workers, worker w sends exactly the k with k % W == w, so together they keep the rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Send = Callable[[int, float], Awaitable[None]]  # (request index, due time on the clock)
INFLIGHT_MAX = 20_000  # bounds memory if the server stops answering; latency still counts


def open_loop_schedule(
    rate_per_s: float, duration_s: float, worker: int = 0, workers: int = 1
) -> list[tuple[int, float]]:
    """(request index, due offset in seconds from the start) of this worker's sends."""
    if rate_per_s <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    if not 0 <= worker < workers:
        raise ValueError(f"worker must be in 0..{workers - 1}")
    total = round(rate_per_s * duration_s)
    return [(k, k / rate_per_s) for k in range(worker, total, workers)]


async def run_open_loop(
    schedule: Sequence[tuple[int, float]],
    start: float,
    send: Send,
    clock: Clock,
    sleep: Sleep = asyncio.sleep,
    inflight_max: int = INFLIGHT_MAX,
) -> None:
    """Start `send(k, start + offset)` at each due time without awaiting earlier sends;
    return once every send has finished."""
    pending: set[asyncio.Task[None]] = set()
    for index, offset in schedule:
        due = start + offset
        # Always yield, even when late: the sends already started must get to run.
        await sleep(max(0.0, due - clock()))
        if len(pending) >= inflight_max:
            await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(_call(send, index, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)


async def _call(send: Send, index: int, due: float) -> None:
    await send(index, due)

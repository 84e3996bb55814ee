"""Open-loop arrivals (load/schedule.py): send times fixed up front, and a late answer never
delays a later send (no coordinated omission), on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from load.schedule import open_loop_schedule, run_open_loop

SPINS_MAX = 10_000  # bounded loops: the scheduler gets this many turns to do its work


class FakeClock:
    """Time moves only when the scheduler sleeps, or when a test moves it."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        wake = self.t + seconds
        await asyncio.sleep(0)  # sends started earlier run first, at the current time
        self.t = max(self.t, wake)  # a stall meanwhile makes the sleep end late, not longer


def test_schedule_is_k_over_rate_and_workers_split_it_without_overlap() -> None:
    """10/s for 1 s: due at 0.0, 0.1, ... 0.9; two workers take even and odd k."""
    whole = open_loop_schedule(10, 1.0)
    assert [k for k, _ in whole] == list(range(10))
    assert [t for _, t in whole] == pytest.approx([k / 10 for k in range(10)])
    w0, w1 = open_loop_schedule(10, 1.0, 0, 2), open_loop_schedule(10, 1.0, 1, 2)
    assert sorted(w0 + w1) == whole
    assert [k for k, _ in w1] == [1, 3, 5, 7, 9]


def test_schedule_refuses_a_non_positive_rate_or_a_bad_worker() -> None:
    with pytest.raises(ValueError, match="positive"):
        open_loop_schedule(0, 1.0)
    with pytest.raises(ValueError, match="worker"):
        open_loop_schedule(10, 1.0, 2, 2)


def test_a_late_answer_does_not_delay_later_sends_and_counts_from_its_due_time() -> None:
    """Request 0 gets no answer until 5 s after the last send was due. Every other send
    still starts at exactly its scheduled time, and request 0's latency is measured from
    its own due time (5.9 s), not from when a closed loop would have sent it."""

    async def scenario() -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
        clock, release = FakeClock(100.0), asyncio.Event()
        started: dict[int, float] = {}
        due_of: dict[int, float] = {}
        latency: dict[int, float] = {}

        async def send(k: int, due: float) -> None:
            started[k], due_of[k] = clock.now(), due
            if k == 0:
                await release.wait()
            latency[k] = clock.now() - due

        schedule = open_loop_schedule(10, 1.0)
        runner = asyncio.create_task(run_open_loop(schedule, 100.0, send, clock.now, clock.sleep))
        for _ in range(SPINS_MAX):
            if len(latency) == 9:
                break
            await asyncio.sleep(0)
        assert 0 not in latency  # still waiting for its answer...
        assert len(started) == 10  # ...and yet every request was sent
        clock.t += 5.0  # the answer to request 0 comes 5 s later
        release.set()
        await asyncio.wait_for(runner, 5.0)
        return started, due_of, latency

    started, due_of, latency = asyncio.run(scenario())
    assert started == pytest.approx({k: 100.0 + k / 10 for k in range(10)})
    assert due_of == pytest.approx({k: 100.0 + k / 10 for k in range(10)})
    assert latency[0] == pytest.approx(5.9)
    assert all(latency[k] == pytest.approx(0.0) for k in range(1, 10))


def test_a_stalled_scheduler_still_measures_from_the_due_time() -> None:
    """Positive control for the measurement: if the generator itself stalls for 0.5 s while
    sending request 3, requests 4..8 go out late, and their latency includes the delay."""

    async def scenario() -> dict[int, float]:
        clock = FakeClock(0.0)
        latency: dict[int, float] = {}

        async def send(k: int, due: float) -> None:
            if k == 3:
                clock.t += 0.5  # a blocking stall inside the generator
            latency[k] = clock.now() - due

        await run_open_loop(open_loop_schedule(10, 1.0), 0.0, send, clock.now, clock.sleep)
        return latency

    latency = asyncio.run(scenario())
    assert latency[2] == pytest.approx(0.0)
    assert latency[4] == pytest.approx(0.4)  # due at 0.4, sent when the stall ended at 0.8
    assert latency[8] == pytest.approx(0.0)  # by 0.8 the schedule has caught up
    assert min(latency.values()) >= 0.0


def test_the_inflight_bound_waits_for_a_slot_but_loses_no_send() -> None:
    async def scenario() -> list[int]:
        clock, done = FakeClock(0.0), list[int]()

        async def send(k: int, due: float) -> None:
            await asyncio.sleep(0)
            done.append(k)

        schedule = open_loop_schedule(100, 1.0)
        await run_open_loop(schedule, 0.0, send, clock.now, clock.sleep, inflight_max=2)
        return done

    assert sorted(asyncio.run(scenario())) == list(range(100))

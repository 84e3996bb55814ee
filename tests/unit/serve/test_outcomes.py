"""Outcome waiters: fed from another thread, bounded, and backed by one ledger read."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import datetime
from typing import cast

from fastapi.testclient import TestClient

from orion.messages import OutcomeRecord
from orion.serve.app import create_app
from orion.serve.dependencies import wait_for_final
from orion.serve.outcomes import OutcomeWaiters
from orion.serve.ports import TransferRow
from tests.unit.serve.fakes import NOW, FakeLedger, fake_deps


def outcome(transfer_id: str, status: str = "completed") -> OutcomeRecord:
    reason = "insufficient_funds" if status == "rejected" else None
    return OutcomeRecord(transfer_id, status, reason, "alice", "bob", 1230, "RUB", 1_000, 2_000)


def test_deliver_from_another_thread_resolves_the_waiter() -> None:
    """The consumer thread's deliver() wakes the request on its own loop."""

    async def run() -> OutcomeRecord:
        waiters = OutcomeWaiters()
        future = waiters.register("t1")
        assert future is not None
        threading.Thread(target=waiters.deliver, args=(outcome("t1"),)).start()
        result = await asyncio.wait_for(future, 2)
        waiters.unregister("t1", future)
        assert waiters.count == 0
        return result

    assert asyncio.run(run()).status == "completed"


def test_waiters_are_bounded() -> None:
    """Past WAITERS_MAX, register() declines instead of growing without bound."""

    async def run() -> list[bool]:
        waiters = OutcomeWaiters(waiters_max=2)
        return [waiters.register(f"t{i}") is not None for i in range(3)]

    assert asyncio.run(run()) == [True, True, False]


def test_wait_returns_the_outcome_delivered_meanwhile() -> None:
    """A bounded wait answers with the outcome once the results topic delivers it."""

    async def run() -> str | None:
        deps = fake_deps()
        transfer_id = str(uuid.uuid4())
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, deps.outcomes.deliver, outcome(transfer_id, "rejected"))
        view = await wait_for_final(deps, transfer_id, 2.0)
        return None if view is None else view.reason

    assert asyncio.run(run()) == "insufficient_funds"


def test_wait_reads_the_ledger_once_after_registering() -> None:
    """An outcome that settled before the waiter registered is found in PostgreSQL."""

    async def run() -> str | None:
        deps = fake_deps()
        transfer_id = str(uuid.uuid4())
        assert isinstance(deps.ledger, FakeLedger)
        deps.ledger.transfers[transfer_id] = settled_row(transfer_id)
        view = await wait_for_final(deps, transfer_id, 5.0)
        return None if view is None else view.status

    assert asyncio.run(run()) == "completed"


def test_wait_times_out_with_none() -> None:
    """No outcome within the wait: None (the caller answers 'accepted'), waiter removed."""

    async def run() -> tuple[object, int]:
        deps = fake_deps()
        view = await wait_for_final(deps, str(uuid.uuid4()), 0.05)
        return view, deps.outcomes.count

    assert asyncio.run(run()) == (None, 0)


def test_post_with_wait_answers_200_with_the_final_outcome() -> None:
    """POST ?wait= answers 200 with the settled transfer when it settles in time."""
    deps = fake_deps()
    transfer_id = str(uuid.uuid4())

    def settle_once_waited_on() -> None:
        deadline = time.monotonic() + 5
        while deps.outcomes.count == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        deps.outcomes.deliver(outcome(transfer_id))

    body = {
        "id": transfer_id,
        "debit_account_id": "alice",
        "credit_account_id": "bob",
        "amount": "12.30",
        "currency": "RUB",
    }
    with TestClient(create_app(deps)) as client:
        threading.Thread(target=settle_once_waited_on).start()
        response = client.post("/v1/transfers?wait=5", json=body)
        timed_out = client.post("/v1/transfers?wait=0.05", json={**body, "id": str(uuid.uuid4())})
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["amount"] == "12.30"
    assert timed_out.status_code == 202
    assert timed_out.json()["status"] == "accepted"


def settled_row(transfer_id: str) -> TransferRow:
    settled: datetime = NOW
    return TransferRow(transfer_id, "completed", None, "alice", "bob", 1230, "RUB", NOW, settled)


def test_post_with_wait_is_409_when_the_id_was_settled_for_another_transfer() -> None:
    """Past the idempotency window Redis no longer knows the id: the POST is accepted and
    produced (the shard dead-letters it), and `?wait=` finds the id settled for a different
    amount in PostgreSQL: 409, not the other transfer's outcome. Same body: 200 (control)."""
    deps = fake_deps()
    ledger = cast(FakeLedger, deps.ledger)
    transfer_id = str(uuid.uuid4())
    ledger.transfers[transfer_id] = settled_row(transfer_id)  # 12.30 from alice to bob
    body = {
        "id": transfer_id,
        "debit_account_id": "alice",
        "credit_account_id": "bob",
        "amount": "99.00",
        "currency": "RUB",
    }
    twin = str(uuid.uuid4())
    ledger.transfers[twin] = settled_row(twin)
    with TestClient(create_app(deps)) as client:
        other = client.post("/v1/transfers?wait=1", json=body)
        same = client.post("/v1/transfers?wait=1", json={**body, "id": twin, "amount": "12.30"})
    assert other.status_code == 409, other.text
    assert "settled earlier for a different transfer" in other.json()["detail"]
    assert same.status_code == 200 and same.json()["status"] == "completed"


def test_on_demand_waiter_wakes_the_feed_and_waits_until_it_listens() -> None:
    """A quiet feed is woken by the first waiter (`wanted`), and `listening()` returns only
    once the feed's thread says it reads from the topic's end."""

    async def run() -> tuple[bool, bool]:
        waiters = OutcomeWaiters(on_demand=True)
        assert not waiters.wanted.is_set()
        future = waiters.register("t1")
        assert future is not None and waiters.wanted.is_set()
        early = await waiters.listening(0.05)  # nobody positioned the feed yet

        def feed() -> None:
            waiters.wanted.wait(2)
            time.sleep(0.05)
            waiters.mark_listening()

        threading.Thread(target=feed).start()
        return early, await waiters.listening(2)

    assert asyncio.run(run()) == (False, True)


def test_the_feed_goes_quiet_only_when_nobody_waits() -> None:
    """`try_quiet` refuses while a waiter is registered (atomically with `register`), and
    a waiter after it wakes the feed again."""

    async def run() -> list[bool]:
        waiters = OutcomeWaiters(on_demand=True)
        waiters.mark_listening()
        future = waiters.register("t1")
        assert future is not None
        refused = waiters.try_quiet()
        waiters.unregister("t1", future)
        quiet = waiters.try_quiet()
        woken_before = waiters.wanted.is_set()
        assert waiters.register("t2") is not None
        return [refused, quiet, woken_before, waiters.wanted.is_set()]

    assert asyncio.run(run()) == [False, True, False, True]


def test_wait_through_a_quiet_feed_misses_no_outcome() -> None:
    """The wait wakes the feed and reads the ledger only once the feed listens: an outcome
    committed before the feed's new position is found there, one published after it is
    delivered; with no feed at all the wait answers from the ledger within its bound."""

    async def run() -> tuple[list[str | None], object, float]:
        reasons: list[str | None] = []
        for before_position in (True, False):
            deps = fake_deps()
            deps.outcomes = OutcomeWaiters(on_demand=True)
            ledger = cast(FakeLedger, deps.ledger)
            transfer_id = str(uuid.uuid4())

            args = (deps.outcomes, ledger, transfer_id, before_position)
            threading.Thread(target=_feed_waking, args=args).start()
            view = await wait_for_final(deps, transfer_id, 2.0)
            reasons.append(None if view is None else view.status)

        deaf = fake_deps()
        deaf.outcomes = OutcomeWaiters(on_demand=True)
        started = time.monotonic()
        nothing = await wait_for_final(deaf, str(uuid.uuid4()), 0.1)
        return reasons, nothing, time.monotonic() - started

    reasons, nothing, took = asyncio.run(run())
    assert reasons == ["completed", "rejected"]
    assert nothing is None and took < 1.0


def _feed_waking(waiters: OutcomeWaiters, ledger: FakeLedger, tid: str, early: bool) -> None:
    """A feed woken by a waiter; `early`: the transfer settled before it was positioned."""
    assert waiters.wanted.wait(2)
    time.sleep(0.05)  # a wait that skipped `listening()` has read the ledger by now
    if early:
        ledger.transfers[tid] = settled_row(tid)
    waiters.mark_listening()
    if not early:
        waiters.deliver(outcome(tid, "rejected"))

"""The acceptance micro-batcher: concurrent requests share one Acceptor call, each gets
its own answer, and a failed batch fails every request in it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from orion.serve.acceptance import Answer, Verdict
from orion.serve.batching import AcceptBatcher


class FakeAcceptor:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[Any]] = []
        self.fail = fail

    async def accept(self, items: Sequence[Any]) -> list[Answer]:
        self.calls.append(list(items))
        await asyncio.sleep(0.01)  # the broker's ack
        if self.fail:
            raise RuntimeError("broker down")
        return [Answer(str(item), Verdict.ACCEPTED) for item in items]


def test_concurrent_requests_share_batches_and_get_their_own_answers() -> None:
    """100 concurrent submits take far fewer Acceptor calls; answers match their items."""
    fake = FakeAcceptor()

    async def run() -> list[Answer]:
        batcher = AcceptBatcher(fake)  # type: ignore[arg-type]
        return await asyncio.gather(*(batcher.submit(n) for n in range(100)))  # type: ignore[arg-type]

    answers = asyncio.run(run())
    assert [a.transfer_id for a in answers] == [str(n) for n in range(100)]
    assert len(fake.calls) < 10
    assert sorted(i for call in fake.calls for i in call) == list(range(100))


def test_a_failed_batch_fails_each_of_its_requests() -> None:
    """The error reaches every waiting request; none hangs, none is answered accepted."""
    fake = FakeAcceptor(fail=True)

    async def run() -> None:
        batcher = AcceptBatcher(fake)  # type: ignore[arg-type]
        results = await asyncio.gather(
            *(batcher.submit(n) for n in range(5)),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert all(isinstance(r, RuntimeError) for r in results)

    asyncio.run(asyncio.wait_for(run(), 5))


@pytest.mark.parametrize("count", [1, 3])
def test_a_lone_request_is_not_delayed(count: int) -> None:
    """With nothing else pending, a request is sent at once (one call per burst)."""
    fake = FakeAcceptor()

    async def run() -> None:
        batcher = AcceptBatcher(fake)  # type: ignore[arg-type]
        for n in range(count):
            await batcher.submit(n)  # type: ignore[arg-type]

    asyncio.run(run())
    assert len(fake.calls) == count

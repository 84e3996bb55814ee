"""Micro-batching of acceptance: concurrent requests share Redis round trips and produces.

Each request submits its candidate and awaits its own answer; a collector takes everything
submitted so far (up to ACCEPT_BATCH_MAX) and runs the Acceptor once over the lot: one
pipelined idempotency claim, one batch of Kafka sends awaited together, one promote. While a
batch waits for the broker's acks, new requests gather for the next one, so batches grow
with load and a lone request is not delayed (it is taken at once).

Guarantees are the Acceptor's, per item (an answer is ACCEPTED only after the broker acked
that item); a failure of a whole batch fails each of its requests, never silently.
"""

from __future__ import annotations

import asyncio

from orion.serve.acceptance import Acceptor, Answer
from orion.serve.idempotency import Candidate

ACCEPT_BATCH_MAX = 500  # one Redis pipeline and one produce of this size take a few ms
ACCEPT_INFLIGHT_BATCHES_MAX = 4  # batches awaiting acks at once; more only adds queueing


class AcceptBatcher:
    def __init__(self, acceptor: Acceptor) -> None:
        self._acceptor = acceptor
        self._pending: list[tuple[Candidate, asyncio.Future[Answer]]] = []
        self._slots = asyncio.Semaphore(ACCEPT_INFLIGHT_BATCHES_MAX)
        self._collector: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    async def submit(self, item: Candidate) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._collector is None or self._collector.done():
            self._collector = asyncio.create_task(self._collect())
        self._wakeup.set()
        return await future

    async def _collect(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._slots.acquire()
                batch = self._pending[:ACCEPT_BATCH_MAX]
                del self._pending[:ACCEPT_BATCH_MAX]
                task = asyncio.create_task(self._run(batch))
                task.add_done_callback(lambda _t: self._slots.release())

    async def _run(self, batch: list[tuple[Candidate, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self._acceptor.accept([item for item, _ in batch])
        except Exception as err:  # noqa: BLE001 - not swallowed: re-raised in every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)

"""Accepting transfers exactly once: claim the id, produce, then answer.

Guarantees, for any number of concurrent requests carrying the same transfer id:
- ACCEPTED is answered only for a body whose record the broker acknowledged (acks=all):
  by the claim's winner after its ack, by others only once the key says `accepted`.
- Exactly one request produces per claim; a failed produce releases the claim
  (compare-and-delete, so it never frees someone else's) and answers UNAVAILABLE.
- The same id with another body is a CONFLICT, whatever the timing.
All items of one call are claimed in one round trip and produced as one batch of sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from orion.messages import AcceptedTransfer, encode_transfer
from orion.serve import idempotency as idem
from orion.serve import observers
from orion.serve.idempotency import Candidate
from orion.serve.ports import DependencyUnavailableError, IdempotencyStore, Record, TransferProducer

log = logging.getLogger(__name__)

PENDING_WAIT_S = 10.0  # a concurrent twin's produce is bounded by the send timeout, well below
PENDING_POLL_FIRST_S = 0.005  # twins usually finish within a few ms
PENDING_POLL_MAX_S = 0.05  # caps Redis polls at 20/s per waiting request
CLAIM_ATTEMPTS_MAX = 3  # a claim freed by a failed twin is retried this often, then 503


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Answer:
    transfer_id: str
    verdict: Verdict
    message: str = ""


class Acceptor:
    def __init__(
        self,
        producer: TransferProducer,
        store: IdempotencyStore,
        window_ms: int = idem.IDEM_WINDOW_MS_DEFAULT,
        pending_wait_s: float = PENDING_WAIT_S,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        """`window_ms`: how long an accepted id is answered from the store."""
        self._producer, self._store, self._window_ms = producer, store, window_ms
        self._pending_wait_s, self._clock_ms = pending_wait_s, clock_ms

    async def accept(self, items: Sequence[Candidate]) -> list[Answer]:
        """One answer per item, in order; the round's duration goes to the observers."""
        started = time.perf_counter()
        try:
            return await self._accept(items)
        finally:
            observers.round_took(time.perf_counter() - started)

    async def _accept(self, items: Sequence[Candidate]) -> list[Answer]:
        answers: dict[int, Answer] = {}
        todo = list(range(len(items)))
        for _ in range(CLAIM_ATTEMPTS_MAX):
            if not todo:
                break
            claims = [(items[i].transfer.id, items[i].pending_value) for i in todo]
            try:
                held = await self._store.claim(claims, idem.IDEM_PENDING_TTL_MS)
            except DependencyUnavailableError as err:
                answers.update({i: _unavailable(items[i], str(err)) for i in todo})
                return [answers[i] for i in range(len(items))]
            won: list[int] = []
            lost: list[tuple[int, str]] = []
            for i, h in zip(todo, held, strict=True):
                # Its own pending value means this request's claim ran already (the store
                # repeated a call whose reply was lost): that is a win too.
                if h is None or h == items[i].pending_value:
                    won.append(i)
                else:
                    lost.append((i, h))
            answers.update(await self._produce([items[i] for i in won], won))
            resolved = await asyncio.gather(*(self._follow(items[i], h) for i, h in lost))
            todo = [i for (i, _), a in zip(lost, resolved, strict=True) if a is None]
            answers.update({i: a for (i, _), a in zip(lost, resolved, strict=True) if a})
        for i in todo:
            answers[i] = _unavailable(items[i], "its idempotency claim kept being released")
        return [answers[i] for i in range(len(items))]

    async def _produce(self, items: list[Candidate], indexes: list[int]) -> dict[int, Answer]:
        if not items:
            return {}
        now_ms = self._clock_ms()
        records: list[Record] = [
            (c.transfer.debit_account_id.encode(), _encode(c, now_ms)) for c in items
        ]
        try:
            errors = await self._producer.produce(records)
        except DependencyUnavailableError as err:
            errors = [err] * len(items)
        acked = [c for c, e in zip(items, errors, strict=True) if e is None]
        failed = [c for c, e in zip(items, errors, strict=True) if e is not None]
        if acked:
            observers.accepted(len(acked))
        await self._settle_claims(acked, failed, now_ms)
        return {
            i: Answer(c.transfer.id, Verdict.ACCEPTED)
            if e is None
            else _unavailable(c, f"the broker did not acknowledge it: {e}")
            for i, c, e in zip(indexes, items, errors, strict=True)
        }

    async def _settle_claims(
        self, acked: list[Candidate], failed: list[Candidate], now_ms: int
    ) -> None:
        try:
            if acked:
                promoted = [
                    (c.transfer.id, c.pending_value, c.accepted_value(now_ms)) for c in acked
                ]
                await self._store.promote(promoted, self._window_ms)
            if failed:
                await self._store.release([(c.transfer.id, c.pending_value) for c in failed])
        except DependencyUnavailableError as err:
            # The records are durable either way; a stale pending claim expires on its own.
            log.warning("idempotency keys not updated after produce: %s", err)

    async def _follow(self, item: Candidate, held: str) -> Answer | None:
        """Answer for an id another request claimed first; None if the claim was freed."""
        delay_s = PENDING_POLL_FIRST_S
        deadline = time.monotonic() + self._pending_wait_s
        value: str | None = held
        while value is not None:
            try:
                stored = idem.decode(value)
            except ValueError:  # not written by this API: the id is taken all the same
                stored = idem.StoredValue(digest="", state="")
            if stored.digest != item.digest:
                return Answer(item.transfer.id, Verdict.CONFLICT, _conflict(item.transfer.id))
            if stored.state == idem.ACCEPTED:
                return Answer(item.transfer.id, Verdict.ACCEPTED)
            if time.monotonic() >= deadline:
                return _unavailable(item, "a request with the same id is still in flight")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, PENDING_POLL_MAX_S)
            try:
                value = await self._store.get(item.transfer.id)
            except DependencyUnavailableError as err:
                return _unavailable(item, str(err))
        return None


def _encode(item: Candidate, accepted_at_ms: int) -> bytes:
    expires = None if item.timeout_ms is None else accepted_at_ms + item.timeout_ms
    return encode_transfer(AcceptedTransfer(item.transfer, accepted_at_ms, item.metadata, expires))


def _conflict(transfer_id: str) -> str:
    return f"transfer id {transfer_id} was already used with a different body"


def _unavailable(item: Candidate, why: str) -> Answer:
    return Answer(item.transfer.id, Verdict.UNAVAILABLE, f"transfer not accepted: {why}")

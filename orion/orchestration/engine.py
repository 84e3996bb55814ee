"""The orchestrator's state machine: poll → pending queue → rounds → locks → shards → commit.

One `tick()` does a bounded amount of each step, never blocking longer than the poll/wait
timeouts, so the Kafka consumer is polled continuously (its heartbeat never starves).

Guarantees:
- per-account FIFO: rounds come from `plan_round`, and an account stays locked (in memory and
  in Redis) from dispatch until its batch's verdicts are back;
- a Kafka offset is committed only when it and every earlier offset of its partition is
  settled (`OffsetTracker`), so a crash replays, never skips;
- a failed or lost batch is dispatched again, same batch id, with bounded backoff; past
  `DISPATCH_ATTEMPTS_MAX` the engine raises so the actor crashes and Ray restarts it;
- a commit the broker did not take is tried again on later ticks (nothing else waits on
  it); past COMMIT_FAILING_MAX_S of failures the engine raises (crash, restart, replay);
- while the lock store is down no round is dispatched (batches in flight still finish and
  commit); leases not renewed or released expire on their own; past LOCKS_FAILING_MAX_S
  the engine raises;
- every queue is bounded; when the pending queue is full the source is paused (backpressure).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from orion.domain import OffsetTracker, PendingQueue, plan_round
from orion.messages import (
    DEAD_LETTERED,
    MessageError,
    QueuedTransfer,
    Undecodable,
    decode_record,
)
from orion.orchestration.ports import (
    AccountLocks,
    Clock,
    Completion,
    DeadLetter,
    LocksUnavailableError,
    ShardPool,
    SourceRecord,
    SourceUnavailableError,
    TransferSource,
)

POLL_RECORDS_MAX = 5_000  # one poll's worth: a few rounds, decoded in ~10 ms
POLL_IDLE_MS = 50  # block this long in poll only when there is nothing else to do
# With batches in flight, a tick waits this long for the first shard result (it wakes at
# once when one arrives). Records that come meanwhile join the next round: at 2 ms the loop
# spun ~500 times a second under load, each turn a Kafka poll and a Ray wait.
COMPLETION_WAIT_S = 0.010
INFLIGHT_PER_SHARD_MAX = 2  # one applying, one queued: the shard never idles between batches
# While batches are in flight, the next round waits until ROUND_FILL_TRANSFERS are pending or
# ROUND_LINGER_S has passed since the last round; an engine with nothing in flight dispatches
# at once, so a lone transfer never waits. Dispatching whenever one shard freed a slot made a
# round per batch (a lock script, a queue walk, a Ray call, a shard transaction each) and left
# the rest of the queue blocked behind the busy shard: under `orion bench seed`, 471 rounds of
# 67-transfer batches with 12,764 transfers found blocked, against 291 rounds of two
# 86-transfer batches with none (load/RESULTS.md, 2026-12-05 morning). A bulk load keeps the
# queue above the fill mark and is dispatched as before.
ROUND_LINGER_S = 0.1
ROUND_FILL_TRANSFERS = 500
LOCK_LEASE_MS = 15_000  # outlives any healthy batch; a dead orchestrator's locks expire by then
LOCK_RENEW_S = LOCK_LEASE_MS / 3000  # renew three times per lease
FOREIGN_LOCK_RETRY_S = 0.2  # an account leased by another owner is retried after this
DISPATCH_ATTEMPTS_MAX = 30  # ~1 min of backoff covers a shard restart; beyond, crash
DISPATCH_BACKOFF_FIRST_S = 0.05  # doubled per attempt, up to the max
DISPATCH_BACKOFF_MAX_S = 2.0
# A batch that neither answers nor fails this long after its first dispatch is hung (its
# shard's node lost and never reported dead, or the shard never rescheduled): crash, so the
# leases go and the restarted orchestrator replays, instead of holding its accounts forever.
# Ray reports a lost node within ~30 s and restarts its actors elsewhere in seconds.
BATCH_INFLIGHT_MAX_S = 180.0
# A partition of ours with records past its commit whose commit has not moved this long is
# wedged, whatever the cause (a hung batch of a previous ownership holding its shard's slots,
# a consumer that stopped fetching after a network partition healed): crash, and the restarted
# actor replays from the commit. Every bounded stall (Redis, a shard restart, PostgreSQL or
# the broker restarting) ends or crashes the actor itself within 60 s, before this.
PARTITION_STALLED_MAX_S = 90.0
# A commit is a synchronous broker round trip (~0.9 ms here). Committing on every tick that
# collected a result (~30/s at 1,000 transfers/s) cost the orchestrator and the broker CPU.
# A crash replays at most this much more, which is harmless (shards dedupe by transfer id).
# An engine that has caught up (nothing in flight or pending) commits at once.
COMMIT_INTERVAL_S = 0.25
# A broker restart takes seconds; longer than this without a commit and the consumer is
# probably broken for good: crash, and let the restarted actor replay from the last commit.
COMMIT_FAILING_MAX_S = 60.0
# Redis restarting takes a second or two. Without it nothing new is dispatched (a crash would
# not help: the restarted actor would find Redis down too), so wait this long, then crash.
LOCKS_FAILING_MAX_S = 60.0


class EngineError(RuntimeError):
    """An infrastructure failure that retrying here cannot fix: crash and let Ray restart."""


@dataclass
class InFlight:
    shard: int
    batch: tuple[QueuedTransfer, ...]
    accounts: frozenset[str]
    attempts: int = 1
    retry_at: float | None = None
    started_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The engine's state at one instant, for other threads (stats, metrics, drain)."""

    pending: int
    inflight_batches: int
    inflight_transfers: int
    inflight_per_shard: dict[int, int]
    locked_accounts: int
    drained: bool
    stats: dict[str, object]


@dataclass
class Stats:
    polled: int = 0
    settled: int = 0
    dead_lettered: int = 0
    batches: int = 0
    redispatched: int = 0
    lock_conflicts: int = 0
    lock_release_failures: int = 0
    by_status: Counter[str] = field(default_factory=Counter)


class Engine:
    def __init__(
        self, source: TransferSource, locks: AccountLocks, shards: ShardPool, clock: Clock
    ) -> None:
        self._source, self._locks, self._shards, self._clock = source, locks, shards, clock
        self.queue: PendingQueue[QueuedTransfer] = PendingQueue()
        # Transfers polled but not yet queued: a packed record may carry more than the queue
        # has room for. Nothing more is polled until they are all queued, so this holds at
        # most one poll's records (POLL_RECORDS_MAX, each at most PACKED_TRANSFERS_MAX).
        self._staged: deque[QueuedTransfer] = deque()
        self._offsets = OffsetTracker()
        self._assigned: set[int] = set()
        self._duplicates: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        # Transfers of a previous ownership of their partition, still in flight, per record:
        # their outcomes must not settle an offset of the current ownership (see _forget).
        self._orphans: Counter[tuple[int, int]] = Counter()
        self.inflight: dict[str, InFlight] = {}
        self._inflight_ids: set[str] = set()
        self._locked: Counter[str] = Counter()
        self._foreign: dict[str, float] = {}
        self._paused = False
        self._draining = False
        self._renewed_at = clock()
        self._committed_at = clock()
        self._round_at = clock()  # when the last round was dispatched
        self._commit_failing_since: float | None = None
        self._locks_failing_since: float | None = None
        self._progress_at: dict[int, float] = {}  # partition -> when its commit last moved
        self.stats = Stats()

    # -- the tick ------------------------------------------------------------------------
    def tick(self) -> None:
        self._collect()
        self._retry_due()
        self._commit()
        self._renew_due()
        if not self._draining:
            self._poll()
            self._dispatch_round()

    def drain(self) -> None:
        """Stop taking new records; ticks keep finishing in-flight batches and committing."""
        self._draining = True
        self._source.pause()

    @property
    def locked_accounts(self) -> frozenset[str]:
        return frozenset(self._locked)

    @property
    def idle(self) -> bool:
        return not self.inflight

    @property
    def _pending(self) -> int:
        """Transfers read and not yet dispatched: the queue and those staged to enter it."""
        return len(self.queue) + len(self._staged)

    @property
    def shard_count(self) -> int:
        return self._shards.shard_count

    @property
    def drained(self) -> bool:
        """Draining, nothing in flight and every settled offset committed."""
        return self._draining and self.idle and not self._offsets.committable()

    def snapshot(self) -> Snapshot:
        """Copy the state; call it on the engine's own thread, hand the copy to others."""
        per_shard = Counter(flight.shard for flight in self.inflight.values())
        s = self.stats
        return Snapshot(
            pending=self._pending,
            inflight_batches=len(self.inflight),
            inflight_transfers=sum(len(flight.batch) for flight in self.inflight.values()),
            inflight_per_shard=dict(per_shard),
            locked_accounts=len(self._locked),
            drained=self.drained,
            stats={
                "polled": s.polled,
                "settled": s.settled,
                "dead_lettered": s.dead_lettered,
                "batches": s.batches,
                "redispatched": s.redispatched,
                "lock_conflicts": s.lock_conflicts,
                "lock_release_failures": s.lock_release_failures,
                "outcomes": dict(s.by_status),
                "partitions": sorted(self._assigned),
            },
        )

    def check_stalled(self, lag: Mapping[int, int]) -> None:
        """Given each assigned partition's records past its commit (the broker's count),
        raise EngineError if one has had some for PARTITION_STALLED_MAX_S without its commit
        moving (see there). Not while draining: a drain stops taking records on purpose."""
        now = self._clock()
        for partition, behind in lag.items():
            since = self._progress_at.setdefault(partition, now)
            if behind <= 0 or self._draining:
                self._progress_at[partition] = now
            elif now - since > PARTITION_STALLED_MAX_S:
                raise EngineError(
                    f"partition {partition}: {behind} records past its commit, which has not"
                    f" moved for {now - since:.0f} s"
                )

    # -- Kafka side ----------------------------------------------------------------------
    def on_assigned(self, partitions: set[int]) -> None:
        """Start these partitions afresh. Their records must come from the committed
        position on (the source guarantees it). State still held for one of them means it
        was lost without a revocation (this consumer was cut off, the group moved on):
        that state is stale and is forgotten first."""
        self._forget(partitions)
        self._assigned |= partitions
        now = self._clock()
        self._progress_at.update(dict.fromkeys(partitions, now))

    def on_revoked(self, partitions: set[int]) -> dict[int, int]:
        """Forget the revoked partitions' unsettled records (their new owner replays them,
        and shards dedupe) and return the commit positions of their settled prefix, for the
        caller to commit before the partitions move (called while `tick` is not running)."""
        positions = {p: pos for p, pos in self._offsets.committable().items() if p in partitions}
        self._forget(partitions)
        self._assigned -= partitions
        return positions

    def _forget(self, partitions: set[int]) -> None:
        """Drop every trace of these partitions' records: queued ones leave the queue, the
        offset positions reset, and records in batches still in flight become orphans, whose
        outcomes later settle nothing here (their offsets belong to a previous ownership)."""
        gone = {q.id for q in self.queue if q.partition in partitions}
        self.queue.remove_taken(gone)
        self._staged = deque(q for q in self._staged if q.partition not in partitions)
        self._offsets.reset(partitions)
        for flight in self.inflight.values():
            self._orphans.update((q.partition, q.offset) for q in flight.batch
                                 if q.partition in partitions)  # fmt: skip
        for places in self._duplicates.values():
            self._orphans.update(place for place in places if place[0] in partitions)

    def _poll(self) -> None:
        self._admit()
        free = 0 if self._staged else self.queue.free_slots
        self._set_paused(free <= 0)
        busy = bool(self.inflight) or self._pending > 0  # staged only when the queue is full
        records = self._source.poll(
            min(max(free, 0), POLL_RECORDS_MAX), 0 if busy else POLL_IDLE_MS
        )
        dead: list[DeadLetter] = []
        transfers = sum(self._accept(record, dead) for record in records)
        if dead:
            self._source.dead_letter(dead)
            for letter in dead:
                self._settle_offset(letter.partition, letter.offset)
            self.stats.dead_lettered += len(dead)
        self.stats.polled += transfers
        self._admit()

    def _accept(self, record: SourceRecord, dead: list[DeadLetter]) -> int:
        """Stage the transfers of one record (dead letters for what cannot be decoded);
        how many transfers it carried."""
        partition, offset = record.partition, record.offset
        self._assigned.add(partition)
        try:
            found = decode_record(record.value)
        except MessageError as err:
            self._offsets.track(partition, offset)
            dead.append(DeadLetter(partition, offset, record.value, str(err)))
            return 1
        self._offsets.track(partition, offset, len(found))
        for place, item in found:
            if isinstance(item, Undecodable):
                dead.append(DeadLetter(partition, offset, item.value, item.error, place))
            else:
                self._staged.append(QueuedTransfer(item, partition, offset, place))
        return len(found)

    def _admit(self) -> None:
        """Move staged transfers into the pending queue, in order, while it has room."""
        staged, queue = self._staged, self.queue
        while staged and not queue.is_full:
            queued = staged.popleft()
            if queued.id in queue or queued.id in self._inflight_ids:
                # Same id again (a client retry that reached Kafka twice): it settles with
                # the first.
                self._duplicates[queued.id].append((queued.partition, queued.offset))
            else:
                queue.push(queued)

    def _set_paused(self, paused: bool) -> None:
        if paused != self._paused:
            (self._source.pause if paused else self._source.resume)()
            self._paused = paused

    def _commit(self, force: bool = False) -> None:
        now = self._clock()
        # Caught up (nothing in flight or waiting for a round): commit at once. Transfers
        # waiting out a round's linger are load, not idleness.
        caught_up = self.idle and self._pending == 0
        if not (force or caught_up or now - self._committed_at >= COMMIT_INTERVAL_S):
            return
        positions = self._offsets.committable()
        if not positions:
            return
        try:
            self._source.commit(positions)
        except SourceUnavailableError as err:
            self._commit_failing_since = self._commit_failing_since or now
            if now - self._commit_failing_since > COMMIT_FAILING_MAX_S:
                raise EngineError(f"no commit for {COMMIT_FAILING_MAX_S:.0f} s: {err}") from err
            self._committed_at = now  # the next attempt waits a commit interval
            return
        self._commit_failing_since = None
        self._offsets.mark_committed(positions)
        self._committed_at = now
        self._progress_at.update(dict.fromkeys(positions, now))

    def _settle_offset(self, partition: int, offset: int) -> None:
        """One transfer of the record at (partition, offset) is final."""
        orphans = self._orphans.get((partition, offset), 0)
        if orphans:
            if orphans == 1:
                del self._orphans[(partition, offset)]
            else:
                self._orphans[(partition, offset)] = orphans - 1
            return
        if partition in self._assigned:
            self._offsets.settle(partition, offset)

    # -- rounds, locks, shards -------------------------------------------------------------
    def _dispatch_round(self) -> None:
        if len(self.queue) == 0:
            return
        per_shard = Counter(b.shard for b in self.inflight.values())
        full = {
            s for s in range(self._shards.shard_count) if per_shard[s] >= INFLIGHT_PER_SHARD_MAX
        }
        if len(full) == self._shards.shard_count:
            return
        now = self._clock()
        if self._lingering(now):
            return
        self._foreign = {a: t for a, t in self._foreign.items() if t > now}
        locked = set(self._locked) | set(self._foreign)
        round_ = plan_round(self.queue, locked, self._shards.shard_count, full)
        if not round_.batches:
            return
        try:
            held = self._locks.acquire(round_.accounts)
        except LocksUnavailableError as err:
            self._locks_failed(now, err)
            return
        self._locks_failing_since = None
        if held:
            self.stats.lock_conflicts += len(held)
            self._foreign.update((a, now + FOREIGN_LOCK_RETRY_S) for a in held)
            return
        self.queue.remove_taken(round_.taken_ids)
        self._round_at = now
        for shard, batch in round_.batches.items():
            self._start(shard, batch)

    def _lingering(self, now: float) -> bool:
        """True while the next round should wait for more transfers (ROUND_LINGER_S)."""
        return (
            bool(self.inflight)
            and len(self.queue) < ROUND_FILL_TRANSFERS
            and now - self._round_at < ROUND_LINGER_S
        )

    def _start(self, shard: int, batch: tuple[QueuedTransfer, ...]) -> None:
        batch_id = str(uuid.uuid4())
        accounts = frozenset(a for q in batch for a in (q.debit_account_id, q.credit_account_id))
        self.inflight[batch_id] = InFlight(shard, batch, accounts, started_at=self._clock())
        self._inflight_ids.update(q.id for q in batch)
        self._locked.update(accounts)
        self.stats.batches += 1
        self._shards.dispatch(shard, batch_id, batch)

    def _collect(self) -> None:
        wait = COMPLETION_WAIT_S if self.inflight else 0.0
        for completion in self._shards.completed(wait):
            flight = self.inflight.get(completion.batch_id)
            if flight is None:
                continue  # a late answer for a batch already finished by a re-dispatch
            if completion.verdicts is None:
                self._schedule_retry(completion, flight)
            else:
                self._finish(completion, flight)

    def _finish(self, completion: Completion, flight: InFlight) -> None:
        verdicts = completion.verdicts
        if verdicts is None or verdicts.ids != [q.id for q in flight.batch]:
            raise EngineError(f"batch {completion.batch_id}: verdicts do not match the batch")
        del self.inflight[completion.batch_id]
        try:
            self._locks.release(flight.accounts)
        except LocksUnavailableError as err:
            # Not retried: our leases expire within LOCK_LEASE_MS, and until then only this
            # owner can take those accounts again (its own leases count as free to it).
            self.stats.lock_release_failures += 1
            self._locks_failed(self._clock(), err)
        self._locked.subtract(flight.accounts)
        self._locked += Counter()  # drop zero counts
        for queued, status, reason in zip(
            flight.batch, verdicts.statuses, verdicts.reasons, strict=True
        ):
            self._inflight_ids.discard(queued.id)
            self._settle_offset(queued.partition, queued.offset)
            for partition, offset in self._duplicates.pop(queued.id, ()):
                self._settle_offset(partition, offset)
            self.stats.by_status[reason or status] += 1
        # A record the shard sent to the DLQ is final too (its offset may pass), not settled.
        dead = verdicts.statuses.count(DEAD_LETTERED)
        self.stats.dead_lettered += dead
        self.stats.settled += len(verdicts.statuses) - dead

    def _schedule_retry(self, completion: Completion, flight: InFlight) -> None:
        if flight.attempts >= DISPATCH_ATTEMPTS_MAX:
            raise EngineError(
                f"batch {completion.batch_id} failed {flight.attempts} times: {completion.error}"
            )
        backoff = min(DISPATCH_BACKOFF_MAX_S, DISPATCH_BACKOFF_FIRST_S * 2**flight.attempts)
        flight.retry_at = self._clock() + backoff

    def _retry_due(self) -> None:
        now = self._clock()
        for batch_id, flight in self.inflight.items():
            if now - flight.started_at > BATCH_INFLIGHT_MAX_S:
                raise EngineError(
                    f"batch {batch_id} to shard {flight.shard} unanswered for"
                    f" {now - flight.started_at:.0f} s"
                )
            if flight.retry_at is not None and flight.retry_at <= now:
                flight.retry_at = None
                flight.attempts += 1
                self.stats.redispatched += 1
                self._shards.dispatch(flight.shard, batch_id, flight.batch)

    def _renew_due(self) -> None:
        now = self._clock()
        if self._locked and now - self._renewed_at >= LOCK_RENEW_S:
            try:
                self._locks.renew(self._locked)
            except LocksUnavailableError as err:
                self._locks_failed(now, err)
                return
            self._renewed_at = now

    def _locks_failed(self, now: float, err: LocksUnavailableError) -> None:
        self._locks_failing_since = self._locks_failing_since or now
        if now - self._locks_failing_since > LOCKS_FAILING_MAX_S:
            raise EngineError(f"lock store down for {LOCKS_FAILING_MAX_S:.0f} s: {err}") from err

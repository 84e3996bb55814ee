"""The orchestration engine with fakes and a fake clock: no Ray, Kafka or Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

import pytest

from orion.domain import Transfer, decide_batch
from orion.domain.model import AccountState
from orion.messages import (
    DEAD_LETTERED,
    AcceptedTransfer,
    OutcomeRecord,
    QueuedTransfer,
    Verdicts,
    encode_packed,
    encode_transfer,
)
from orion.orchestration import engine as engine_module
from orion.orchestration.engine import Engine, EngineError
from orion.orchestration.ports import (
    Completion,
    DeadLetter,
    LocksUnavailableError,
    SourceRecord,
    SourceUnavailableError,
)


class FakeSource:
    def __init__(self) -> None:
        self.records: list[SourceRecord] = []
        self.committed: dict[int, int] = {}
        self.paused = False
        self.dead: list[DeadLetter] = []
        self._next: dict[int, int] = {}

    def add(self, value: bytes, partition: int = 0) -> None:
        offset = self._next.get(partition, 0)
        self._next[partition] = offset + 1
        self.records.append(SourceRecord(partition, offset, value))

    def poll(self, max_records: int, timeout_ms: int) -> list[SourceRecord]:
        if self.paused:
            return []
        out, self.records = self.records[:max_records], self.records[max_records:]
        return out

    def commit(self, positions: Mapping[int, int]) -> None:
        for p, pos in positions.items():
            assert pos >= self.committed.get(p, 0), "commits never go backwards"
            self.committed[p] = pos

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def dead_letter(self, records: Sequence[DeadLetter]) -> None:
        self.dead.extend(records)

    def lag(self) -> dict[int, int]:
        return {p: end - self.committed.get(p, 0) for p, end in self._next.items()}


class FakeLocks:
    def __init__(self) -> None:
        self.held: set[str] = set()
        self.foreign: set[str] = set()

    def acquire(self, accounts: Iterable[str]) -> set[str]:
        wanted = set(accounts)
        if wanted & self.foreign:
            return wanted & self.foreign
        assert not wanted & self.held, "an account is never locked twice"
        self.held |= wanted
        return set()

    def renew(self, accounts: Iterable[str]) -> int:
        return len(set(accounts))

    def release(self, accounts: Iterable[str]) -> int:
        self.held -= set(accounts)
        return 0


class FakeShards:
    """Settles dispatched batches against an in-memory ledger when the test says so."""

    shard_count = 2

    def __init__(self, balances: dict[str, int]) -> None:
        self.balances = balances
        self.dispatched: list[tuple[str, tuple[QueuedTransfer, ...]]] = []
        self.fail_next = 0
        self._ready: list[Completion] = []
        self.applied: set[str] = set()

    def dispatch(self, shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None:
        self.dispatched.append((batch_id, tuple(batch)))
        if self.fail_next:
            self.fail_next -= 1
            self._ready.append(Completion(batch_id, None, "shard died"))
            return
        states = {a: AccountState(a, "RUB", b, 0) for a, b in self.balances.items()}
        fresh = [q.accepted.transfer for q in batch if q.id not in self.applied]
        decision = decide_batch(fresh, states)
        self.balances.update(decision.balances)
        self.applied |= {t.id for t in fresh}
        self._ready.append(Completion(batch_id, Verdicts.of([_outcome(q) for q in batch])))

    def completed(self, timeout_s: float) -> list[Completion]:
        out, self._ready = self._ready, []
        return out


def _outcome(q: QueuedTransfer) -> OutcomeRecord:
    t = q.accepted.transfer
    return OutcomeRecord(q.id, "completed", None, t.debit_account_id, t.credit_account_id,
                         t.amount, t.currency, 0, 0)  # fmt: skip


def _transfer(debit: str, credit: str, amount: int = 1, tid: str | None = None) -> bytes:
    t = Transfer(tid or str(uuid.uuid4()), debit, credit, amount, "RUB")
    return encode_transfer(AcceptedTransfer(t, 0))


def _engine(balances: dict[str, int]) -> tuple[Engine, FakeSource, FakeLocks, FakeShards]:
    source, locks, shards = FakeSource(), FakeLocks(), FakeShards(balances)
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    return Engine(source, locks, shards, clock), source, locks, shards


def _run(engine: Engine, ticks: int = 50) -> None:
    for _ in range(ticks):
        engine.tick()


def test_settles_everything_and_commits_contiguous_offsets() -> None:
    """All records settle, locks are released, and the commit reaches last offset + 1."""
    engine, source, locks, shards = _engine({"a": 100, "b": 0, "c": 0})
    for i in range(30):
        source.add(_transfer("a", "bc"[i % 2]), partition=i % 3)
    _run(engine)
    assert engine.stats.settled == 30
    assert source.committed == {0: 10, 1: 10, 2: 10}
    assert locks.held == set()
    assert shards.balances == {"a": 70, "b": 15, "c": 15}


def test_failed_batch_is_redispatched_with_same_id_and_offsets_wait() -> None:
    """A batch whose shard died is sent again with the same id; nothing commits before."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    shards.fail_next = 1
    source.add(_transfer("a", "b"))
    engine.tick()
    assert source.committed == {}
    _run(engine, 100)
    ids = [batch_id for batch_id, _ in shards.dispatched]
    assert len(ids) == 2 and ids[0] == ids[1]
    assert source.committed == {0: 1}
    assert engine.stats.redispatched == 1


def test_gives_up_after_bounded_attempts() -> None:
    """A batch that never succeeds crashes the engine (Ray restarts the actor) — bounded."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    shards.fail_next = 10**6
    source.add(_transfer("a", "b"))
    with pytest.raises(EngineError):
        _run(engine, 100_000)
    assert len(shards.dispatched) == engine_module.DISPATCH_ATTEMPTS_MAX


def test_malformed_record_goes_to_dlq_and_does_not_block_commits() -> None:
    """An undecodable record is dead-lettered and its offset settles with the others."""
    engine, source, _, _ = _engine({"a": 10, "b": 0})
    source.add(b"not json")
    source.add(_transfer("a", "b"))
    _run(engine)
    assert [d.offset for d in source.dead] == [0]
    assert source.committed == {0: 2}


def test_record_the_shard_dead_letters_is_final_and_its_offset_commits() -> None:
    """A shard's `dead_lettered` answer (a record it could not store) ends the record: its
    offset commits with the others, it counts as dead-lettered, not settled, and nothing
    is dispatched again (no retry loop)."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    dead_id = str(uuid.uuid4())
    source.add(_transfer("a", "b", 1, dead_id))
    source.add(_transfer("a", "b", 1))
    original = shards.dispatch

    def dispatch(shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None:
        original(shard, batch_id, batch)
        done = shards._ready.pop()
        assert done.verdicts is not None
        statuses = [
            DEAD_LETTERED if i == dead_id else status
            for i, status in zip(done.verdicts.ids, done.verdicts.statuses, strict=True)
        ]
        reasons = [
            "unsettleable" if i == dead_id else reason
            for i, reason in zip(done.verdicts.ids, done.verdicts.reasons, strict=True)
        ]
        shards._ready.append(Completion(batch_id, Verdicts(done.verdicts.ids, statuses, reasons)))

    shards.dispatch = dispatch  # type: ignore[method-assign]
    _run(engine)
    assert source.committed == {0: 2}
    assert (engine.stats.settled, engine.stats.dead_lettered) == (1, 1)
    assert len(shards.dispatched) == 1


def test_commit_the_broker_refuses_is_retried_then_bounded() -> None:
    """While the broker refuses commits (restarting) settlement goes on and the commit is
    tried again later, landing once the broker is back; refusing for longer than
    COMMIT_FAILING_MAX_S raises (crash, restart, replay), never a silent stall."""
    engine, source, _, _ = _engine({"a": 10, "b": 0})
    original, refusing = source.commit, [True]

    def commit(positions: Mapping[int, int]) -> None:
        if refusing[0]:
            raise SourceUnavailableError("broker away")
        original(positions)

    source.commit = commit  # type: ignore[method-assign]
    source.add(_transfer("a", "b"))
    _run(engine)
    assert engine.stats.settled == 1 and source.committed == {}
    refusing[0] = False
    _run(engine, 100)
    assert source.committed == {0: 1}
    refusing[0] = True
    source.add(_transfer("a", "b"))
    with pytest.raises(EngineError, match="no commit"):
        _run(engine, 100_000)  # the fake clock moves 10 ms per call: a few thousand ticks


def test_revoked_partitions_hand_over_their_settled_prefix_and_are_forgotten() -> None:
    """On revocation the engine returns the commit position of each revoked partition's
    settled prefix (the handover commit), forgets its records, and leaves the other
    partitions alone: their batch in flight still settles and commits afterwards."""
    engine, source, _, shards = _engine({"a": 10, "b": 0, "z": 10, "y": 0})
    original, held = shards.dispatch, []

    def dispatch(shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None:
        if any(q.debit_account_id == "z" for q in batch):
            held.append((shard, batch_id, batch))  # stays in flight until released
            return
        original(shard, batch_id, batch)

    shards.dispatch = dispatch  # type: ignore[method-assign]
    source.add(_transfer("a", "b"), partition=0)
    source.add(_transfer("z", "y"), partition=1)
    engine.tick()
    engine.tick()  # the partition-0 batch settled; not idle, so not committed yet
    assert engine.on_revoked({0}) == {0: 1}
    assert engine.on_revoked({0}) == {}  # forgotten: nothing of it is tracked any more
    original(*held.pop())
    _run(engine)
    assert source.committed == {1: 1}


def test_lock_store_down_pauses_dispatch_then_resumes_or_crashes_past_the_bound() -> None:
    """Redis down: nothing new is dispatched (no crash per tick); back: the waiting transfer
    settles. Down past LOCKS_FAILING_MAX_S: the engine raises (bounded, never a stall)."""
    engine, source, locks, shards = _engine({"a": 10, "b": 0})
    original, down = locks.acquire, [True]

    def acquire(accounts: Iterable[str]) -> set[str]:
        if down[0]:
            raise LocksUnavailableError("redis: connection refused")
        return original(accounts)

    locks.acquire = acquire  # type: ignore[method-assign]
    source.add(_transfer("a", "b"))
    _run(engine, 20)
    assert shards.dispatched == [] and engine.stats.settled == 0
    down[0] = False
    _run(engine, 20)
    assert engine.stats.settled == 1
    down[0] = True
    source.add(_transfer("a", "b"))
    with pytest.raises(EngineError, match="lock store down"):
        _run(engine, 100_000)


def test_a_batch_that_never_answers_crashes_the_engine_past_the_bound() -> None:
    """A shard call that neither answers nor fails (its node lost, never reported dead)
    must not hold the batch's accounts forever: past BATCH_INFLIGHT_MAX_S the engine raises,
    and Ray restarts the orchestrator, which replays."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    shards.dispatch = lambda shard, batch_id, batch: None  # type: ignore[method-assign]
    source.add(_transfer("a", "b"))
    _run(engine, 20)
    assert len(engine.inflight) == 1  # hung, not failed: no retry counts it
    with pytest.raises(EngineError, match="unanswered"):
        _run(engine, 100_000)  # the fake clock moves 10 ms per call


def test_a_partition_whose_commit_stops_moving_crashes_the_engine_past_the_bound() -> None:
    """Records past the commit and no commit for PARTITION_STALLED_MAX_S (the consumer
    stopped delivering, a batch hangs...): the engine raises, and Ray restarts the
    orchestrator, which replays. A partition that keeps committing under a steady backlog,
    or has none, never trips it."""
    engine, source, _, _ = _engine({"a": 10**6, "b": 0})
    for _ in range(3):  # a steady backlog that keeps settling
        for _ in range(50):
            source.add(_transfer("a", "b"))
            _run(engine, 2)
            engine.check_stalled(source.lag() | {1: 0})
        _run(engine, 10_000)  # 100 s of the fake clock: partition 1 never had records
        engine.check_stalled(source.lag() | {1: 0})
    source.paused = True  # from now on the consumer delivers nothing
    source.add(_transfer("a", "b"))
    engine.check_stalled(source.lag())
    with pytest.raises(EngineError, match="partition 0: 1 records past its commit"):
        for _ in range(100):
            _run(engine, 1_000)  # 10 s of the fake clock
            engine.check_stalled(source.lag())


def test_a_batch_of_a_previous_ownership_settles_nothing_of_the_next() -> None:
    """Partition 0 is revoked (or lost) while its batch is in flight, then assigned back and
    replayed from the committed position: the old batch's late outcome must neither crash
    the engine nor settle the new ownership's offsets; the replayed record settles them.
    A stale state at assignment (lost without revocation) is forgotten the same way."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    original, held = shards.dispatch, []

    def dispatch(shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None:
        if not held:
            held.append((shard, batch_id, batch))  # the first batch hangs (node cut off)
            return
        original(shard, batch_id, batch)

    shards.dispatch = dispatch  # type: ignore[method-assign]
    tid = str(uuid.uuid4())
    source.add(_transfer("a", "b", 1, tid))
    engine.tick()
    engine.on_assigned({0})  # assigned back without a revocation: the old state is stale
    source.records.append(SourceRecord(0, 0, _transfer("a", "b", 1, tid)))  # replay
    _run(engine, 20)
    assert source.committed == {}  # the replayed record waits for the old batch
    original(*held.pop())  # the old batch answers at last
    _run(engine, 50)
    assert source.committed == {0: 1}
    assert shards.balances == {"a": 9, "b": 1}  # applied once


def test_a_packed_record_commits_once_every_transfer_it_carries_settled() -> None:
    """A record of three transfers is queued in its order with each transfer's index; its
    offset (and the next record's) commits only once its last transfer settled."""
    engine, source, _, shards = _engine({"a": 10, "b": 0, "g": 10, "h": 0})
    original, held = shards.dispatch, []

    def dispatch(shard: int, batch_id: str, batch: Sequence[QueuedTransfer]) -> None:
        if any(q.debit_account_id == "g" for q in batch) and not held:
            held.append((shard, batch_id, batch))  # g's shard (not a's) hangs a while
            return
        original(shard, batch_id, batch)

    shards.dispatch = dispatch  # type: ignore[method-assign]
    source.add(encode_packed([_transfer("a", "b"), _transfer("g", "h"), _transfer("a", "b")]))
    source.add(_transfer("a", "b"))
    _run(engine, 20)
    queued = [q for _, batch in shards.dispatched for q in batch] + list(held[0][2])
    assert sorted((q.offset, q.index) for q in queued) == [(0, 0), (0, 1), (0, 2), (1, None)]
    assert engine.stats.settled == 3 and source.committed == {}
    original(*held.pop())
    _run(engine, 20)
    assert source.committed == {0: 2}
    assert shards.balances == {"a": 7, "b": 3, "g": 9, "h": 1}


def test_a_malformed_transfer_of_a_packed_record_goes_alone_to_the_dlq() -> None:
    """One element that is not a transfer is dead-lettered with its index; its neighbours
    settle, and the record's offset commits."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    source.add(encode_packed([_transfer("a", "b"), b'{"id":"nope"}', _transfer("a", "b")]))
    _run(engine)
    assert [(d.offset, d.index, d.value) for d in source.dead] == [(0, 1, b'{"id":"nope"}')]
    assert (engine.stats.settled, engine.stats.dead_lettered) == (2, 1)
    assert source.committed == {0: 1}
    assert shards.balances == {"a": 8, "b": 2}


def test_a_packed_record_larger_than_the_queue_waits_for_room_in_order() -> None:
    """The pending queue never overflows: transfers of a record beyond its room are staged
    and queued as it drains, in order, and nothing more is polled meanwhile."""
    engine, source, _, shards = _engine({"a": 10**6, "b": 0})
    engine.queue = type(engine.queue)(capacity=4)
    ids = [str(uuid.uuid4()) for _ in range(10)]
    source.add(encode_packed([_transfer("a", "b", 1, tid) for tid in ids]))
    engine.tick()
    source.add(_transfer("a", "b"))
    engine.tick()
    assert len(engine.queue) <= 4 and len(source.records) == 1
    _run(engine, 50)
    settled = [q.id for _, batch in shards.dispatched for q in batch]
    assert settled[:10] == ids and len(settled) == 11
    assert source.committed == {0: 2}


def test_duplicate_id_settles_once_and_both_offsets_commit() -> None:
    """The same transfer id twice in the topic moves money once; both offsets commit."""
    engine, source, _, shards = _engine({"a": 10, "b": 0})
    tid = str(uuid.uuid4())
    source.add(_transfer("a", "b", 5, tid))
    source.add(_transfer("a", "b", 5, tid))
    _run(engine)
    assert shards.balances == {"a": 5, "b": 5}
    assert source.committed == {0: 2}


def test_foreign_lock_delays_but_does_not_lose() -> None:
    """Accounts leased by another orchestrator wait; once free, the transfer settles."""
    engine, source, locks, _ = _engine({"a": 10, "b": 0})
    locks.foreign = {"a"}
    source.add(_transfer("a", "b"))
    _run(engine, 20)
    assert engine.stats.settled == 0 and engine.stats.lock_conflicts > 0
    locks.foreign = set()
    _run(engine, 50)
    assert engine.stats.settled == 1


def test_backpressure_pauses_source_when_queue_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every shard full, the pending queue fills to its bound and polling pauses."""
    engine, source, _, shards = _engine({"a": 10**6, "b": 0})
    engine.queue = type(engine.queue)(capacity=5)
    monkeypatch.setattr(shards, "completed", lambda timeout_s: [])  # shards never answer
    for _ in range(40):
        source.add(_transfer("a", "b"))
    _run(engine, 20)
    assert source.paused
    assert len(engine.queue) <= 5


class LateShards(FakeShards):
    """Answers each batch one `completed` call late, so batches overlap like real shards."""

    def __init__(self, balances: dict[str, int]) -> None:
        super().__init__(balances)
        self._late: list[Completion] = []

    def completed(self, timeout_s: float) -> list[Completion]:
        out, self._late = self._late, super().completed(timeout_s)
        return out


class CountingSource(FakeSource):
    def __init__(self) -> None:
        super().__init__()
        self.commits = 0

    def commit(self, positions: Mapping[int, int]) -> None:
        self.commits += 1
        super().commit(positions)


def test_commits_at_most_once_per_interval_under_load_and_at_once_when_idle() -> None:
    """A busy engine commits on an interval (each commit is a broker round trip); once idle
    it commits everything settled without waiting."""
    now = [0.0]
    pairs = 8  # disjoint account pairs, so consecutive batches do not wait for each other
    balances = {f"{side}{k}": 10**6 for k in range(pairs) for side in "ab"}
    source, shards = CountingSource(), LateShards(balances)
    engine = Engine(source, FakeLocks(), shards, lambda: now[0])
    tick_s, busy_s = 0.01, 1.0
    for step in range(int(busy_s / tick_s)):
        source.add(_transfer(f"a{step % pairs}", f"b{step % pairs}"))
        engine.tick()
        now[0] += tick_s
        assert engine.inflight, "the load keeps batches in flight"
    assert source.commits <= busy_s / engine_module.COMMIT_INTERVAL_S + 1
    busy_commits = source.commits
    for _ in range(5):
        engine.tick()
        now[0] += tick_s
    assert engine.idle and source.commits > busy_commits
    assert source.committed == {0: int(busy_s / tick_s)}


class HeldShards(FakeShards):
    """Answers only once the test lets go, like a shard still applying its batch."""

    def __init__(self, balances: dict[str, int]) -> None:
        super().__init__(balances)
        self.holding = True
        self._held: list[Completion] = []

    def completed(self, timeout_s: float) -> list[Completion]:
        self._held.extend(super().completed(timeout_s))
        if self.holding:
            return []
        out, self._held = self._held, []
        return out


def _lingering_engine(pairs: int) -> tuple[Engine, FakeSource, HeldShards, list[float]]:
    now = [0.0]
    balances = {f"{side}{k}": 10 for k in range(pairs) for side in "ab"}
    source, shards = FakeSource(), HeldShards(balances)
    return Engine(source, FakeLocks(), shards, lambda: now[0]), source, shards, now


def test_a_round_waits_for_more_transfers_while_batches_are_in_flight() -> None:
    """Nothing in flight: a transfer is dispatched at once. A batch in flight: the next round
    waits ROUND_LINGER_S, so transfers gather into larger batches instead of one round per
    freed shard slot."""
    engine, source, shards, now = _lingering_engine(pairs=2)
    source.add(_transfer("a0", "b0"))
    engine.tick()
    assert len(shards.dispatched) == 1
    source.add(_transfer("a1", "b1"))
    engine.tick()
    now[0] += engine_module.ROUND_LINGER_S * 0.9
    engine.tick()
    assert len(shards.dispatched) == 1, "in flight and within the linger: the round waits"
    now[0] += engine_module.ROUND_LINGER_S * 0.1
    engine.tick()
    assert len(shards.dispatched) == 2, "the linger is over"
    shards.holding = False
    _run(engine, 5)
    assert engine.stats.settled == 2 and engine.idle


def test_a_round_goes_at_once_when_the_flight_lands_or_the_queue_fills() -> None:
    """The linger ends early when every batch in flight has answered, or when a round's
    worth of transfers (ROUND_FILL_TRANSFERS) is pending: a bulk load is never held back."""
    fill = engine_module.ROUND_FILL_TRANSFERS
    engine, source, shards, _now = _lingering_engine(pairs=fill + 2)
    source.add(_transfer("a0", "b0"))
    engine.tick()
    source.add(_transfer("a1", "b1"))
    engine.tick()
    assert len(shards.dispatched) == 1
    shards.holding = False
    engine.tick()
    assert len(shards.dispatched) == 2, "the batch in flight answered: no need to wait"
    shards.holding = True
    engine.tick()
    for k in range(2, fill + 2):
        source.add(_transfer(f"a{k}", f"b{k}"))
    engine.tick()
    assert sum(len(batch) for _, batch in shards.dispatched[2:]) == fill, "a full round goes"
    shards.holding = False
    _run(engine, 5)
    assert engine.stats.settled == fill + 2 and engine.idle

"""`orion audit`: check the ledger's five invariants (DESIGN.md, "Money and data"), that
nothing accepted is left unsettled, and that holds and reversals add up (#7).

Responsibilities: run one check per invariant against a PostgreSQL snapshot, and against the
transfers topic for #4; check #6, that no transfer accepted more than `unsettled_after_s`
ago (default 60 s) is still without a final outcome; collect exact counts and a few
examples; render lines or JSON.

Guarantees:
- Read-only: nothing is written to PostgreSQL and no Kafka offset is ever committed.
- The group's committed offsets are read BEFORE the database snapshot is taken. The
  orchestrator commits an offset only after every transfer below it was settled, so each
  transfer #4 looks for is already visible: a live system cannot cause a false alarm.
- Bounded: at most EXAMPLES_PER_CHECK_MAX examples per check; ids are looked up in chunks
  of LOOKUP_IDS_MAX, so memory does not grow with the topic.
- Undecodable records and transfers, and those a shard sent to the DLQ (its keys name their
  place in the transfers topic: `partition:offset` for a record, `partition:offset:index`
  for one transfer of a packed record), count as "dlq", records past the committed offsets
  as "in flight"; neither is a violation. A topic that cannot be read to the committed
  offsets is one.
- #6 reads the records past the committed offsets (all of a partition never committed) that
  were produced before now - unsettled_after_s: each that decodes and has neither a final
  row nor a DLQ entry is a violation. A live system within the bound cannot fail it; a
  stuck partition or a dead orchestrator fails it once the bound passes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TypeVar

from orion.adapters import ledger_audit as db
from orion.adapters.ledger_audit import Connection, KafkaReadError, Record, TopicSnapshot
from orion.config import Settings
from orion.domain import Status
from orion.messages import (
    ORCHESTRATOR_GROUP,
    MessageError,
    Undecodable,
    decode_record,
)

EXAMPLES_PER_CHECK_MAX = 10  # enough to start debugging; the count says how bad it is
UNSETTLED_AFTER_S_DEFAULT = 60.0  # settlement takes well under a second; a minute is stuck
LOOKUP_IDS_MAX = 10_000  # ids per `= ANY(...)` lookup: one round trip, a small array
# A record is settled once its row has any of these (a hold's `pending` included: what the
# hold does next is another record's outcome).
FINAL_STATUSES = frozenset(str(status) for status in Status)
TITLES = {
    1: "balances sum to zero",
    2: "account balances match their entries and overdraft limits",
    3: "every transfer settled once, with its two entries or a reason",
    4: "every acknowledged transfer reached one final outcome",
    5: "transfers from one debit account settled in acceptance order",
    6: "no accepted transfer left without an outcome past the bound",
    7: "holds and reversals: pending amounts, one resolution per hold, reversals bounded",
}
T = TypeVar("T")
Lookup = Callable[[Sequence[str]], Mapping[str, str]]
# Where a dead letter came from: (partition, offset) for a whole record, (partition, offset,
# index) for one transfer of a packed record.
Place = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Violation:
    check: int
    detail: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One invariant: how many violations, a bounded sample of them, and context notes."""

    number: int
    count: int = 0
    examples: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.count == 0

    @property
    def title(self) -> str:
        return TITLES[self.number]

    def lines(self) -> list[str]:
        head = f"ok  {self.number} {self.title}"
        if not self.ok:
            head = f"FAIL {self.number} {self.title}: {self.count} violation(s)"
        more = self.count - len(self.examples)
        tail = [f"... and {more} more"] if more > 0 else []
        return [head] + [f"    {line}" for line in (*self.examples, *tail, *self.notes)]


@dataclass(frozen=True, slots=True)
class AuditReport:
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def violations(self) -> tuple[Violation, ...]:
        """The example violations of every failed check (bounded per check)."""
        return tuple(Violation(c.number, e) for c in self.checks for e in c.examples)

    def lines(self) -> list[str]:
        failed = sum(not check.ok for check in self.checks)
        verdict = "all invariants hold" if self.ok else f"{failed} check(s) failed"
        return [line for check in self.checks for line in check.lines()] + [f"audit: {verdict}"]

    def to_json(self) -> str:
        checks = [
            {"check": c.number, "title": c.title, "ok": c.ok, "violations": c.count}
            | {"examples": list(c.examples), "notes": list(c.notes)}
            for c in self.checks
        ]
        return json.dumps({"ok": self.ok, "checks": checks}, indent=2)


def run_audit(
    settings: Settings,
    *,
    group: str = ORCHESTRATOR_GROUP,
    topic: str | None = None,
    conn: Connection | None = None,
    unsettled_after_s: float = UNSETTLED_AFTER_S_DEFAULT,
) -> AuditReport:
    """Audit everything; on `conn` (the caller's transaction) or on a fresh snapshot."""
    bootstrap, source = settings.kafka_bootstrap, topic or settings.topic_transfers
    snap = db.topic_snapshot(bootstrap, source, group)
    cutoff_ms = time.time_ns() // 1_000_000 - int(unsettled_after_s * 1000)
    dead = _dead_letters(settings, source)
    if conn is not None:
        return audit_ledger(conn, snap, _kafka(bootstrap, snap, cutoff_ms), dead, unsettled_after_s)
    with db.snapshot(settings.postgres_dsn) as own:
        return audit_ledger(own, snap, _kafka(bootstrap, snap, cutoff_ms), dead, unsettled_after_s)


@dataclass(frozen=True, slots=True)
class KafkaReads:
    """The two lazy reads of the transfers topic the audit makes."""

    acknowledged: Iterable[Record]
    unsettled: Iterable[Record]


def _kafka(bootstrap: str, snap: TopicSnapshot, cutoff_ms: int) -> KafkaReads:
    return KafkaReads(
        db.read_acknowledged(bootstrap, snap), db.read_unsettled(bootstrap, snap, cutoff_ms)
    )


def _dead_letters(settings: Settings, source: str) -> AbstractSet[Place] | str:
    """Where the DLQ's records came from, or why the DLQ could not be read."""
    try:
        return db.read_dead_letters(
            settings.kafka_bootstrap, settings.topic_dlq, source, settings.topic_transfers
        )
    except KafkaReadError as err:
        return str(err)


def audit_ledger(
    conn: Connection,
    snap: TopicSnapshot,
    reads: KafkaReads,
    dead: AbstractSet[Place] | str = frozenset(),
    unsettled_after_s: float = UNSETTLED_AFTER_S_DEFAULT,
) -> AuditReport:
    """The seven checks in order, on `conn`; `reads` are `snap`'s records."""
    lookup = partial(db.final_statuses, conn)
    letters = frozenset() if isinstance(dead, str) else dead
    dlq_note = (f"DLQ not read: {dead}",) if isinstance(dead, str) else ()
    return AuditReport(
        (
            check_balances_sum(conn),
            check_accounts(conn),
            check_transfers(conn),
            check_acknowledged(snap, reads.acknowledged, lookup, letters, dlq_note),
            check_order(conn),
            check_unsettled(reads.unsettled, lookup, letters, unsettled_after_s),
            check_holds(conn, unsettled_after_s),
        )
    )


def check_balances_sum(conn: Connection) -> CheckResult:
    found, total = db.balances_sum(conn, EXAMPLES_PER_CHECK_MAX)
    overall = (f"all currencies: balances sum to {total}",) if total else ()
    return CheckResult(1, found.count + len(overall), found.examples + overall)


def check_accounts(conn: Connection) -> CheckResult:
    found = db.account_mismatches(conn, EXAMPLES_PER_CHECK_MAX)
    return CheckResult(2, found.count, found.examples)


def check_transfers(conn: Connection) -> CheckResult:
    found = db.bad_settlements(conn, EXAMPLES_PER_CHECK_MAX)
    return CheckResult(3, found.count, found.examples)


def check_holds(conn: Connection, overdue_s: float = UNSETTLED_AFTER_S_DEFAULT) -> CheckResult:
    found = db.hold_problems(conn, EXAMPLES_PER_CHECK_MAX, overdue_s)
    return CheckResult(7, found.count, found.examples)


def check_order(conn: Connection) -> CheckResult:
    found = db.order_breaks(conn, EXAMPLES_PER_CHECK_MAX)
    return CheckResult(5, found.count, found.examples)


def check_acknowledged(
    snap: TopicSnapshot,
    records: Iterable[Record],
    lookup: Lookup,
    dead: AbstractSet[Place] = frozenset(),
    extra_notes: tuple[str, ...] = (),
) -> CheckResult:
    """Each record below the committed offsets must have a transfers row, final status, or
    have gone to the DLQ."""
    if not snap.committed:
        return CheckResult(
            4, notes=(f"group {snap.group} has no committed offsets on {snap.topic}: not checked",)
        )
    found = _without_outcome(records, lookup, dead, lambda r, state: state)
    notes = _notes(snap, found.read, found.dlq) + extra_notes
    return CheckResult(4, found.count, found.examples, notes)


def check_unsettled(
    records: Iterable[Record],
    lookup: Lookup,
    dead: AbstractSet[Place] = frozenset(),
    after_s: float = UNSETTLED_AFTER_S_DEFAULT,
) -> CheckResult:
    """Each record accepted more than `after_s` ago must be settled or dead-lettered."""
    now_ms = time.time_ns() // 1_000_000

    def describe(record: Record, state: str) -> str:
        return f"accepted {(now_ms - record.timestamp_ms) / 1000:.0f} s ago, {state}"

    found = _without_outcome(records, lookup, dead, describe)
    note = f"looked at {found.read} records past the committed offsets older than {after_s:g} s"
    return CheckResult(6, found.count, found.examples, (note,))


@dataclass(frozen=True, slots=True)
class _Found:
    count: int
    examples: tuple[str, ...]
    read: int
    dlq: int


def _without_outcome(
    records: Iterable[Record],
    lookup: Lookup,
    dead: AbstractSet[Place],
    describe: Callable[[Record, str], str],
) -> _Found:
    """Decodable transfers that have no final row and are not in the DLQ."""
    count, examples, failure = 0, list[str](), list[str]()
    tally = _Tally()
    for chunk in _chunks(tally.transfers(_until_failure(records, failure)), LOOKUP_IDS_MAX):
        by_id: dict[str, list[_Carried]] = {}
        for carried in chunk:
            by_id.setdefault(carried.transfer_id, []).append(carried)
        statuses = lookup(list(by_id))
        for transfer_id, found in by_id.items():
            status = statuses.get(transfer_id)
            if status in FINAL_STATUSES:
                continue
            missing = [c for c in found if not c.dead_in(dead)]
            tally.dlq += len(found) - len(missing)
            count += len(missing)
            state = "no transfers row" if status is None else f"status {status}"
            room = max(0, EXAMPLES_PER_CHECK_MAX - len(examples))
            examples += [
                f"transfer {transfer_id} ({c.at}): {describe(c.record, state)}"
                for c in missing[:room]
            ]
    count, examples = count + len(failure), failure + examples
    return _Found(count, tuple(examples[:EXAMPLES_PER_CHECK_MAX]), tally.read, tally.dlq)


@dataclass(frozen=True, slots=True)
class _Carried:
    """One transfer as a record of the topic carries it."""

    transfer_id: str  # canonical (a client may resend an id, spelled differently)
    record: Record
    index: int | None  # its place in a packed record

    def dead_in(self, dead: AbstractSet[Place]) -> bool:
        r = self.record
        whole = (r.partition, r.offset) in dead
        return whole or (self.index is not None and (r.partition, r.offset, self.index) in dead)

    @property
    def at(self) -> str:
        where = _at(self.record)
        return where if self.index is None else f"{where} index {self.index}"


@dataclass(slots=True)
class _Tally:
    read: int = 0  # records
    dlq: int = 0  # undecodable records and transfers, and dead-lettered transfers

    def transfers(self, records: Iterable[Record]) -> Iterator[_Carried]:
        """The decodable transfers of `records`, in order; what does not decode is tallied."""
        for record in records:
            self.read += 1
            try:
                found = decode_record(record.value or b"")
            except MessageError:
                self.dlq += 1
                continue
            for place, item in found:
                if isinstance(item, Undecodable):
                    self.dlq += 1
                    continue
                yield _Carried(str(uuid.UUID(item.transfer.id)), record, place)


def in_flight(snap: TopicSnapshot) -> int:
    """Records at or past each partition's committed offset (all of an uncommitted one)."""
    total = 0
    for partition, end in snap.end.items():
        start = snap.beginning.get(partition, 0)
        total += max(0, end - max(start, snap.committed.get(partition, start)))
    return total


def _notes(snap: TopicSnapshot, read: int, dlq: int) -> tuple[str, ...]:
    trimmed = {p: b for p, b in sorted(snap.beginning.items()) if b > 0}
    retention = (f"records deleted by retention, not checked: {trimmed}",) if trimmed else ()
    return (
        f"read {read} records below group {snap.group}'s committed offsets on {snap.topic}",
        f"dlq (undecodable or dead-lettered): {dlq}",
        f"in flight: {in_flight(snap)}",
        *retention,
    )


def _until_failure(records: Iterable[Record], failure: list[str]) -> Iterator[Record]:
    """The records until the topic stops short; the reason lands in `failure`."""
    try:
        yield from records
    except KafkaReadError as err:
        failure.append(str(err))


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _at(record: Record) -> str:
    return f"partition {record.partition} offset {record.offset}"

"""The audit's reads: one SQL query per ledger invariant, and the acknowledged Kafka records.

Guarantees:
- Every function only reads, and runs on the caller's connection and transaction, so a test
  can corrupt data inside its own transaction, audit it, and roll everything back.
- Table names are unqualified: the audit reads whatever `accounts`, `transfers` and `entries`
  the session's search_path resolves (temporary tables first), never a hard-coded schema.
- Each check returns the total number of violating rows and at most `limit` examples, so a
  badly broken ledger still gives a short answer in one round trip per check.
- Kafka is only read: no consumer group is joined and no offset is ever committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import IsolationLevel

from orion.adapters.kafka import admin as kafka_admin
from orion.adapters.postgres import CONNECT_TIMEOUT_S

Connection = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Findings:
    """How many rows break a rule, and a bounded sample of them as readable lines."""

    count: int
    examples: tuple[str, ...]


@contextmanager
def snapshot(dsn: str) -> Iterator[Connection]:
    """A read-only REPEATABLE READ transaction: every check sees the same instant."""
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn


def _findings(conn: Connection, query: LiteralString, limit: int) -> Findings:
    """Run a query yielding (total count, detail) rows, ordered and limited to `limit`."""
    rows = conn.execute(query, {"limit": limit}).fetchall()
    return Findings(int(rows[0][0]) if rows else 0, tuple(str(row[1]) for row in rows))


_UNBALANCED_CURRENCIES = """
SELECT count(*) OVER (), format('currency %%s: balances sum to %%s', currency, total)
FROM (SELECT currency, sum(balance) AS total FROM accounts GROUP BY currency) s
WHERE total <> 0 ORDER BY currency LIMIT %(limit)s
"""


def balances_sum(conn: Connection, limit: int) -> tuple[Findings, int]:
    """Currencies whose balances do not sum to zero, and the sum over all accounts."""
    total = conn.execute("SELECT coalesce(sum(balance), 0) FROM accounts").fetchall()[0][0]
    return _findings(conn, _UNBALANCED_CURRENCIES, limit), int(total)


_ACCOUNT_MISMATCHES = """
WITH sums AS (
    SELECT account_id, sum(delta) AS total, max(id) AS last_id FROM entries GROUP BY account_id
)
SELECT count(*) OVER (), format('account %%s: %%s', a.id, concat_ws('; ',
    CASE WHEN a.balance <> coalesce(s.total, 0)
        THEN format('balance %%s but entries sum to %%s', a.balance, coalesce(s.total, 0)) END,
    CASE WHEN e.balance_after <> a.balance
        THEN format('balance %%s but latest entry %%s left %%s', a.balance, e.id, e.balance_after)
    END,
    CASE WHEN a.balance - a.pending_debits < -a.overdraft_limit
        THEN format('balance %%s%%s below overdraft limit %%s', a.balance,
            CASE WHEN a.pending_debits > 0
                THEN format(' less pending debits %%s', a.pending_debits) ELSE '' END,
            a.overdraft_limit) END))
FROM accounts a
LEFT JOIN sums s ON s.account_id = a.id
LEFT JOIN entries e ON e.id = s.last_id
WHERE a.balance <> coalesce(s.total, 0) OR e.balance_after <> a.balance
   OR a.balance - a.pending_debits < -a.overdraft_limit
ORDER BY a.id LIMIT %(limit)s
"""


def account_mismatches(conn: Connection, limit: int) -> Findings:
    """Accounts whose balance is not their entries' sum, nor their latest balance_after, or
    whose available balance (balance - pending debits) is below their overdraft limit."""
    return _findings(conn, _ACCOUNT_MISMATCHES, limit)


_BAD_SETTLEMENTS = """
WITH agg AS (
    SELECT e.transfer_id, count(*) AS n, sum(e.delta) AS total,
        count(*) FILTER (WHERE e.account_id = t.debit_account_id AND e.delta = -t.amount) AS d,
        count(*) FILTER (WHERE e.account_id = t.credit_account_id AND e.delta = t.amount) AS c
    FROM entries e JOIN transfers t ON t.id = e.transfer_id GROUP BY e.transfer_id
)
SELECT count(*) OVER (), format('transfer %%s (%%s): %%s', t.id, t.status, p.problem)
FROM transfers t LEFT JOIN agg ON agg.transfer_id = t.id
CROSS JOIN LATERAL (SELECT CASE
    WHEN t.status = 'claimed' THEN 'claimed but never settled'
    WHEN NOT (t.status = 'rejected'
        OR (t.kind IN ('immediate', 'reversal') AND t.status = 'completed')
        OR (t.kind = 'pending' AND t.status IN ('pending', 'posted', 'voided', 'expired'))
        OR (t.kind = 'post' AND t.status = 'posted')
        OR (t.kind = 'void' AND t.status = 'voided')
        OR (t.kind = 'expire' AND t.status = 'expired'))
        THEN format('status %%s is not one a %%s record settles with', t.status, t.kind)
    WHEN (t.status = 'completed' OR t.kind = 'post' AND t.status = 'posted')
        AND NOT (coalesce(agg.n, 0) = 2 AND agg.total = 0 AND agg.d = 1 AND agg.c = 1)
        THEN format('%%s entries summing to %%s (%%s debit of -%%s, %%s credit of +%%s)',
            coalesce(agg.n, 0), coalesce(agg.total, 0), coalesce(agg.d, 0), t.amount,
            coalesce(agg.c, 0), t.amount)
    WHEN NOT (t.status = 'completed' OR t.kind = 'post' AND t.status = 'posted')
        AND agg.n IS NOT NULL THEN format('%%s entries, yet it moves no money', agg.n)
    WHEN t.status = 'rejected' AND coalesce(t.reason, '') = '' THEN 'no reason'
END AS problem) p
WHERE p.problem IS NOT NULL ORDER BY t.id LIMIT %(limit)s
"""


def bad_settlements(conn: Connection, limit: int) -> Findings:
    """Transfers left claimed, with a status their kind cannot settle with, moving money
    (completed, or a post that posted) without exactly their two entries, with entries
    though they move none (rejected, holds, voids, expiries), or rejected without a reason."""
    return _findings(conn, _BAD_SETTLEMENTS, limit)


_ORDER_BREAKS = """
SELECT count(*) OVER (), CASE WHEN settle_seq IS NULL
    THEN format('account %%s: transfer %%s (partition %%s offset %%s%%s) has no settle_seq',
        debit_account_id, id, kafka_partition, kafka_offset, at_index)
    ELSE format('account %%s: transfer %%s (partition %%s offset %%s%%s, settle_seq %%s) settled'
        ' before earlier-accepted %%s (partition %%s offset %%s%%s, settle_seq %%s)',
        debit_account_id, id, kafka_partition, kafka_offset, at_index, settle_seq,
        prev_id, prev_partition, prev_offset, prev_at_index, prev_seq) END
FROM (
    SELECT id, debit_account_id, kafka_partition, kafka_offset, idx, settle_seq, at_index,
        lag(id) OVER w AS prev_id, lag(kafka_partition) OVER w AS prev_partition,
        lag(kafka_offset) OVER w AS prev_offset, lag(idx) OVER w AS prev_idx,
        lag(at_index) OVER w AS prev_at_index, lag(settle_seq) OVER w AS prev_seq
    FROM (SELECT *, coalesce(kafka_index, -1) AS idx,
                 coalesce(' index ' || kafka_index, '') AS at_index FROM transfers) t
    WHERE kafka_partition IS NOT NULL AND kafka_offset IS NOT NULL
    WINDOW w AS (PARTITION BY debit_account_id
                 ORDER BY kafka_partition, kafka_offset, idx, settle_seq)
) o
WHERE settle_seq IS NULL
   OR (settle_seq <= prev_seq
       AND (kafka_partition, kafka_offset, idx) <> (prev_partition, prev_offset, prev_idx))
ORDER BY debit_account_id, kafka_partition, kafka_offset, idx LIMIT %(limit)s
"""


def order_breaks(conn: Connection, limit: int) -> Findings:
    """Per debit account, consecutive transfers (in Kafka order) whose settle_seq does not
    increase, and Kafka-sourced transfers without a settle_seq. Two transfers claiming the
    same coordinates (only test fixtures do) have no acceptance order, so are not compared."""
    return _findings(conn, _ORDER_BREAKS, limit)


_HOLD_PROBLEMS = """
WITH open_holds AS (
    SELECT account_id, sum(debits) AS debits, sum(credits) AS credits FROM (
        SELECT debit_account_id AS account_id, amount AS debits, 0 AS credits
        FROM transfers WHERE kind = 'pending' AND status = 'pending'
        UNION ALL
        SELECT credit_account_id, 0, amount
        FROM transfers WHERE kind = 'pending' AND status = 'pending') x
    GROUP BY account_id
), actions AS (
    SELECT target_id, count(*) AS n, min(status) AS status, min(amount) AS amount
    FROM transfers WHERE kind IN ('post', 'void', 'expire') AND status <> 'rejected'
    GROUP BY target_id
), reversals AS (
    SELECT target_id, sum(amount) AS total
    FROM transfers WHERE kind = 'reversal' AND status = 'completed' GROUP BY target_id
), problems AS (
    SELECT a.id AS key, format('account %%s: pending debits / credits %%s / %%s, but its open'
        ' holds sum to %%s / %%s', a.id, a.pending_debits, a.pending_credits,
        coalesce(o.debits, 0), coalesce(o.credits, 0)) AS problem
    FROM accounts a LEFT JOIN open_holds o ON o.account_id = a.id
    WHERE a.pending_debits <> coalesce(o.debits, 0) OR a.pending_credits <> coalesce(o.credits, 0)
    UNION ALL
    SELECT h.id::text, format('hold %%s (%%s): %%s', h.id, h.status, p.problem)
    FROM transfers h LEFT JOIN actions x ON x.target_id = h.id
    CROSS JOIN LATERAL (SELECT CASE
        WHEN x.n > 1 THEN format('resolved %%s times', x.n)
        WHEN h.status IN ('pending', 'rejected') AND x.n IS NOT NULL
            THEN format('yet %%s by a record', x.status)
        WHEN h.status IN ('posted', 'voided', 'expired') AND x.n IS NULL
            THEN 'no post, void or expire record resolved it'
        WHEN x.status <> h.status THEN format('but its record settled %%s', x.status)
        WHEN h.status = 'posted' AND h.posted_amount IS DISTINCT FROM x.amount
            THEN format('posted_amount %%s, but its post moved %%s', h.posted_amount, x.amount)
        WHEN h.posted_amount > h.amount
            THEN format('posted %%s of a hold of %%s', h.posted_amount, h.amount)
        WHEN h.status = 'pending' AND h.expires_at < now() - make_interval(secs => %(overdue_s)s)
            THEN format('expired at %%s, still pending', h.expires_at)
    END AS problem) p
    WHERE h.kind = 'pending' AND p.problem IS NOT NULL
    UNION ALL
    SELECT x.target_id::text, format('transfer %%s: %%s %%s it, but it is not a hold',
        x.target_id, x.n, x.status)
    FROM actions x JOIN transfers t ON t.id = x.target_id WHERE t.kind <> 'pending'
    UNION ALL
    SELECT t.id::text, format('transfer %%s (%%s %%s of %%s): reversed_amount %%s, completed'
        ' reversals %%s', t.id, t.kind, t.status, coalesce(t.posted_amount, t.amount),
        t.reversed_amount, coalesce(r.total, 0))
    FROM transfers t LEFT JOIN reversals r ON r.target_id = t.id
    WHERE (t.reversed_amount > 0 OR r.total IS NOT NULL)
      AND (t.reversed_amount <> coalesce(r.total, 0)
        OR t.reversed_amount > CASE
            WHEN t.kind IN ('immediate', 'reversal') AND t.status = 'completed' THEN t.amount
            WHEN t.kind = 'pending' AND t.status = 'posted' THEN t.posted_amount
            ELSE 0 END)
)
SELECT count(*) OVER (), problem FROM problems ORDER BY key LIMIT %(limit)s
"""


def hold_problems(conn: Connection, limit: int, overdue_s: float) -> Findings:
    """Accounts whose pending amounts are not the sum of their open holds; holds resolved
    more than once, resolved without a record that did it, posted above the held amount,
    or still pending `overdue_s` past their timeout (the expiry is stuck); post / void /
    expire records that settled on something not a hold; transfers whose reversed amount
    is not the sum of their completed reversals, or exceeds what they moved."""
    rows = conn.execute(_HOLD_PROBLEMS, {"limit": limit, "overdue_s": overdue_s}).fetchall()
    return Findings(int(rows[0][0]) if rows else 0, tuple(str(row[1]) for row in rows))


def final_statuses(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """Status of each of `ids` that has a transfers row (canonical lower-case UUID text)."""
    rows = conn.execute(
        "SELECT id::text, status FROM transfers WHERE id = ANY(%s::uuid[])", (list(ids),)
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


# --- Kafka: what the orchestrator group has acknowledged as settled ---------------------

KAFKA_POLL_MS = 500  # one poll's wait; short so the idle bound below is checked often
KAFKA_POLL_RECORDS_MAX = 5_000  # records per poll: bounds memory between lookups
KAFKA_IDLE_S = 30.0  # a local broker answers in ms; this long without a record means it is down


class KafkaReadError(RuntimeError):
    """The topic could not be read up to the committed offsets: #4 is not verified."""


@dataclass(frozen=True, slots=True)
class TopicSnapshot:
    """A group's committed offsets on a topic and the topic's offset range per partition."""

    topic: str
    group: str
    committed: dict[int, int]
    beginning: dict[int, int]
    end: dict[int, int]


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int = 0  # when the broker got it (the producer's create time)


def topic_snapshot(bootstrap: str, topic: str, group: str) -> TopicSnapshot:
    """Committed offsets first, then the partitions' bounds (so end >= committed)."""
    client = kafka_admin(bootstrap)
    try:
        offsets = client.list_group_offsets({group: None}).get(group, {})
    finally:
        client.close()
    committed = {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}
    committed = {p: offset for p, offset in committed.items() if offset >= 0}
    if not committed:
        return TopicSnapshot(topic, group, {}, {}, {})
    consumer = _consumer(bootstrap)
    try:
        known = consumer.partitions_for_topic(topic) or ()  # None: the topic is gone
        parts = [TopicPartition(topic, p) for p in sorted(known)]
        beginning = {tp.partition: int(o) for tp, o in consumer.beginning_offsets(parts).items()}
        end = {tp.partition: int(o) for tp, o in consumer.end_offsets(parts).items()}
    finally:
        consumer.close(autocommit=False)
    return TopicSnapshot(topic, group, committed, beginning, end)


def read_acknowledged(bootstrap: str, snap: TopicSnapshot) -> Iterator[Record]:
    """Every record from each partition's beginning up to (excluding) its committed offset.

    Reads with assign/seek and no group, so it never moves anyone's offsets. Raises
    KafkaReadError when no record arrives for KAFKA_IDLE_S before the reads are done.
    """
    stops = {p: c for p, c in snap.committed.items() if c > snap.beginning.get(p, 0)}
    if not stops:
        return
    consumer = _consumer(bootstrap)
    try:
        pending = {p: TopicPartition(snap.topic, p) for p in stops}
        consumer.assign(list(pending.values()))
        for p, tp in pending.items():
            consumer.seek(tp, snap.beginning.get(p, 0))
        idle_until = time.monotonic() + KAFKA_IDLE_S
        while pending:
            polled = consumer.poll(timeout_ms=KAFKA_POLL_MS, max_records=KAFKA_POLL_RECORDS_MAX)
            for tp, records in polled.items():
                yield from (
                    Record(tp.partition, r.offset, r.value, int(r.timestamp))
                    for r in records
                    if r.offset < stops[tp.partition]
                )
            if polled:
                idle_until = time.monotonic() + KAFKA_IDLE_S
            for p in [p for p, tp in pending.items() if consumer.position(tp) >= stops[p]]:
                consumer.pause(pending.pop(p))
            if pending and time.monotonic() > idle_until:
                raise KafkaReadError(
                    f"{snap.topic}: no record for {KAFKA_IDLE_S:.0f} s before the committed "
                    f"offsets of partitions {sorted(pending)}"
                )
    finally:
        consumer.close(autocommit=False)


def read_unsettled(bootstrap: str, snap: TopicSnapshot, cutoff_ms: int) -> Iterator[Record]:
    """Records past each partition's committed offset (all of a partition never committed)
    produced before `cutoff_ms`: accepted long enough ago that they should be settled.
    Records of one partition are in produce order, so a partition is done at the first
    record at or past the cutoff, or at the end offset the snapshot saw."""
    starts = {p: max(snap.committed.get(p, 0), snap.beginning.get(p, 0)) for p in snap.end}
    stops = {p: end for p, end in snap.end.items() if end > starts[p]}
    if not stops:
        return
    consumer = _consumer(bootstrap)
    try:
        pending = {p: TopicPartition(snap.topic, p) for p in stops}
        consumer.assign(list(pending.values()))
        for p, tp in pending.items():
            consumer.seek(tp, starts[p])
        idle_until = time.monotonic() + KAFKA_IDLE_S
        while pending:
            polled = consumer.poll(timeout_ms=KAFKA_POLL_MS, max_records=KAFKA_POLL_RECORDS_MAX)
            for tp, records in polled.items():
                for r in records:
                    if tp.partition in pending and r.offset < stops[tp.partition]:
                        if r.timestamp >= cutoff_ms:
                            consumer.pause(pending.pop(tp.partition))
                            break
                        yield Record(tp.partition, r.offset, r.value, int(r.timestamp))
            if polled:
                idle_until = time.monotonic() + KAFKA_IDLE_S
            for p in [p for p, tp in pending.items() if consumer.position(tp) >= stops[p]]:
                consumer.pause(pending.pop(p))
            if pending and time.monotonic() > idle_until:
                raise KafkaReadError(f"{snap.topic}: no record for {KAFKA_IDLE_S:.0f} s")
    finally:
        consumer.close(autocommit=False)


DLQ_RECORDS_MAX = 1_000_000  # a DLQ this long is an incident of its own; the audit says so
DLQ_TOPIC_HEADER = "orion-topic"  # the transfers topic a dead letter came from


def read_dead_letters(
    bootstrap: str, dlq_topic: str, source_topic: str, untagged_source: str
) -> set[tuple[int, ...]]:
    """Where in `source_topic` every dead letter came from: (partition, offset) for a whole
    record, (partition, offset, index) for one transfer of a packed record. Records from
    before the DLQ named their topic count as `untagged_source`'s."""
    consumer = _consumer(bootstrap)
    found: set[tuple[int, ...]] = set()
    try:
        parts = [
            TopicPartition(dlq_topic, p) for p in consumer.partitions_for_topic(dlq_topic) or ()
        ]
        if not parts:
            return found
        stops = {tp: int(o) for tp, o in consumer.end_offsets(parts).items() if o > 0}
        if not stops:
            return found  # an empty DLQ
        consumer.assign(list(stops))
        consumer.seek_to_beginning(*stops)
        read, idle_until = 0, time.monotonic() + KAFKA_IDLE_S
        while any(consumer.position(tp) < end for tp, end in stops.items()):
            polled = consumer.poll(timeout_ms=KAFKA_POLL_MS, max_records=KAFKA_POLL_RECORDS_MAX)
            for records in polled.values():
                read += len(records)
                found.update(_letter(r, source_topic, untagged_source) for r in records)
            if polled:
                idle_until = time.monotonic() + KAFKA_IDLE_S
            if read > DLQ_RECORDS_MAX or time.monotonic() > idle_until:
                raise KafkaReadError(f"{dlq_topic}: not readable to its end ({read} records)")
        found.discard(())
        return found
    finally:
        consumer.close(autocommit=False)


def _letter(record: Any, source_topic: str, untagged_source: str) -> tuple[int, ...]:
    """Where a DLQ record came from (see `read_dead_letters`), or () when not from
    `source_topic` or keyed otherwise."""
    headers = dict(record.headers or ())
    topic = headers.get(DLQ_TOPIC_HEADER, b"").decode(errors="replace") or untagged_source
    place = (record.key or b"").decode(errors="replace").split(":")
    if topic != source_topic or len(place) not in (2, 3) or not all(p.isdigit() for p in place):
        return ()
    return tuple(int(p) for p in place)


def _consumer(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="orion-audit",
        group_id=None,
        enable_auto_commit=False,
    )

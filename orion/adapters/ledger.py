"""PostgreSQL ledger for shard actors: applies one batch in ONE transaction, each transfer
row written once, final.

Order inside the transaction (DESIGN "Shard apply"), so a batch delivered twice — Kafka
redelivery, re-dispatch after a crash, two shards racing — can never apply twice:
1. lock the accounts of every record FOR UPDATE, in id order (no deadlocks between shards);
   a transaction settling the same transfer holds the same locks, so once they are ours it
   has committed or rolled back;
2. then (a new statement, so a new READ COMMITTED snapshot) read which ids are stored
   already: those are repeats, answered with their stored outcome; the rest are new (an id
   twice in one batch: the first occurrence is new, the second a repeat);
3. decide the new ones in order with the pure `decide_batch`;
4. insert their final transfer rows ON CONFLICT (id) DO NOTHING RETURNING id, then the
   targets they changed (a hold resolved, a transfer reversed), entries, balances and
   pending amounts, set-based; commit. An id that another transaction stored meanwhile (only
   possible when it reuses the id for a transfer on other accounts) makes the insert return
   fewer rows: the whole transaction rolls back and raises, and the retry sees it stored.

Holds and reversals (orion.domain.decision): the rows their records target are read after
the locks, like the stored ids. A post, void or expire record carries its hold's accounts
and a reversal its original's turned round, so the transaction that last changed a target
held the same account locks: the read sees its latest state. A hold's row is the one row
written twice (inserted `pending`, updated when resolved).

Before, the rows were claimed first ('claimed') and finalised by an UPDATE, which wrote a
second version of every transfer row (`python -m load.db_layers`, alternated pairs: apply_batch
16,063 / 16,605 -> 18,567 / 16,544 transfers/s; PostgreSQL CPU per settled transfer in the
batch benchmark 0.057 / 0.063 -> 0.054 / 0.052 ms).

A transfer id that is already settled is answered with its stored outcome when the record
carries the same transfer (a redelivery, or a client retry past the API's idempotency
window); a record that reuses a settled id for ANOTHER transfer is never applied: it is
answered `dead_lettered` / `duplicate_id` for the DLQ, and the stored transfer is untouched.

Failure kinds (`is_record_failure`): an error the data of a record causes (the database
refuses a value, a constraint, a text it cannot encode, a money rule that would break) is
isolated by the shard, record by record (orion.orchestration.isolation); every other error
(connection lost, server shutting down, serialization failure) is infrastructure and is
raised for the orchestrator to retry.

The transaction runs in libpq pipeline mode: statements whose results are not needed are
sent without waiting, so a batch costs three round trips (claim, lock, write + commit)
instead of one per statement. This matters on a busy host, where every round trip is a pair
of context switches between the shard and its backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from orion.adapters.postgres import CONNECT_TIMEOUT_S
from orion.domain import AccountState, Decision, LedgerInvariantError, Reason, Status, decide_batch
from orion.domain.model import Kind, Target
from orion.domain.planner import BATCH_TRANSFERS_MAX
from orion.messages import DEAD_LETTERED, OutcomeRecord, QueuedTransfer, outcome_of
from orion.orchestration.isolation import Unsettleable, settle_isolating

Conn = psycopg.Connection[tuple[object, ...]]

# settle_seq = batch sequence * stride + position: one order across batches and inside one.
SETTLE_SEQ_STRIDE = 10_000
if BATCH_TRANSFERS_MAX >= SETTLE_SEQ_STRIDE:
    raise RuntimeError("SETTLE_SEQ_STRIDE must exceed BATCH_TRANSFERS_MAX")

STORED_IDS = "SELECT id::text FROM transfers WHERE id = ANY(%b::uuid[])"
# The uncorrelated scalar subquery runs once per statement: one sequence value per batch.
INSERT_FINAL = f"""
INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency, status,
                       reason, batch_id, shard, kafka_partition, kafka_offset, kafka_index,
                       metadata, accepted_at, settled_at, settle_seq)
SELECT u.id, u.debit, u.credit, u.amount, u.currency, u.status, u.reason, %s, %s, u.p, u.o,
       u.i, u.meta, to_timestamp(u.acc / 1000.0), %s,
       (SELECT nextval('transfer_settle_seq')) * {SETTLE_SEQ_STRIDE} + u.pos
FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[],
            %b::text[], %b::int[], %b::bigint[], %b::int[], %b::jsonb[], %b::bigint[],
            %b::int[])
     AS u(id, debit, credit, amount, currency, status, reason, p, o, i, meta, acc, pos)
ON CONFLICT (id) DO NOTHING
RETURNING id::text
"""
# The same, for a batch with holds or reversals (the columns an immediate transfer leaves at
# their defaults are only sent when some record needs them).
INSERT_FINAL_KINDS = f"""
INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency, status,
                       reason, batch_id, shard, kafka_partition, kafka_offset, kafka_index,
                       metadata, accepted_at, settled_at, settle_seq, kind, target_id,
                       expires_at)
SELECT u.id, u.debit, u.credit, u.amount, u.currency, u.status, u.reason, %s, %s, u.p, u.o,
       u.i, u.meta, to_timestamp(u.acc / 1000.0), %s,
       (SELECT nextval('transfer_settle_seq')) * {SETTLE_SEQ_STRIDE} + u.pos,
       u.kind, u.target, to_timestamp(u.expires / 1000.0)
FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[],
            %b::text[], %b::int[], %b::bigint[], %b::int[], %b::jsonb[], %b::bigint[],
            %b::int[], %b::text[], %b::uuid[], %b::bigint[])
     AS u(id, debit, credit, amount, currency, status, reason, p, o, i, meta, acc, pos,
          kind, target, expires)
ON CONFLICT (id) DO NOTHING
RETURNING id::text
"""
TARGETS = """
SELECT id::text, kind, status, debit_account_id, credit_account_id, amount, currency,
       posted_amount, reversed_amount
FROM transfers WHERE id = ANY(%b::uuid[])
"""
SET_TARGETS = """
UPDATE transfers t SET status = v.status, posted_amount = v.posted, reversed_amount = v.rev
FROM unnest(%b::uuid[], %b::text[], %b::bigint[], %b::bigint[]) AS v(id, status, posted, rev)
WHERE t.id = v.id
"""
# Balances and pending amounts in one statement when holds changed: the CHECK on the
# available balance holds for the final row, not necessarily for a half-updated one.
SET_BALANCES_AND_PENDING = """
UPDATE accounts a SET balance = coalesce(v.balance, a.balance),
                      pending_debits = coalesce(v.debits, a.pending_debits),
                      pending_credits = coalesce(v.credits, a.pending_credits), updated_at = %s
FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::bigint[])
     AS v(id, balance, debits, credits) WHERE a.id = v.id
"""
STORED = """
SELECT id::text, status, reason, debit_account_id, credit_account_id, amount, currency,
       accepted_at, settled_at, metadata, kind, target_id::text
FROM transfers WHERE id = ANY(%b::uuid[])
"""
# A record the database refused is stored as a final rejection without its metadata (the
# part other producers get wrong); if even that is refused, the shard dead-letters it.
REJECT_INVALID = f"""
INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency, status,
                       reason, batch_id, shard, kafka_partition, kafka_offset, kafka_index,
                       accepted_at, settled_at, settle_seq, kind, target_id, expires_at)
VALUES (%s::uuid, %s, %s, %s, %s, 'rejected', %s, %s, %s, %s, %s, %s, to_timestamp(%s / 1000.0),
        %s, nextval('transfer_settle_seq') * {SETTLE_SEQ_STRIDE}, %s, %s::uuid,
        to_timestamp(%s / 1000.0))
ON CONFLICT (id) DO NOTHING
RETURNING id::text
"""
# SQLSTATE classes a record's own data causes: data exception, integrity constraint
# violation, program limit exceeded. Everything else is the server, the connection or a bug.
RECORD_FAILURE_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
DUPLICATE_ID = "duplicate_id"  # dead-letter reason: a settled id reused for another transfer
LOCK_ACCOUNTS = """
SELECT id, currency, balance, overdraft_limit, pending_debits, pending_credits FROM accounts
WHERE id = ANY(%b::text[]) ORDER BY id FOR UPDATE
"""
SET_BALANCES = """
UPDATE accounts a SET balance = v.balance, updated_at = %s
FROM unnest(%b::text[], %b::bigint[]) AS v(id, balance) WHERE a.id = v.id
"""
INSERT_ENTRIES = """
INSERT INTO entries (transfer_id, account_id, delta, balance_after)
SELECT * FROM unnest(%b::uuid[], %b::text[], %b::bigint[], %b::bigint[])
"""


def connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S)


def is_record_failure(err: BaseException) -> bool:
    """True when `err` comes from the data of the records settled, not from infrastructure."""
    if isinstance(err, LedgerInvariantError | UnicodeError | RecursionError):
        return True
    if isinstance(err, psycopg.Error):
        if err.sqlstate:
            return err.sqlstate[:2] in RECORD_FAILURE_SQLSTATE_CLASSES
        return isinstance(err, psycopg.DataError)  # refused while encoding, client side
    return False


def settle(
    conn: Conn, batch: Sequence[QueuedTransfer], batch_id: str, shard: int
) -> list[OutcomeRecord | Unsettleable[QueuedTransfer]]:
    """Settle `batch`, isolating records whose data the database refuses (see module doc):
    one result per record, in batch order."""
    return settle_isolating(
        batch,
        lambda part: apply_batch(conn, part, batch_id, shard),
        is_record_failure,
        lambda queued, err: reject_invalid(conn, queued, err, batch_id, shard),
    )


def apply_batch(
    conn: psycopg.Connection[tuple[object, ...]],
    batch: Sequence[QueuedTransfer],
    batch_id: str,
    shard: int,
) -> list[OutcomeRecord]:
    """Settle `batch` exactly once; returns the outcome of every transfer in it, in order."""
    with conn.pipeline(), conn.transaction():
        accounts_of = sorted({a for q in batch for a in (q.debit_account_id, q.credit_account_id)})
        locked = conn.execute(LOCK_ACCOUNTS, (accounts_of,))
        stored = {str(r[0]) for r in conn.execute(STORED_IDS, ([q.id for q in batch],))}
        fresh, seen = [], set(stored)
        for q in batch:
            if q.id not in seen:
                seen.add(q.id)
                fresh.append(q)
        settled_at = datetime.now(UTC)
        outcomes = {
            o.transfer_id: o for o in _settle(conn, fresh, locked, batch_id, shard, settled_at)
        }
        repeats = [q for q in batch if q.id not in outcomes]
        if repeats:
            outcomes.update(_repeated(conn, repeats, settled_at))
    missing = [q.id for q in batch if q.id not in outcomes]
    if missing:
        raise RuntimeError(f"batch {batch_id}: no outcome for {missing[:3]} (stored elsewhere?)")
    return [outcomes[q.id] for q in batch]


def _settle(
    conn: psycopg.Connection[tuple[object, ...]],
    fresh: Sequence[QueuedTransfer],
    locked: psycopg.Cursor[tuple[object, ...]],
    batch_id: str,
    shard: int,
    settled_at: datetime,
) -> list[OutcomeRecord]:
    accounts = {
        str(r[0]): AccountState(
            str(r[0]), str(r[1]), _int(r[2]), _opt_int(r[3]), _int(r[4]), _int(r[5])
        )
        for r in locked.fetchall()
    }
    if not fresh:
        return []
    aimed = [q.accepted.transfer.target_id for q in fresh if q.accepted.transfer.target_id]
    targets = _targets(conn, aimed) if aimed else {}
    decision = decide_batch([q.accepted.transfer for q in fresh], accounts, targets)
    inserted = _write(conn, fresh, decision, batch_id, shard, settled_at)
    if inserted != len(fresh):
        # Only a transfer on other accounts reusing one of these ids can have been stored
        # meanwhile (same accounts means same locks). Roll back; the retry sees it stored.
        raise RuntimeError(f"batch {batch_id}: {len(fresh) - inserted} ids stored meanwhile")
    ms = _ms(settled_at)
    return [
        outcome_of(q, str(o.status), None if o.reason is None else str(o.reason), ms)
        for q, o in zip(fresh, decision.outcomes, strict=True)
    ]


def _write(
    conn: psycopg.Connection[tuple[object, ...]],
    fresh: Sequence[QueuedTransfer],
    decision: Decision,
    batch_id: str,
    shard: int,
    settled_at: datetime,
) -> int:
    """The final transfer rows first (the entries refer to them), then entries and balances;
    how many transfer rows were inserted."""
    kinds = any(q.accepted.transfer.kind != Kind.IMMEDIATE for q in fresh)
    cols: list[list[object]] = [[] for _ in range(16 if kinds else 13)]
    for pos, (q, o) in enumerate(zip(fresh, decision.outcomes, strict=True)):
        t, a = q.accepted.transfer, q.accepted
        meta = json.dumps(a.metadata) if a.metadata is not None else None
        reason = None if o.reason is None else str(o.reason)
        row = (t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency, str(o.status))
        values: tuple[object, ...] = (
            *row, reason, q.partition, q.offset, q.index, meta, a.accepted_at_ms, pos
        )  # fmt: skip
        if kinds:
            values = (*values, t.kind.value, t.target_id, a.expires_at_ms)
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    insert = INSERT_FINAL_KINDS if kinds else INSERT_FINAL
    inserted = conn.execute(insert, (batch_id, shard, settled_at, *cols))
    if decision.targets:
        ts = decision.targets.values()
        conn.execute(
            SET_TARGETS,
            (
                [t.id for t in ts],
                [str(t.status) for t in ts],
                [t.posted_amount for t in ts],
                [t.reversed_amount for t in ts],
            ),
        )
    if decision.entries:
        es = decision.entries
        conn.execute(
            INSERT_ENTRIES,
            (
                [e.transfer_id for e in es],
                [e.account_id for e in es],
                [e.delta for e in es],
                [e.balance_after for e in es],
            ),
        )
    if decision.pending:
        _set_balances_and_pending(conn, decision, settled_at)
    elif decision.balances:
        ids, balances = zip(*decision.balances.items(), strict=True)
        conn.execute(SET_BALANCES, (settled_at, list(ids), list(balances)))
    return len(inserted.fetchall())


def _set_balances_and_pending(conn: Conn, decision: Decision, settled_at: datetime) -> None:
    ids = sorted(decision.balances.keys() | decision.pending.keys())
    balances = [decision.balances.get(i) for i in ids]
    pending = [decision.pending.get(i) for i in ids]
    # NULL: unchanged (an account whose balance moved while its pending amounts did not).
    debits = [p[0] if p else None for p in pending]
    credits = [p[1] if p else None for p in pending]
    conn.execute(SET_BALANCES_AND_PENDING, (settled_at, ids, balances, debits, credits))


def _targets(conn: Conn, ids: Sequence[str]) -> dict[str, Target]:
    """The stored state of the transfers that hold actions and reversals name."""
    rows = conn.execute(TARGETS, (list(set(ids)),)).fetchall()
    return {
        str(r[0]): Target(
            str(r[0]),
            Kind(str(r[1])),
            Status(str(r[2])),
            str(r[3]),
            str(r[4]),
            _int(r[5]),
            str(r[6]).strip(),
            _opt_int(r[7]),
            _int(r[8]),
        )
        for r in rows
    }


def reject_invalid(
    conn: psycopg.Connection[tuple[object, ...]],
    queued: QueuedTransfer,
    cause: BaseException,
    batch_id: str,
    shard: int,
) -> OutcomeRecord:
    """Settle one record the database refused as `rejected` / `invalid_record`, in its own
    transaction, unless its id is settled already (then answer as a repeat). A money rule
    that broke is a bug, not bad data: it is re-raised, so the record goes to the DLQ."""
    if isinstance(cause, LedgerInvariantError):
        raise cause
    t, settled_at = queued.accepted.transfer, datetime.now(UTC)
    with conn.transaction():
        row = conn.execute(
            REJECT_INVALID,
            (
                t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency,
                str(Reason.INVALID_RECORD), batch_id, shard, queued.partition, queued.offset,
                queued.index, queued.accepted.accepted_at_ms, settled_at, t.kind.value, t.target_id,
                queued.accepted.expires_at_ms,
            ),
        ).fetchone()  # fmt: skip
        if row is None:
            return _repeated(conn, [queued], settled_at)[queued.id]
    return outcome_of(queued, Status.REJECTED, str(Reason.INVALID_RECORD), _ms(settled_at))


def _repeated(
    conn: psycopg.Connection[tuple[object, ...]],
    repeats: Sequence[QueuedTransfer],
    settled_at: datetime,
) -> dict[str, OutcomeRecord]:
    """Outcomes of records whose id is settled already: the stored outcome when the record
    carries the same transfer, a dead-letter answer when it carries another one."""
    stored = {str(r[0]): r for r in conn.execute(STORED, ([q.id for q in repeats],)).fetchall()}
    outcomes = {}
    for queued in repeats:
        row = stored.get(queued.id)
        if row is None:
            continue  # the caller reports it missing
        if _same_transfer(row, queued):
            outcomes[queued.id] = _storedoutcome_of(row)
        else:
            outcomes[queued.id] = outcome_of(queued, DEAD_LETTERED, DUPLICATE_ID, _ms(settled_at))
    return outcomes


def _same_transfer(row: tuple[Any, ...], queued: QueuedTransfer) -> bool:
    """Does the stored row carry the record's transfer? Metadata counts too, except on a row
    stored as `invalid_record`, which was stored without it."""
    t = queued.accepted.transfer
    body = (t.debit_account_id, t.credit_account_id, t.amount, t.currency, t.kind, t.target_id)
    stored = (str(row[3]), str(row[4]), int(row[5]), str(row[6]).strip(), str(row[10]), row[11])
    if stored != body:
        return False
    return bool(row[2] == Reason.INVALID_RECORD or row[9] == queued.accepted.metadata)


def _storedoutcome_of(row: tuple[Any, ...]) -> OutcomeRecord:
    return OutcomeRecord(
        transfer_id=str(row[0]),
        status=str(row[1]),
        reason=None if row[2] is None else str(row[2]),
        debit_account_id=str(row[3]),
        credit_account_id=str(row[4]),
        amount=int(row[5]),
        currency=str(row[6]).strip(),
        accepted_at_ms=_ms(row[7]),
        settled_at_ms=_ms(row[8]),
        kind=str(row[10]),
        target_id=row[11],
    )


def _int(value: object) -> int:
    return int(value)  # type: ignore[call-overload,no-any-return]


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)

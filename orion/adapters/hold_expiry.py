"""Expiring holds: finds holds past their timeout in PostgreSQL and sends an `expire` record
for each to the transfers topic, like any record (keyed by the hold's debit account, so it
takes its place in that account's order).

Nothing here decides anything: the shard that settles the expire record decides, under the
hold's account locks, whether the hold is still pending (then it expires and its amount is
released) or was posted or voided first (then the expire record settles `rejected` /
`hold_not_pending`). The record's id is derived from the hold's, so the same hold found
again (another scan, another orchestrator, a restart) is the same transfer, settled once.

Bounds: at most EXPIRY_SCAN_HOLDS_MAX holds per scan, one scan per EXPIRY_SCAN_INTERVAL_S,
and a hold already sent is not sent again for EXPIRY_RESEND_S (its expiry is normally
settled well before). A failed scan (PostgreSQL or Kafka away) is logged and retried at the
next interval with a fresh connection and producer: it heals itself when they come back.
"""

from __future__ import annotations

import logging
import time

import psycopg

from orion.adapters import kafka as kafka_adapter
from orion.adapters.postgres import CONNECT_TIMEOUT_S
from orion.domain.model import Kind, Transfer, hold_action_id
from orion.messages import AcceptedTransfer, encode_transfer

log = logging.getLogger("orion.expiry")
EXPIRY_SCAN_INTERVAL_S = 1.0  # a hold expires at most about this late (plus settling)
EXPIRY_SCAN_HOLDS_MAX = 1000  # one produce batch per scan; more wait for the next scan
EXPIRY_RESEND_S = 30.0  # a sent expiry not settled by then is sent again (same id)
EXPIRY_WARN_EVERY_S = 30.0  # a failing scan logs at most this often
HOLDS_COUNT_INTERVAL_S = 5.0  # open holds are counted (for the gauges) this often

DUE_HOLDS = """
SELECT id::text, debit_account_id, credit_account_id, amount, currency,
       (extract(epoch FROM now()) * 1000)::bigint
FROM transfers WHERE status = 'pending' AND expires_at <= now()
ORDER BY expires_at LIMIT %s
"""


OPEN_HOLDS = """
SELECT count(*), count(*) FILTER (WHERE expires_at <= now()),
       coalesce(extract(epoch FROM now() - min(expires_at)), 0)
FROM transfers WHERE status = 'pending'
"""


def open_holds(dsn: str) -> tuple[int, int, float]:
    """(open holds, those past their timeout, seconds the oldest of them is past it)."""
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        return _open_holds(conn)


def _open_holds(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, int, float]:
    row = conn.execute(OPEN_HOLDS).fetchone()
    assert row is not None  # an aggregate always returns one row
    total, due, late_s = row
    return int(total), int(due), max(float(late_s), 0.0) if due else 0.0  # type: ignore[call-overload,arg-type]


class HoldExpirer:
    """Call `scan()` every EXPIRY_SCAN_INTERVAL_S (the orchestrator does, on its own thread)."""

    def __init__(self, dsn: str, bootstrap: str, topic: str, client_id: str) -> None:
        """`client_id` names its Kafka client and its PostgreSQL session (application_name)."""
        self._dsn, self._topic, self._client_id = dsn, topic, client_id
        self._producer = kafka_adapter.RecordProducer(bootstrap, client_id)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._sent: dict[str, float] = {}  # hold id -> monotonic time its expiry was sent
        self._warned_at = -EXPIRY_WARN_EVERY_S

    def scan(self) -> int:
        """Send the expiries of due holds; how many were sent. Never raises: a failure is
        logged (rate-limited) and the next scan starts from fresh clients."""
        try:
            return self._scan()
        except Exception as err:  # noqa: BLE001 - retried next interval, logged, never lost:
            # a due hold stays `pending` in PostgreSQL until an expiry settles it.
            self._failed(err)
            return 0

    def count(self) -> tuple[int, int] | None:
        """(open holds, those past their timeout), or None when PostgreSQL cannot say."""
        try:
            total, due, _ = _open_holds(self._connection())
        except Exception as err:  # noqa: BLE001 - a gauge: read again next interval
            self._failed(err)
            return None
        return total, due

    def _failed(self, err: Exception) -> None:
        self._reset()
        now = time.monotonic()
        if now - self._warned_at >= EXPIRY_WARN_EVERY_S:
            self._warned_at = now
            log.warning("hold expiry scan failed (retried every %.0f s): %s",
                        EXPIRY_SCAN_INTERVAL_S, err)  # fmt: skip

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self._dsn,
                connect_timeout=CONNECT_TIMEOUT_S,
                autocommit=True,
                application_name=self._client_id,
            )
        return self._conn

    def _scan(self) -> int:
        rows = self._connection().execute(DUE_HOLDS, (EXPIRY_SCAN_HOLDS_MAX,)).fetchall()
        now = time.monotonic()
        self._sent = {h: at for h, at in self._sent.items() if now - at < EXPIRY_RESEND_S}
        due = [r for r in rows if str(r[0]) not in self._sent]
        if not due:
            return 0
        records = []
        for hold_id, debit, credit, amount, currency, now_ms in due:
            transfer = Transfer(
                hold_action_id(str(hold_id), Kind.EXPIRE), str(debit), str(credit), int(amount),  # type: ignore[call-overload]
                str(currency).strip(), Kind.EXPIRE, str(hold_id),
            )  # fmt: skip
            records.append((transfer.debit_account_id.encode(),
                            encode_transfer(AcceptedTransfer(transfer, int(now_ms)))))  # type: ignore[call-overload]  # fmt: skip
        self._producer.send_all(self._topic, records)
        for row in due:
            self._sent[str(row[0])] = now
        log.info("sent the expiry of %d hold(s) past their timeout", len(due))
        return len(due)

    def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._reset()
        self._producer.close()

"""Expiring holds against the real PostgreSQL and Kafka: a hold past its timeout is found,
its expire record sent once per resend window, and settling that record expires it; a scan
that loses PostgreSQL or Kafka heals by itself and loses no hold.

The holds live in a database of their own (same server, migrated the same way): a running
stack's orchestrator scans the main database every second and would expire them first.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaConsumer
from psycopg import sql

from orion.adapters import ledger
from orion.adapters import postgres as pg
from orion.adapters.hold_expiry import HoldExpirer
from orion.config import Settings
from orion.db.migrate import available
from orion.domain import Transfer, world_account_id
from orion.domain.model import Kind, hold_action_id
from orion.infra.postgres_server import PostgresServer
from orion.messages import AcceptedTransfer, QueuedTransfer, decode_transfer

pytestmark = pytest.mark.integration
RECORD_WAIT_MS = 10_000


@pytest.fixture
def own_db(settings: Settings, unique: str) -> Iterator[Settings]:
    """Settings whose PostgreSQL database is a fresh, migrated one, dropped afterwards."""
    name = f"orion_expiry_{unique}"
    admin = PostgresServer(settings).admin_dsn
    pg.ensure_role_and_database(admin, settings.postgres_user, settings.postgres_password, name)
    mine = settings.model_copy(update={"postgres_db": name})
    pg.migrate(mine.postgres_dsn, available())
    try:
        yield mine
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def funded(own_db: Settings, unique: str) -> Iterator[tuple[str, str]]:
    settings = own_db
    a, b, world = f"xa-{unique}", f"xb-{unique}", world_account_id("NOK")
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'NOK',NULL)"
            " ON CONFLICT DO NOTHING",
            (world,),
        )
        for account in (a, b):
            conn.execute(
                "INSERT INTO accounts (id, currency, overdraft_limit) VALUES (%s,'NOK',0)",
                (account,),
            )
    _apply(settings, Transfer(str(uuid.uuid4()), world, a, 1_000, "NOK"))
    yield a, b


def _apply(settings: Settings, t: Transfer, expires_at_ms: int | None = None) -> str:
    now_ms = time.time_ns() // 1_000_000
    queued = QueuedTransfer(AcceptedTransfer(t, now_ms, None, expires_at_ms), 0, 0)
    with ledger.connect(settings.postgres_dsn) as conn:
        (outcome,) = ledger.apply_batch(conn, [queued], str(uuid.uuid4()), 0)
    return outcome.status


def _sent_expiries(settings: Settings, topic: str, hold: str) -> list[Transfer]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=RECORD_WAIT_MS,
    )  # fmt: skip
    try:
        transfers = [decode_transfer(r.value).transfer for r in consumer]
    finally:
        consumer.close()
    return [t for t in transfers if t.target_id == hold]


def _due_hold(settings: Settings, funded: tuple[str, str], amount: int = 300) -> str:
    """A hold of `amount` from a to b, settled with a timeout already past."""
    a, b = funded
    hold = str(uuid.uuid4())
    past = time.time_ns() // 1_000_000 - 1_000
    assert _apply(settings, Transfer(hold, a, b, amount, "NOK", Kind.PENDING), past) == "pending"
    return hold


def test_a_hold_past_its_timeout_is_expired_once(
    own_db: Settings, funded: tuple[str, str], topic: str
) -> None:
    settings, (a, b) = own_db, funded
    hold = _due_hold(settings, funded, 400)
    expirer = HoldExpirer(settings.postgres_dsn, settings.kafka_bootstrap, topic, "test-expiry")
    try:
        assert expirer.scan() == 1
        assert expirer.scan() == 0  # sent already: not again within the resend window
        assert expirer.count() == (1, 1)  # the gauges' reading: open, and past its timeout
    finally:
        expirer.close()
    (expire,) = _sent_expiries(settings, topic, hold)
    assert (expire.id, expire.kind, expire.amount) == (
        hold_action_id(hold, Kind.EXPIRE),
        Kind.EXPIRE,
        400,
    )
    assert (expire.debit_account_id, expire.credit_account_id) == (a, b)
    assert _apply(settings, expire) == "expired"
    assert _apply(settings, expire) == "expired"  # redelivered: the stored outcome
    with psycopg.connect(settings.postgres_dsn) as conn:
        row = conn.execute(
            "SELECT a.pending_debits, t.status FROM accounts a, transfers t"
            " WHERE a.id = %s AND t.id = %s",
            (a, hold),
        ).fetchone()
    assert row == (0, "expired")


def test_the_expirer_reconnects_after_postgresql_drops_its_session(
    own_db: Settings,
    funded: tuple[str, str],
    topic: str,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL ends the expirer's session (as a restart does): the scan that finds the
    connection dead logs and returns, and the next one opens a fresh session and sends."""
    settings = own_db
    client = f"test-expiry-{unique}"
    expirer = HoldExpirer(settings.postgres_dsn, settings.kafka_bootstrap, topic, client)
    try:
        assert expirer.count() is not None  # its session is open
        hold = _due_hold(settings, funded)
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (client,),
            ).fetchall()
        assert ended == [(True,)]
        with caplog.at_level(logging.WARNING, logger="orion.expiry"):
            assert expirer.scan() == 0  # never raises: the orchestrator's thread lives on
        assert "hold expiry scan failed" in caplog.text
        assert expirer.scan() == 1  # a fresh session finds the hold and sends its expiry
    finally:
        expirer.close()
    (expire,) = _sent_expiries(settings, topic, hold)
    assert _apply(settings, expire) == "expired"


def test_a_hold_whose_expiry_kafka_refused_is_sent_by_the_next_scan(
    own_db: Settings, funded: tuple[str, str], topic: str
) -> None:
    """With no broker to take the record, nothing is marked sent: a later scan (here a new
    expirer, as after an orchestrator restart) sends the hold's expiry."""
    settings = own_db
    hold = _due_hold(settings, funded)
    with socket.socket() as probe:  # a loopback port with nothing listening: Kafka is away
        probe.bind(("127.0.0.1", 0))
        away = f"127.0.0.1:{probe.getsockname()[1]}"
    lost = HoldExpirer(settings.postgres_dsn, away, topic, "test-expiry-away")
    try:
        assert lost.scan() == 0
        assert lost.count() == (1, 1)  # PostgreSQL still answers for the gauges
    finally:
        lost.close()
    assert _sent_expiries(settings, topic, hold) == []
    expirer = HoldExpirer(settings.postgres_dsn, settings.kafka_bootstrap, topic, "test-expiry")
    try:
        assert expirer.scan() == 1
    finally:
        expirer.close()
    (expire,) = _sent_expiries(settings, topic, hold)
    assert _apply(settings, expire) == "expired"

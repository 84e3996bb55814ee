"""Integration fixtures: the real Kafka, PostgreSQL and Redis that `make test` started."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from orion.adapters import postgres as pg
from orion.config import Settings, get_settings
from orion.db import migrate


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session", autouse=True)
def schema(settings: Settings) -> None:
    """The ledger schema, migrated once (a no-op when current), so this tier runs on its own
    after `orion infra up` without the e2e tier having migrated it first."""
    pg.migrate(settings.postgres_dsn, migrate.available())


@pytest.fixture
def unique() -> str:
    """A per-test suffix so topics, groups and ids never collide between tests or runs."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topic(settings: Settings, unique: str) -> Iterator[str]:
    """A fresh single-partition topic, deleted afterwards."""
    name = f"test.{unique}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(name, 1, 1)])
    admin.close()
    try:
        yield name
    finally:
        # A fresh client: the test may have restarted the broker under the old one.
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        admin.delete_topics([name])
        admin.close()


@pytest.fixture
def audited(settings: Settings) -> Iterator[None]:
    """Run `orion audit` after a test that moved money: every invariant must still hold."""
    yield
    from orion.audit import run_audit

    report = run_audit(settings)
    assert report.ok, report.lines()

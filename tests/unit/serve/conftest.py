"""A TestClient over the real app with fake dependencies (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from fastapi.testclient import TestClient

from orion.serve.app import create_app
from orion.serve.ports import ApiDeps
from tests.unit.serve.fakes import FakeLedger, FakeProducer, FakeStore, fake_deps


@pytest.fixture
def deps() -> ApiDeps:
    return fake_deps()


@pytest.fixture
def client(deps: ApiDeps) -> Iterator[TestClient]:
    with TestClient(create_app(deps)) as test_client:
        yield test_client


@pytest.fixture
def producer(deps: ApiDeps) -> FakeProducer:
    return cast(FakeProducer, deps.producer)


@pytest.fixture
def store(deps: ApiDeps) -> FakeStore:
    return cast(FakeStore, deps.idempotency)


@pytest.fixture
def ledger(deps: ApiDeps) -> FakeLedger:
    return cast(FakeLedger, deps.ledger)

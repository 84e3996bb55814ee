"""E2E fixtures: the whole system started by `orion up` (idempotent), reached over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import psycopg
import pytest

from orion.audit import run_audit
from orion.config import Settings, get_settings

UP_TIMEOUT_S = 600  # a cold start: Kafka, PostgreSQL, Ray, Serve
SETTLE_TIMEOUT_S = 120  # bounded wait for a test's transfers to reach a final outcome


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart the whole stack in another shape (three Kafka brokers) run last,
    so every other test sees the default system that the session started."""
    items.sort(key=lambda item: item.get_closest_marker("stack_switch") is not None)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture
def ray_driver(settings: Settings, system: str) -> Iterator[Any]:
    """Orion's Ray runtime, connected to the running system as a driver (after any
    module-scoped fixture has restarted the stack in another shape: those are set up first)."""
    from orion import stack

    stack.use_local_ray(settings)
    from orion.actors import runtime

    runtime.connect(stack.ray_address(settings), settings.ray_namespace, stack.orion_env())
    try:
        yield runtime
    finally:
        runtime.disconnect()


@pytest.fixture(scope="session")
def system(settings: Settings) -> str:
    """Start (or find) the running system; returns the API base URL."""
    done = subprocess.run(
        [sys.executable, "-m", "orion.cli", "up"],
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return f"http://{settings.host}:{settings.api_port}"


@pytest.fixture
def api(system: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system, timeout=30.0) as client:
        yield client


@pytest.fixture
def audited(settings: Settings) -> Iterator[None]:
    """Run `orion audit` after the test: every invariant must hold after money moved."""
    yield
    report = run_audit(settings)
    assert report.ok, report.violations


@pytest.fixture
def make_accounts(api: httpx.Client) -> Callable[..., list[str]]:
    """Create funded accounts through the API and wait until their opening balances settle."""

    def create(count: int, balance: str = "100.00", currency: str = "RUB") -> list[str]:
        prefix = uuid.uuid4().hex[:10]
        ids = [f"e2e-{prefix}-{i}" for i in range(count)]
        for account in ids:
            body: dict[str, Any] = {"id": account, "currency": currency}
            if balance != "0":
                body["opening_balance"] = balance
            resp = api.post("/v1/accounts", json=body)
            assert resp.status_code == 201, resp.text
        for account in ids:
            wait_for(lambda a=account: api.get(f"/v1/accounts/{a}").json()["balance"] == balance)
        return ids

    return create


def wait_for(predicate: Callable[[], bool], timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for settlement"
        time.sleep(0.1)


def settled_rows(settings: Settings, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Final status and reason per transfer id, straight from the ledger."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT id::text, status, reason FROM transfers"
            " WHERE id = ANY(%s::uuid[]) AND status <> 'claimed'",
            (list(ids),),
        ).fetchall()
    return {str(r[0]): (str(r[1]), r[2]) for r in rows}


def wait_settled(settings: Settings, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    rows: dict[str, tuple[str, str | None]] = {}

    def all_final() -> bool:
        rows.update(settled_rows(settings, ids))
        return len(rows) == len(set(ids))

    try:
        wait_for(all_final)
    except AssertionError:
        missing = sorted(set(ids) - rows.keys())
        raise AssertionError(
            f"{len(missing)} of {len(set(ids))} never settled: {missing[:5]}"
        ) from None
    return rows

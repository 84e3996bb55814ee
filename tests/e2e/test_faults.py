"""Killing a shard or the orchestrator mid-run loses nothing and applies nothing twice."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from orion import stack
from orion.config import Settings
from tests.e2e.conftest import wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("audited")]
TRANSFERS = 1_500
CLIENTS = 10


@pytest.fixture
def ray_driver(settings: Settings, system: str) -> Iterator[Any]:
    stack.use_local_ray(settings)
    from orion.actors import runtime

    runtime.connect(stack.ray_address(settings), settings.ray_namespace, stack.orion_env())
    try:
        yield runtime
    finally:
        runtime.disconnect()


def _load_with_kill(
    api: httpx.Client,
    accounts: list[str],
    settings: Settings,
    kill: Callable[[], None],
) -> None:
    rng = random.Random(11)
    bodies = []
    for _ in range(TRANSFERS):
        debit, credit = rng.sample(accounts, 2)
        bodies.append(
            {
                "id": str(uuid.uuid4()),
                "debit_account_id": debit,
                "credit_account_id": credit,
                "amount": "0.50",
                "currency": "RUB",
            }
        )
    killer = threading.Timer(1.0, kill)
    killer.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        codes = list(pool.map(lambda b: api.post("/v1/transfers", json=b).status_code, bodies))
    killer.join()
    assert codes == [202] * TRANSFERS
    ids = [b["id"] for b in bodies]
    wait_settled(settings, ids)
    with psycopg.connect(settings.postgres_dsn) as conn:
        once = conn.execute(
            "SELECT count(*) FROM entries WHERE transfer_id = ANY(%s::uuid[])", (ids,)
        ).fetchone()
        completed = conn.execute(
            "SELECT count(*) FROM transfers WHERE id = ANY(%s::uuid[]) AND status = 'completed'",
            (ids,),
        ).fetchone()
        total = conn.execute(
            "SELECT sum(balance) FROM accounts WHERE id = ANY(%s)", (accounts,)
        ).fetchone()
    assert once is not None and completed is not None and total is not None
    assert once[0] == 2 * completed[0], "each completed transfer has exactly two entries"
    assert int(total[0]) == len(accounts) * 10_000


def test_shard_killed_mid_run_settles_everything_once(
    api: httpx.Client,
    make_accounts: Callable[..., list[str]],
    settings: Settings,
    ray_driver: Any,
) -> None:
    """SIGKILL one shard's process during load: Ray restarts it, its batches are dispatched
    again, and every transfer ends with exactly one outcome."""
    accounts = make_accounts(40, balance="100.00")
    pid = ray_driver.shard_pid(0)
    _load_with_kill(api, accounts, settings, lambda: os.kill(pid, signal.SIGKILL))
    assert ray_driver.shard_pid(0) != pid, "the shard was really restarted"


def test_orchestrator_killed_mid_run_settles_everything_once(
    api: httpx.Client,
    make_accounts: Callable[..., list[str]],
    settings: Settings,
    ray_driver: Any,
) -> None:
    """SIGKILL the orchestrator during load: Ray restarts it, it resumes from the committed
    offsets, and every transfer still ends with exactly one outcome."""
    accounts = make_accounts(40, balance="100.00")
    pid = ray_driver.orchestrator_pid()
    _load_with_kill(api, accounts, settings, lambda: os.kill(pid, signal.SIGKILL))
    time.sleep(0.5)
    assert ray_driver.orchestrator_pid() != pid, "the orchestrator was really restarted"

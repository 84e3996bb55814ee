"""Scale-out on one machine: two API replicas behind the one API address and two
orchestrators in one consumer group. Each replica serves on a port of its own behind the
front and answers `?wait=` with the outcome; both orchestrators settle their share; every
accepted transfer settles exactly once and the audit holds.

The module restarts the stack with ORION_API_REPLICAS=2 ORION_ORCHESTRATORS=2, and back to
the default afterwards; it runs after every other e2e test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from orion import stack
from orion.config import Settings
from orion.infra.process import port_open
from tests.e2e.faults import (
    Load,
    account_for,
    outcome_arrives,
    record,
    seed_accounts,
    stack_shaped,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.stack_switch, pytest.mark.usefixtures("audited")]
SCALED = {"ORION_API_REPLICAS": "2", "ORION_ORCHESTRATORS": "2"}
ACCOUNTS = 200
LOAD_S = 8.0
ASSIGNED_TIMEOUT_S = 60.0  # a consumer group rebalance takes seconds


@pytest.fixture(scope="module")
def scaled(system: str) -> Iterator[str]:
    """The stack with two replicas and two orchestrators; the default stack afterwards."""
    with stack_shaped(SCALED):
        yield system


def test_two_replicas_and_two_orchestrators_share_the_work(
    scaled: str, settings: Settings, ray_driver: Any
) -> None:
    replicas = [p for p in stack.replica_ports(settings) if port_open(settings.host, p)]
    assert len(replicas) == 2, f"replica ports listening: {replicas}"
    first = seed_accounts(ACCOUNTS)
    for port in replicas:  # each replica answers ?wait= with the outcome itself
        assert outcome_arrives(f"http://{settings.host}:{port}", first), port
    # Both must own partitions before the load starts: the second's join is a rebalance.
    assert wait_until(lambda: _all_own_partitions(ray_driver), ASSIGNED_TIMEOUT_S), (
        ray_driver.orchestrator_stats()
    )
    before = ray_driver.orchestrator_stats()
    load = Load(scaled, first, ACCOUNTS).start()
    try:
        time.sleep(LOAD_S)
    finally:
        load.stop()
    settled = account_for(settings, load)
    after = ray_driver.orchestrator_stats()
    shares = {
        name: (stats or {}).get("settled", 0) - (before.get(name) or {}).get("settled", 0)
        for name, stats in after.items()
    }
    record(
        "two replicas, two orchestrators (one machine)",
        accepted=settled.accepted,
        lost=settled.lost,
        applied_twice=settled.applied_twice,
        settled_by_orchestrator=shares,
        failed=load.failures_between(0.0, time.monotonic()),
    )
    assert (settled.lost, settled.applied_twice) == (0, 0), settled
    assert len(shares) == 2 and all(n > 0 for n in shares.values()), shares
    assert load.failures_between(0.0, time.monotonic()) == 0


def _all_own_partitions(ray_driver: Any) -> bool:
    stats = ray_driver.orchestrator_stats()
    return len(stats) == 2 and all((s or {}).get("partitions") for s in stats.values())

"""The durable Kafka option: three KRaft brokers (replication factor 3, min.insync.replicas
2) survive losing any one broker under load with nothing lost.

The module restarts the whole stack with ORION_KAFKA_BROKERS=3 (the single broker's data is
kept aside), and back to the default afterwards; it runs after every other e2e test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from orion.config import Settings
from tests.e2e.faults import (
    Load,
    account_for,
    kafka_active_controller,
    kill_service,
    outcome_arrives,
    record,
    restart_infra,
    restarts_grew,
    seed_accounts,
    settling_resumed_s,
    stack_shaped,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.stack_switch, pytest.mark.usefixtures("audited")]
CLUSTER = {"ORION_KAFKA_BROKERS": "3"}
ACCOUNTS = 200
WARMUP_S = 3.0
DOWN_S = 10.0  # the broker stays dead this long: the cluster must carry on meanwhile
# acks=all answers again this soon after the kill, the broker still dead. The victim is the
# active controller, the worst case: the other voters notice it gone (2 s fetch timeout),
# elect a new controller (a split vote costs another round), which then fences the dead
# broker (4 s session) before its partitions' leaders move. Measured 5.9-7.9 s in most runs,
# alone and in CI; 11.2 s once in a fresh-clone CI run (2026-12-04), on a box also running
# Ray, PostgreSQL, Redis and the load. Any other broker: ~4 s.
RECOVERY_S = 15.0
AFTER_S = 5.0


@pytest.fixture(scope="module")
def cluster(system: str) -> Iterator[str]:
    """The stack on three brokers; the default stack again afterwards."""
    with stack_shaped(CLUSTER):
        yield system


def test_one_of_three_brokers_killed_under_load_loses_nothing(
    cluster: str, settings: Settings, ray_driver: Any
) -> None:
    """kill -9 the broker that is the active KRaft controller (the slowest to replace) under
    load and leave it dead for 10 s: the API keeps accepting (acks=all from the two in-sync
    replicas) within 15 s of the kill, settlement goes on, every accepted transfer settles
    exactly once, and after the broker is back nothing restarts."""
    first = seed_accounts(ACCOUNTS)
    load = Load(cluster, first, ACCOUNTS).start()
    try:
        time.sleep(WARMUP_S)
        victim = kafka_active_controller(settings)
        killed = time.monotonic()
        kill_service(settings, victim)
        assert wait_until(lambda: load.first_success_after(killed) is not None, RECOVERY_S + 5)
        resumed = load.first_success_after(killed)
        settling = settling_resumed_s(settings, load, killed, RECOVERY_S + 20)
        time.sleep(DOWN_S)
        restart_infra(CLUSTER)
        time.sleep(AFTER_S)
        steady = ray_driver.actor_restarts()
    finally:
        load.stop()
    settled = account_for(settings, load)
    assert outcome_arrives(cluster, first), "?wait= got no outcome after the broker came back"
    crash_looping = restarts_grew(steady, ray_driver.actor_restarts(), {})
    record(
        "kill -9 one of three Kafka brokers",
        killed=f"{victim}, the active controller",
        failed_during=load.failures_between(killed, killed + (resumed or 0)),
        longest_gap_without_2xx_s=round(load.longest_gap_s(killed, killed + DOWN_S), 2),
        kill_to_first_2xx_s=round(resumed or -1, 2),
        kill_to_settling_s=round(settling, 2),
        accepted=settled.accepted,
        lost=settled.lost,
        applied_twice=settled.applied_twice,
        unanswered_but_settled=settled.unknown_applied,
        restarts=steady,
    )
    assert resumed is not None and resumed <= RECOVERY_S
    assert settling <= RECOVERY_S + 5
    assert (settled.lost, settled.applied_twice) == (0, 0), settled
    assert not crash_looping, crash_looping

"""CPU priority on a shared box: Orion's workers compete as equals of what they wait on,
and the services they wait on do not preempt them when woken.

Ray renices each worker process to 15. The API replica (every thread: Linux keeps a
niceness and a policy per thread), the shards and the orchestrator run at WORKER_NICENESS
instead, under the default policy; Kafka, PostgreSQL, Redis, HAProxy and Prometheus, as
`orion infra` starts them, under SCHED_BATCH (orion/priority.py says why and what it measured).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orion import stack
from orion.config import Settings
from orion.infra import manager
from orion.priority import SERVICES_YIELD_ON_WAKEUP, WORKER_NICENESS
from tests.e2e.faults import listener_pid

pytestmark = pytest.mark.e2e


def _threads(pid: int) -> list[int]:
    return [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]


def _niceness_of_threads(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, tid) for tid in _threads(pid)}


def _policies_of_threads(pid: int) -> set[int]:
    return {os.sched_getscheduler(tid) for tid in _threads(pid)}


def _workers(settings: Settings, ray_driver: Any) -> dict[str, int]:
    return {
        "API replica": listener_pid(stack.replica_ports(settings)),
        "shard 0": ray_driver.shard_pid(0),
        "orchestrator": ray_driver.orchestrator_pid(),
    }


def test_the_api_replica_shards_and_orchestrator_run_at_orions_niceness(
    system: str, settings: Settings, ray_driver: Any
) -> None:
    workers = _workers(settings, ray_driver)
    found = {name: _niceness_of_threads(pid) for name, pid in workers.items()}
    assert found == {name: {WORKER_NICENESS} for name in workers}


def test_the_services_yield_on_wakeup_and_orions_workers_do_not(
    system: str, settings: Settings, ray_driver: Any
) -> None:
    assert SERVICES_YIELD_ON_WAKEUP
    if not settings.manage_infra:
        pytest.skip("the services run elsewhere; orion infra did not start them")
    services = {svc.name: svc.managed.pid() for svc in manager.services(settings)}
    services["api front"] = stack.api_front(settings).managed.pid()
    assert None not in services.values(), services  # each started by this project, by pid file
    found = {name: _policies_of_threads(pid) for name, pid in services.items() if pid}
    assert found == {name: {os.SCHED_BATCH} for name in services}
    workers = _workers(settings, ray_driver)
    found = {name: _policies_of_threads(pid) for name, pid in workers.items()}
    assert found == {name: {os.SCHED_OTHER} for name in workers}

"""CPU priority on a shared box: Orion's workers compete as equals of what they wait on.

Ray renices each worker process to 15. The API replica (every thread: Linux keeps a
niceness per thread), the shards and the orchestrator run at WORKER_NICENESS instead
(orion/priority.py says why and what it measured).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orion import stack
from orion.config import Settings
from orion.priority import WORKER_NICENESS
from tests.e2e.faults import listener_pid

pytestmark = pytest.mark.e2e


def _niceness_of_threads(pid: int) -> set[int]:
    tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    return {os.getpriority(os.PRIO_PROCESS, tid) for tid in tids}


def test_the_api_replica_shards_and_orchestrator_run_at_orions_niceness(
    system: str, settings: Settings, ray_driver: Any
) -> None:
    workers = {
        "API replica": listener_pid(stack.replica_ports(settings)),
        "shard 0": ray_driver.shard_pid(0),
        "orchestrator": ray_driver.orchestrator_pid(),
    }
    found = {name: _niceness_of_threads(pid) for name, pid in workers.items()}
    assert found == {name: {WORKER_NICENESS} for name in workers}

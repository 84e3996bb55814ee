"""CPU priority on a shared box: the API replica competes as an equal, settlement yields.

Ray renices each worker process to 15. The replica's event loop is the serial step every
request crosses twice, so it runs at API_WORKER_NICENESS (0) in every thread; the shards and
the orchestrator keep Ray's niceness, so under overload acceptance wins and the backlog
waits in Kafka (orion/serve/priority.py says why and what it measured).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orion import stack
from orion.config import Settings
from orion.serve.priority import API_WORKER_NICENESS, RAY_WORKER_NICENESS
from tests.e2e.faults import listener_pid

pytestmark = pytest.mark.e2e


def _niceness_of_threads(pid: int) -> set[int]:
    """The niceness of every thread of `pid` (Linux keeps one per thread)."""
    tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    return {os.getpriority(os.PRIO_PROCESS, tid) for tid in tids}


def test_the_api_replica_runs_at_niceness_0_and_settlement_at_rays(
    system: str, settings: Settings, ray_driver: Any
) -> None:
    replica = listener_pid(stack.replica_ports(settings))
    assert _niceness_of_threads(replica) == {API_WORKER_NICENESS}
    for pid in (ray_driver.shard_pid(0), ray_driver.orchestrator_pid()):
        assert os.getpriority(os.PRIO_PROCESS, pid) == RAY_WORKER_NICENESS

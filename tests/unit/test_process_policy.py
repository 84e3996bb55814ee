"""A service started to yield on wake-up runs under SCHED_BATCH, with every thread it makes,
and the starting thread keeps its own policy; without the flag nothing changes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orion.infra.process import Managed

# Prints the policy of its main thread and of a thread it starts (as a JVM or PostgreSQL does).
CHILD = (
    "import os, threading\n"
    "seen = []\n"
    "t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))\n"
    "t.start(); t.join()\n"
    "print('policies', os.sched_getscheduler(0), seen[0], flush=True)\n"
)


def _policies_of_child(tmp_path: Path, yields: bool) -> tuple[int, int]:
    managed = Managed("probe", tmp_path / "probe.pid", tmp_path / "probe.log")
    pid = managed.start([sys.executable, "-c", CHILD], yields_on_wakeup=yields)
    os.waitpid(pid, 0)  # it prints, then exits
    _, main, thread = managed.log_tail().split()
    return int(main), int(thread)


def test_a_yielding_service_and_its_threads_run_under_sched_batch(tmp_path: Path) -> None:
    assert _policies_of_child(tmp_path, yields=True) == (os.SCHED_BATCH, os.SCHED_BATCH)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the starter got its policy back


def test_without_the_flag_a_service_keeps_the_default_policy(tmp_path: Path) -> None:
    assert _policies_of_child(tmp_path, yields=False) == (os.SCHED_OTHER, os.SCHED_OTHER)

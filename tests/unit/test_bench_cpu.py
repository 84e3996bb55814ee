"""Where a run's CPU went (load/cpu.py): the arithmetic on synthetic samples, the process
tree read from this very test process, and the summary's table."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import pytest

from load import cpu
from load.report import build_report
from load.summary import markdown
from tests.unit.test_bench_report import _facts

BUSY_S = 0.3  # long enough for the kernel's clock-tick accounts to see it


def _sample(by_pid: dict[int, tuple[str, float]], busy: float, total: float) -> cpu.Sample:
    return cpu.Sample(by_pid=by_pid, box_busy_s=busy, box_all_s=total)


def test_the_window_counts_each_process_once_and_a_reused_pid_from_zero() -> None:
    before = _sample({1: ("API replica", 10.0), 2: ("shards", 5.0), 3: ("kafka", 7.0)}, 100, 400)
    after = _sample(
        {
            1: ("API replica", 13.0),  # +3
            2: ("shards", 6.0),  # +1
            3: ("orchestrator", 0.5),  # pid 3 now another process: counts from zero
            4: ("shards", 0.5),  # started during the window
        },
        busy=107.0,
        total=400.0 + 2 * 5.0,  # 5 s on the box's cores
    )
    c = cpu.between(before, after, transfers=1_000, generator_cpu_s=1.0)
    assert [(p["part"], p["cpu_s"]) for p in c["parts"]] == [
        ("API replica", 3.0),
        ("shards", 1.5),
        (cpu.GENERATOR, 1.0),
        ("orchestrator", 0.5),
    ]
    assert c["total_cpu_s"] == 6.0
    assert c["ms_per_transfer"] == 6.0
    cores = os.cpu_count() or 1
    assert c["cores"] == cores
    assert c["window_s"] == pytest.approx(10.0 / cores, abs=0.01)
    assert c["accounted_percent_of_busy"] == pytest.approx(600 / 7, abs=0.1)
    assert c["implied_ceiling_per_s"] == round(cores * 1000 / 6.0)


def test_no_transfers_leaves_the_per_transfer_numbers_empty() -> None:
    same = _sample({1: ("redis", 1.0)}, 10, 40)
    c = cpu.between(same, same, transfers=0, generator_cpu_s=0.0)
    assert c["ms_per_transfer"] is None and c["implied_ceiling_per_s"] is None
    assert c["box_busy_percent"] is None  # an empty window has no busy share


def test_ray_processes_are_told_apart_by_their_titles() -> None:
    assert cpu._ray_part("ray::ServeReplica:orion:orion-api") == "API replica"
    assert cpu._ray_part("ray::Shard") == "shards"
    assert cpu._ray_part("ray::OrchestratorWithRayShards") == "orchestrator"
    assert cpu._ray_part("ray::ServeController.listen_for_change") == cpu.RAY
    assert cpu._ray_part("/opt/ray/core/src/ray/raylet/raylet --x") == cpu.RAY


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_root_and_its_children_are_sampled_from_the_kernel() -> None:
    child = mp.get_context("spawn").Process(target=_spin, args=(BUSY_S,))
    before = cpu.sample({"redis": os.getpid()})
    child.start()
    try:
        deadline = time.monotonic() + 30
        while True:  # sample while the child runs, after it has burnt its CPU
            now = cpu.sample({"redis": os.getpid()})
            if child.pid in now.by_pid and now.by_pid[child.pid][1] >= BUSY_S * 0.9:
                break
            assert child.is_alive() and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.join(30)
    assert now.by_pid[os.getpid()][0] == "redis"
    assert now.by_pid[child.pid][0] == "redis"  # a descendant belongs to its root's part
    assert now.by_part["redis"] >= before.by_part["redis"] + BUSY_S * 0.9
    assert now.box_all_s > before.box_all_s and now.box_busy_s >= before.box_busy_s


def test_a_root_that_is_gone_is_skipped() -> None:
    gone = mp.get_context("spawn").Process(target=_spin, args=(0.0,))
    gone.start()
    gone.join(30)
    assert gone.pid is not None
    assert cpu.sample({"kafka": gone.pid}).by_part == {}


def test_the_summary_tabulates_the_parts_and_the_ceiling_they_imply() -> None:
    before = _sample({1: ("API replica", 1.0)}, 10, 40)
    after = _sample({1: ("API replica", 4.0)}, 14, 48)
    text = markdown(build_report(_facts(cpu=cpu.between(before, after, 3, 0.003))))
    assert "## Where the CPU went (load and drain)" in text
    assert "| API replica | 3.0 | 1,000.000 |" in text
    assert "| **total** | 3.0 | 1,001.000 |" in text
    cores = os.cpu_count() or 1
    assert f"could settle at most {round(cores * 1000 / 1001.0):,} transfers/s" in text

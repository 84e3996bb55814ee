"""The bench's CPU accounting (load/cpu.py) finds every part of the running system by its
pid files and Ray's process titles: if Ray renamed its actors' titles, reports would lump the
API replica, shards and orchestrator into "ray", and this test says so."""

from __future__ import annotations

from load import cpu
from orion.config import Settings

PARTS = {
    "API replica",
    "shards",
    "orchestrator",
    cpu.RAY,
    cpu.API_FRONT,
    "postgres",
    "redis",
    "kafka",
}


def test_every_part_of_the_running_system_is_sampled(system: str, settings: Settings) -> None:
    roots = cpu.roots(settings)
    assert {"postgres", "redis", "kafka", cpu.RAY, cpu.API_FRONT} <= roots.keys()
    sample = cpu.sample(roots)
    assert sample.by_part.keys() >= PARTS, sorted(sample.by_part)
    assert all(seconds > 0 for part, seconds in sample.by_part.items() if part in PARTS)
    titles = [title for title, _ in sample.by_pid.values()]
    assert titles.count("API replica") >= 1
    assert titles.count("shards") == settings.shard_count

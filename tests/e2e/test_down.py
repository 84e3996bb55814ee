"""`orion down` always stops everything, whatever state the actors are in."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from orion import stack
from orion.config import Settings
from orion.infra.process import port_open
from tests.e2e.faults import orion

pytestmark = [pytest.mark.e2e, pytest.mark.stack_switch]
# The polite part (drain, Serve shutdown, actor kills) is bounded by stack.STOP_APP_TIMEOUT_S;
# then Ray and the services stop within their own timeouts.
DOWN_BOUND_S = stack.STOP_APP_TIMEOUT_S + 120


def _session_members(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[3]) == session:
                found.append(int(entry.name))
    return found


def test_down_stops_everything_even_with_a_frozen_orchestrator(
    system: str, settings: Settings
) -> None:
    """SIGSTOP the orchestrator (alive to Ray, answering nothing: the worst case for a
    drain). `orion down` still ends within its bound, leaves no process of Ray's session
    and no listener on Orion's ports; `orion up` then brings everything back."""
    stack.use_local_ray(settings)
    from orion.actors import runtime

    runtime.connect(stack.ray_address(settings), settings.ray_namespace, stack.orion_env())
    try:
        frozen = runtime.orchestrator_pid()
    finally:
        runtime.disconnect()
    head = stack.ray_head(settings).pid()
    assert head is not None
    os.kill(frozen, signal.SIGSTOP)
    started = time.monotonic()
    down = orion("down")
    took = time.monotonic() - started
    assert down.returncode == 0, down.stdout + down.stderr
    assert took < DOWN_BOUND_S, f"orion down took {took:.0f} s"
    assert _session_members(head) == [], "processes of Ray's session outlived orion down"
    ports = (settings.api_port, settings.ray_gcs_port, settings.ray_dashboard_port,
             settings.kafka_port, settings.postgres_port, settings.redis_port)  # fmt: skip
    assert [p for p in ports if port_open(settings.host, p)] == []
    up = orion("up")
    assert up.returncode == 0, up.stdout + up.stderr

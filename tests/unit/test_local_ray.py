"""A local driver finds the GCS on loopback only if the loopback switch is set before ray is
imported: `use_local_ray` sets it, and refuses loudly when ray came first (the e2e suite once
waited 10 minutes per test on 192.0.2.2:6380 after a unit test imported ray at collection)."""

from __future__ import annotations

import os
import subprocess
import sys

from orion import stack

TIMEOUT_S = 120.0
SETTINGS = "from orion.config import Settings; settings = Settings()"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter whose environment lacks Ray's loopback switch (an
    earlier test's `use_local_ray` may have put it in this process's environment)."""
    env = {k: v for k, v in os.environ.items() if k not in stack.RAY_LOCAL_ENV}
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )


def test_after_use_local_ray_a_driver_resolves_localhost_to_loopback() -> None:
    done = _python(
        f"{SETTINGS}; from orion import stack; stack.use_local_ray(settings)\n"
        "from ray._private import services; print(services.resolve_ip_for_localhost('127.0.0.1'))"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "127.0.0.1"


def test_ray_imported_first_is_refused_with_a_reason() -> None:
    done = _python(
        f"import ray; {SETTINGS}; from orion import stack; stack.use_local_ray(settings)"
    )
    assert done.returncode != 0
    assert "ray was imported before orion.stack.use_local_ray()" in done.stderr

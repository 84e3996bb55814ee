"""The API front's HAProxy config: valid for HAProxy itself in both shapes (one machine;
replicas across nodes), and only the cluster shape cuts a lost replica's requests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orion.config import Settings
from orion.infra.api_front import ApiFront, haproxy_binary

BACKENDS = [("10.0.0.1", 30000), ("10.0.0.2", 30000)]


@pytest.mark.parametrize("across_nodes", [False, True])
def test_haproxy_accepts_the_config(tmp_path: Path, across_nodes: bool) -> None:
    binary = haproxy_binary()
    if binary is None:
        pytest.skip("haproxy is not installed (make install)")
    settings = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    config = ApiFront(settings, BACKENDS, across_nodes=across_nodes).config()
    assert ("shutdown-sessions" in config) == across_nodes
    assert "set-header x-request-disconnect-disabled ?1 if ingest_route" in config
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(config)
    done = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

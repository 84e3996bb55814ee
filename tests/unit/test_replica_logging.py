"""The API replica's logging: Serve's per-request access record is never built when the
access log is off (Serve's logger at WARNING: cluster/serve.yaml, checked against the code by
test_cluster_files), and nothing the replica writes to stdout or stderr is dropped for it."""

from __future__ import annotations

from orion import stack
from orion.config import Settings


def _settings(access_log: bool) -> Settings:
    return Settings(_env_file=None, api_access_log=access_log)  # type: ignore[call-arg]


def test_without_the_access_log_the_replica_streams_stay_its_own() -> None:
    """Serve would make stdout/stderr INFO records of a logger that logs at WARNING."""
    env = stack.ray_env(_settings(access_log=False))
    assert env["RAY_SERVE_LOG_TO_STDERR"] == "1"


def test_with_the_access_log_serve_keeps_its_buffered_log() -> None:
    env = stack.ray_env(_settings(access_log=True))
    assert "RAY_SERVE_LOG_TO_STDERR" not in env
    assert "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE" not in env

"""docker-compose.yml runs the same infra as the native stack, on the same ports and names.

Docker cannot run on the CI machine, so this checks the file itself against orion.config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orion.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _published(service: dict[str, Any]) -> set[tuple[str, int]]:
    out = set()
    for spec in service.get("ports", []):
        host, port, _container = str(spec).split(":")
        out.add((host, int(port)))
    return out


def test_names_every_service() -> None:
    """Kafka, PostgreSQL, Redis, Prometheus, Grafana and a Kafka UI are all defined."""
    services = set(_compose()["services"])
    assert {"kafka", "postgres", "redis", "prometheus", "grafana", "kafka-ui"} <= services


def test_ports_match_native_defaults_on_loopback() -> None:
    """Each infra port equals the native default and is published on 127.0.0.1 only."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    services = _compose()["services"]
    expected = {
        "kafka": s.kafka_port,
        "postgres": s.postgres_port,
        "redis": s.redis_port,
        "prometheus": s.prometheus_port,
    }
    for name, port in expected.items():
        assert _published(services[name]) == {(s.host, port)}, name
    for name, service in services.items():
        assert all(host == "127.0.0.1" for host, _ in _published(service)), name


def test_topics_and_credentials_match_native_config() -> None:
    """Topic names, partition counts and the database credentials agree with Settings."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    compose = _compose()
    env = compose["x-orion-env"]
    assert env["ORION_TOPIC_TRANSFERS"] == s.topic_transfers
    assert env["ORION_TOPIC_RESULTS"] == s.topic_results
    assert env["ORION_TOPIC_DLQ"] == s.topic_dlq
    assert env["ORION_TOPIC_HEALTH"] == s.topic_health
    assert int(env["ORION_TRANSFERS_PARTITIONS"]) == s.transfers_partitions
    assert int(env["ORION_RESULTS_PARTITIONS"]) == s.results_partitions
    assert int(env["ORION_DLQ_PARTITIONS"]) == s.dlq_partitions
    pg = compose["services"]["postgres"]["environment"]
    assert (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]) == (
        s.postgres_user,
        s.postgres_password,
        s.postgres_db,
    )
    redis = compose["services"]["redis"]["command"]
    assert redis[redis.index("--maxmemory") + 1] == f"{s.redis_maxmemory_mb}mb"
    image = compose["services"]["kafka"]["image"]
    assert image.startswith("apache/kafka:4."), "Kafka 4.x in KRaft mode"
    assert compose["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

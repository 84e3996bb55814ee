"""Configuration: loopback defaults and one-line errors naming the bad setting."""

from __future__ import annotations

import pytest

from orion.config import ConfigError, Settings, get_settings


def test_defaults_are_single_machine_loopback() -> None:
    """Every default listener is on 127.0.0.1 at the documented port."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.host == "127.0.0.1"
    ports = (s.kafka_port, s.postgres_port, s.redis_port, s.prometheus_port, s.api_port)
    assert ports == (9092, 5432, 6379, 9090, 8000)
    assert s.ray_dashboard_port == 8265
    assert s.kafka_bootstrap == "127.0.0.1:9092"


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An out-of-range value fails with one line naming ORION_<FIELD>."""
    monkeypatch.setenv("ORION_KAFKA_PORT", "70000")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(info.value)
    assert "ORION_KAFKA_PORT" in message
    assert "\n" not in message


def test_env_overrides_topic_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partition counts come from the environment and feed topic creation."""
    monkeypatch.setenv("ORION_TRANSFERS_PARTITIONS", "3")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.topic_partitions[s.topic_transfers] == 3


def test_three_brokers_give_three_bootstrap_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORION_KAFKA_BROKERS=3 lists every node (ports two apart); 2 is refused by name."""
    monkeypatch.setenv("ORION_KAFKA_BROKERS", "3")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    monkeypatch.setenv("ORION_KAFKA_BROKERS", "2")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="ORION_KAFKA_BROKERS"):
            get_settings()
    finally:
        get_settings.cache_clear()

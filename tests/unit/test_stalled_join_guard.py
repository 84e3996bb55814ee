"""The stalled-join guard against a stand-in of kafka-python's coordinator: it asks for a new
join exactly when a prepared join is no longer driven, and switches itself off (without
raising on every poll) for a kafka-python whose coordinator lacks what it reads.

The stall itself, against the real Kafka: tests/integration/test_kafka_source.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from orion.adapters.kafka_source import JOIN_STATE, StalledJoinGuard


@dataclass
class Coordinator:
    rejoining: bool
    rejoin_needed: bool
    asked: int = 0

    def need_rejoin(self) -> bool:
        return self.rejoin_needed

    def request_rejoin(self) -> None:
        self.asked += 1
        self.rejoin_needed = True


@dataclass
class Consumer:
    _coordinator: object


@pytest.mark.parametrize(
    ("rejoining", "rejoin_needed", "asks"),
    [
        (True, False, True),  # prepared, answer arrived, nobody awaits it: the stall
        (True, True, False),  # prepared and still driven by poll
        (False, False, False),  # joined and stable
        (False, True, False),  # a rejoin is due; poll prepares it
    ],
)
def test_it_asks_for_a_new_join_only_when_a_prepared_one_is_no_longer_driven(
    rejoining: bool, rejoin_needed: bool, asks: bool
) -> None:
    coordinator = Coordinator(rejoining, rejoin_needed)
    guard = StalledJoinGuard(Consumer(coordinator))
    assert guard.check() is asks
    assert coordinator.asked == int(asks)
    assert guard.check() is False  # asked once: the rejoin is now driven by poll
    assert coordinator.asked == int(asks)


@pytest.mark.parametrize("gone", JOIN_STATE)
def test_a_coordinator_without_what_it_reads_switches_the_guard_off(
    gone: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Changed:
        rejoining = True

        def need_rejoin(self) -> bool:
            return False

        def request_rejoin(self) -> None:
            raise AssertionError("the guard is off")

    delattr(Changed, gone)
    changed = Changed()
    with caplog.at_level(logging.WARNING):
        guard = StalledJoinGuard(Consumer(changed))
    assert f"has no {gone}" in caplog.text
    assert guard.check() is False


def test_a_consumer_without_a_coordinator_switches_the_guard_off() -> None:
    assert StalledJoinGuard(object()).check() is False

"""When the API's producer counts as wedged (orion.adapters.api_kafka.SendHealth)."""

from __future__ import annotations

from kafka.errors import KafkaTimeoutError

from orion.adapters.api_kafka import SendHealth


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_failures_for_the_whole_period_count_as_stuck() -> None:
    """Failing rounds start the clock; stuck once they last `after_s`; one ack resets it."""
    clock = Clock()
    health = SendHealth(clock)
    health.observe([TimeoutError()])
    clock.now += 2.9
    health.observe([TimeoutError(), TimeoutError()])
    assert not health.stuck(3.0)
    clock.now += 0.1
    assert health.stuck(3.0)
    health.observe([TimeoutError(), None])  # one record acked: the client works
    assert not health.stuck(0.0)


def test_a_fresh_client_gets_the_full_grace_period() -> None:
    """After a replacement the clock restarts, so a new client is not replaced at once."""
    clock = Clock()
    health = SendHealth(clock)
    health.observe([TimeoutError()])
    clock.now += 10
    health.restart_clock()
    assert not health.stuck(3.0)
    clock.now += 3
    assert health.stuck(3.0)


def test_one_record_the_client_expired_is_stuck_at_once() -> None:
    """kafka-python's idempotent producer sends nothing more after it expired a batch: no
    grace period, even when other records of the round were acked; a fresh client starts
    clean."""
    clock = Clock()
    health = SendHealth(clock)
    health.observe([None, KafkaTimeoutError("Expiring 3 record(s)")])
    assert health.stuck(3.0)
    health.restart_clock()
    assert not health.stuck(3.0)
    health.observe([TimeoutError("no acknowledgement within 6.0 s")])  # our own bound: not it
    assert not health.stuck(3.0)


def test_no_rounds_is_healthy() -> None:
    """Positive control: nothing sent, nothing failing."""
    health = SendHealth(Clock())
    health.observe([])
    assert health.failing_since is None and not health.stuck(0.0)

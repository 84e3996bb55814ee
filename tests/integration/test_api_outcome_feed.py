"""The API's outcome feed against the real broker, on a private topic (never the shared one,
whose outcomes the orchestrator acts on)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaProducer

from orion.adapters.api_kafka import OutcomeFeed
from orion.adapters.kafka import RecordProducer
from orion.config import Settings
from orion.messages import OutcomeRecord, encode_outcome
from orion.serve.outcomes import OutcomeWaiters

pytestmark = pytest.mark.integration
READY_TIMEOUT_S = 15.0  # the feed's consumer joins a local broker in well under a second
OUTCOME_TIMEOUT_S = 15.0


def test_feed_resolves_a_waiter_and_skips_malformed_records(settings: Settings, topic: str) -> None:
    """An outcome produced to the results topic resolves the request waiting on that id,
    and a malformed record before it does not stop the feed's thread."""
    waiters = OutcomeWaiters()
    feed = OutcomeFeed(settings.kafka_bootstrap, topic, waiters)
    feed.start()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    transfer_id = str(uuid.uuid4())
    record = OutcomeRecord(transfer_id, "completed", None, "a", "b", 1230, "RUB", 1, 2)

    async def wait_for_it() -> OutcomeRecord:
        future = waiters.register(transfer_id)
        assert future is not None
        producer.send(topic, key=b"x", value=b"not json").get(timeout=10)
        producer.send(topic, key=transfer_id.encode(), value=encode_outcome(record)).get(timeout=10)
        try:
            return await asyncio.wait_for(future, OUTCOME_TIMEOUT_S)
        finally:
            waiters.unregister(transfer_id, future)

    try:
        assert feed.ready.wait(READY_TIMEOUT_S), "outcome feed never positioned itself"
        assert asyncio.run(wait_for_it()) == record
    finally:
        producer.close()
        feed.stop()


QUIET_AFTER_S = 0.5  # short, so the test sees the feed rest and wake


def test_a_resting_feed_wakes_for_a_waiter_and_delivers_what_follows(
    settings: Settings, topic: str
) -> None:
    """With nobody waiting the feed stops fetching (`resting`). A waiter wakes it; once
    `listening()` returns, the outcome published next reaches that waiter."""
    waiters = OutcomeWaiters(on_demand=True)
    feed = OutcomeFeed(settings.kafka_bootstrap, topic, waiters, quiet_after_s=QUIET_AFTER_S)
    feed.start()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    transfer_id = str(uuid.uuid4())
    record = OutcomeRecord(transfer_id, "rejected", "insufficient_funds", "a", "b", 5, "RUB", 1, 2)

    async def wait_for_it() -> tuple[bool, OutcomeRecord]:
        future = waiters.register(transfer_id)
        assert future is not None
        try:
            listening = await waiters.listening(READY_TIMEOUT_S)
            producer.send(topic, key=transfer_id.encode(), value=encode_outcome(record)).get(10)
            return listening, await asyncio.wait_for(future, OUTCOME_TIMEOUT_S)
        finally:
            waiters.unregister(transfer_id, future)

    try:
        assert feed.ready.wait(READY_TIMEOUT_S), "outcome feed never positioned itself"
        assert feed.resting.wait(READY_TIMEOUT_S), "outcome feed never went quiet"
        assert asyncio.run(wait_for_it()) == (True, record)
    finally:
        producer.close()
        feed.stop()


def test_feed_resolves_a_waiter_from_a_packed_record(settings: Settings, topic: str) -> None:
    """A shard's packed record (a JSON array of a batch's outcomes, no key) resolves the
    waiter of the one outcome in it somebody waits on; the others are not for anyone."""
    waiters = OutcomeWaiters()
    feed = OutcomeFeed(settings.kafka_bootstrap, topic, waiters)
    feed.start()
    producer = RecordProducer(settings.kafka_bootstrap, "test-outcome-feed-packed")
    batch = [
        OutcomeRecord(str(uuid.uuid4()), "completed", None, "a", "b", 100 + i, "RUB", 1, 2)
        for i in range(5)
    ]
    wanted = batch[3]

    async def wait_for_it() -> OutcomeRecord:
        future = waiters.register(wanted.transfer_id)
        assert future is not None
        records = [(o.transfer_id.encode(), encode_outcome(o)) for o in batch]
        await asyncio.to_thread(producer.send_packed, topic, records)
        try:
            return await asyncio.wait_for(future, OUTCOME_TIMEOUT_S)
        finally:
            waiters.unregister(wanted.transfer_id, future)

    try:
        assert feed.ready.wait(READY_TIMEOUT_S), "outcome feed never positioned itself"
        assert asyncio.run(wait_for_it()) == wanted
    finally:
        producer.close()
        feed.stop()

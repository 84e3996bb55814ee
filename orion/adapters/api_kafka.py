"""The API's Kafka side (kafka-python): the transfer producer and the outcome feed.

`KafkaTransferProducer.produce` never blocks the event loop: `send` only appends to the
producer's buffer (topic metadata is fetched once at start), and the broker's acks come back
through the kafka future's callbacks, handed to the loop with `call_soon_threadsafe`. It
answers per record only after acks=all or a bounded timeout.

`OutcomeFeed` is one background thread per app: a group-less consumer of the results topic,
from its end at start, handing every decoded outcome to `OutcomeWaiters.deliver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from orion.adapters import kafka as kafka_admin
from orion.messages import MessageError, decode_outcome
from orion.serve.outcomes import OutcomeWaiters
from orion.serve.ports import DependencyUnavailableError, Record

log = logging.getLogger(__name__)

LINGER_MS = 2  # concurrent requests share one produce request; costs 2 ms of latency
REQUEST_TIMEOUT_MS = 3_000  # one produce request to a local broker takes milliseconds
DELIVERY_TIMEOUT_MS = 5_000  # the producer gives up (and says so) after this
SEND_TIMEOUT_S = 6.0  # the API's own bound, just past the producer's, in case it says nothing
METADATA_WAIT_MS = 5_000  # longest a send may block; only without metadata (warmed at start)
# Outcomes of the whole system flow through every API replica: fetch them in big chunks.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 50  # the most a waiting request's answer is delayed by that chunking
POLL_TIMEOUT_MS = 200  # the outcome thread notices a stop request within this
RECONNECT_BACKOFF_S = 1.0  # between attempts to reopen a failed outcome consumer
STOP_JOIN_S = 5.0  # shutdown waits this long for the outcome thread


class KafkaTransferProducer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        """Blocks while it connects and fetches the topic's metadata: call off the loop."""
        self._bootstrap, self._topic = bootstrap, topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="orion-api",
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            max_block_ms=METADATA_WAIT_MS,
            allow_auto_create_topics=False,  # topics are created by `orion infra`, on purpose
        )
        self._producer.partitions_for(topic)  # warm metadata so send() never waits for it
        self._probe: asyncio.Future[bool] | None = None

    async def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        if not records:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for key, value in records:
            done: asyncio.Future[None] = loop.create_future()
            futures.append(done)
            try:
                sent = self._producer.send(self._topic, key=key, value=value)
            except KafkaError as err:
                done.set_exception(err)
                continue
            sent.add_callback(_on_ack, loop, done)
            sent.add_errback(_on_error, loop, done)
        await asyncio.wait(futures, timeout=SEND_TIMEOUT_S)
        return [_error_of(f) for f in futures]

    async def ping(self) -> None:
        """A metadata round trip to the broker; concurrent probes share one thread."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(asyncio.to_thread(self._ping))
            # A probe that outlives its caller's timeout must not log "never retrieved".
            self._probe.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.shield(self._probe)
        except (KafkaError, OSError) as err:
            raise DependencyUnavailableError("kafka", str(err)) from err

    def _ping(self) -> bool:
        return kafka_admin.ping(self._bootstrap)

    def close(self) -> None:
        self._producer.close(timeout=SEND_TIMEOUT_S)


def _on_ack(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], _: object) -> None:
    _handoff(loop, done, None)


def _on_error(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], error: BaseException
) -> None:
    _handoff(loop, done, error)


def _handoff(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], error: BaseException | None
) -> None:
    """Runs on kafka-python's sender thread: pass the result to the request's loop."""
    with contextlib.suppress(RuntimeError):  # the loop closed while the record was in flight
        loop.call_soon_threadsafe(_settle, done, error)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _error_of(done: asyncio.Future[None]) -> BaseException | None:
    if not done.done():
        done.cancel()
        return TimeoutError(f"no acknowledgement within {SEND_TIMEOUT_S} s")
    return done.exception()


class OutcomeFeed:
    def __init__(self, bootstrap: str, topic: str, waiters: OutcomeWaiters) -> None:
        self._bootstrap, self._topic, self._waiters = bootstrap, topic, waiters
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once positioned at the end: outcomes flow from here
        self._thread = threading.Thread(target=self._run, name="orion-api-outcomes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_JOIN_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                consumer = self._open()
            except (KafkaError, OSError, ValueError) as err:
                log.warning("outcome feed cannot open %s: %s", self._topic, err)
                self._stop.wait(RECONNECT_BACKOFF_S)
                continue
            try:
                self._pump(consumer)
            except (KafkaError, OSError) as err:
                log.warning("outcome feed lost %s: %s; reopening", self._topic, err)
                self._stop.wait(RECONNECT_BACKOFF_S)
            finally:
                consumer.close(autocommit=False)

    def _open(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="orion-api-outcomes",
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            consumer.close(autocommit=False)
            raise ValueError(f"topic {self._topic} has no partitions")
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_end()
        for tp in tps:
            consumer.position(tp)  # resolve the lazy seek now, so `ready` means positioned
        self.ready.set()
        return consumer

    def _pump(self, consumer: KafkaConsumer) -> None:
        while not self._stop.is_set():
            for records in consumer.poll(timeout_ms=POLL_TIMEOUT_MS).values():
                for record in records:
                    if record.key is not None and not self._waiters.waiting(record.key):
                        continue  # keyed by transfer id: skip decoding what nobody waits on
                    try:
                        outcome = decode_outcome(record.value)
                    except MessageError:
                        continue  # the orchestrator dead-letters these; waiters time out
                    self._waiters.deliver(outcome)

"""The API's Kafka side (kafka-python): the transfer producer and the outcome feed.

`KafkaTransferProducer.produce` never blocks the event loop: `send` only appends to the
producer's buffer (topic metadata is fetched once at start), and the broker's acks come back
through the kafka future's callbacks, handed to the loop with `call_soon_threadsafe`. It
answers per transfer only after acks=all of the record carrying it, or a bounded timeout.
By default the transfers of one call that share a partition travel as one packed record
(`pack`; why and what it changes: load/design-ingest-records.md).

It heals itself: when sends have failed for PRODUCER_STUCK_S with no ack in between, the
kafka-python client is replaced by a fresh one (built off the loop; at most one attempt per
PRODUCER_REPLACE_INTERVAL_S). After a broker restart kafka-python's idempotent producer can
stay wedged for good (its producer id is reset and never initialised again; every send times
out), so waiting for it to recover is not enough. `ping` produces one record to the health
topic through the same client, so readiness says whether THIS process can produce, and idle
probes drive the healing too.

`OutcomeFeed` is one background thread per app: a group-less consumer of the results topic,
from its end at start, handing the decoded outcomes somebody waits on to
`OutcomeWaiters.deliver` (from records of one outcome or packed ones, see
load/design-results-records.md). It reads only while somebody waits (orion.serve.outcomes,
"Listening on demand"): QUIET_AFTER_S after the last waiter left it stops fetching, and the
next waiter wakes it at the topic's end.

"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import TopicPartition

from orion.adapters import kafka as kafka_adapter
from orion.adapters.kafka_partitioner import KeyPartitioner
from orion.messages import MessageError, decode_outcomes, encode_packed
from orion.serve.outcomes import OutcomeWaiters
from orion.serve.ports import DependencyUnavailableError, Record

log = logging.getLogger(__name__)

# Concurrent requests share one produce request; a lone one waits this long for company.
# A/B, seed 20k, 4 alternated pairs: 5 ms gave a median 1,879 accepted/s against 1,738 at
# 2 ms, Kafka 0.187 against 0.219 ms and the box 0.98 against 1.10 ms of CPU per transfer.
LINGER_MS = 5
REQUEST_TIMEOUT_MS = 3_000  # one produce request to a local broker takes milliseconds
DELIVERY_TIMEOUT_MS = 5_000  # the producer gives up (and says so) after this
SEND_TIMEOUT_S = 6.0  # the API's own bound, just past the producer's, in case it says nothing
METADATA_WAIT_MS = 5_000  # longest a send may block; only without metadata (warmed at start)
# Outcomes of the whole system flow through every API replica: fetch them in big chunks.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 50  # the most a waiting request's answer is delayed by that chunking
POLL_TIMEOUT_MS = 200  # the outcome thread notices a stop request (or a waiter) within this
# Nobody waited this long: stop fetching outcomes. A feed that never rests read every
# outcome of the system, ~1/5 of an API replica's CPU under batch load, for no one; waking it
# costs the next waiter one offsets request (milliseconds).
QUIET_AFTER_S = 10.0
POSITION_TIMEOUT_MS = 5_000  # the end offsets from a live broker take milliseconds
RECONNECT_BACKOFF_S = 1.0  # between attempts to reopen a failed outcome consumer
STOP_JOIN_S = 5.0  # shutdown waits this long for the outcome thread
# Sends failing this long with no ack in between mean a wedged client (a healthy one recovers
# from a broker restart within a metadata refresh): replace it.
PRODUCER_STUCK_S = 3.0
PRODUCER_REPLACE_INTERVAL_S = 2.0  # while the broker is still down, try a new client this often
PING_TIMEOUT_S = 1.5  # a probe record's ack from a healthy broker takes milliseconds
# A new client gives up reaching the broker after this (kafka-python waits 30 s by default,
# and a replacement started while the broker was down then blocked the next one that long).
BOOTSTRAP_TIMEOUT_MS = 2_000
PROBE_KEY = b"orion-api"


class SendHealth:
    """Whether sends are failing, and since when; pure (the clock is passed in).

    A record the producer itself expired (its delivery timeout passed with no ack) wedges
    kafka-python's idempotent producer for good: it resets its producer id and then sends
    nothing more, even once the cluster is healthy (measured: killing the active controller of
    three brokers, no ack in 27 s, while a fresh client acked in 0.1 s). So one expiry counts
    as stuck at once; other failures only after `after_s` without any ack."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.failing_since: float | None = None
        self.expired = False

    def observe(self, errors: Sequence[BaseException | None]) -> None:
        """One round of sends: any ack means healthy; only failures start the clock."""
        self.expired = self.expired or any(isinstance(e, KafkaTimeoutError) for e in errors)
        if any(error is None for error in errors):
            self.failing_since = None
        elif errors and self.failing_since is None:
            self.failing_since = self._clock()

    def stuck(self, after_s: float = PRODUCER_STUCK_S) -> bool:
        if self.expired:
            return True
        return self.failing_since is not None and self._clock() - self.failing_since >= after_s

    def restart_clock(self) -> None:
        """A fresh client gets the full grace period before it is judged."""
        self.expired = False
        if self.failing_since is not None:
            self.failing_since = self._clock()


class KafkaTransferProducer:
    def __init__(self, bootstrap: str, topic: str, health_topic: str, packed: bool = True) -> None:
        """Blocks while it connects and fetches the topics' metadata: call off the loop.
        `packed`: one record per partition and call (see `pack`), else one per transfer.

        A broker that does not answer yet is not fatal: the API starts without a client (every
        send answers unavailable, /readyz says so) and the healing builds one once it can."""
        self._bootstrap, self._topic, self._health_topic = bootstrap, topic, health_topic
        self._packed = packed
        self._partitioner = KeyPartitioner(remember_keys=True)  # keys are debit account ids
        self.health = SendHealth()
        self._producer: KafkaProducer | None = None
        try:
            self._producer = self._build()
        except (KafkaError, OSError) as err:
            log.warning("kafka: no producer yet (%s); retrying in the background", err)
            self.health.observe([err])
        self._replacing: asyncio.Task[None] | None = None
        self._next_replace_at = 0.0
        self._probe: asyncio.Future[list[BaseException | None]] | None = None

    def _build(self) -> KafkaProducer:
        producer = KafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id="orion-api",
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            partitioner=self._partitioner,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            max_block_ms=METADATA_WAIT_MS,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            reconnect_backoff_max_ms=kafka_adapter.RECONNECT_BACKOFF_MAX_MS,
            allow_auto_create_topics=False,  # topics are created by `orion infra`, on purpose
        )
        try:
            # Warm metadata so send() never waits for it on the event loop.
            for topic in (self._topic, self._health_topic):
                if not producer.partitions_for(topic):
                    raise KafkaError(f"topic {topic} does not exist")
        except BaseException:
            producer.close(timeout=0)
            raise
        return producer

    async def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        return await self._send(self._topic, records, SEND_TIMEOUT_S, self._packed)

    async def _send(
        self, topic: str, records: Sequence[Record], timeout_s: float, packed: bool = False
    ) -> list[BaseException | None]:
        if not records:
            return []
        producer = self._producer
        if producer is None:
            missing = DependencyUnavailableError("kafka", "no connection to the broker yet")
            self._observe([missing])
            return [missing] * len(records)
        acks = Acks(asyncio.get_running_loop(), len(records))
        if packed:
            self._send_packed(producer, acks, topic, records)
        else:
            for index, (key, value) in enumerate(records):
                _send_one(producer, acks, (index,), topic, key, value, None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(acks.all_answered), timeout_s)
        errors = acks.errors(timeout_s)
        if producer is self._producer:  # a replaced client's last rounds say nothing of the new
            self._observe(errors)
        return errors

    def _send_packed(
        self, producer: KafkaProducer, acks: Acks, topic: str, records: Sequence[Record]
    ) -> None:
        try:
            partitions = len(producer.partitions_for(topic))  # known since start: no wait
        except KafkaError as err:
            acks.answer(range(len(records)), err)
            return
        for group in kafka_adapter.pack(
            records, lambda key: self._partitioner.of(topic, partitions, key)
        ):
            value = encode_packed(group.values)
            _send_one(producer, acks, group.indexes, topic, None, value, group.partition)

    def _observe(self, errors: Sequence[BaseException | None]) -> None:
        """Feed the health; start a replacement when sends have been failing too long."""
        self.health.observe(errors)
        now = time.monotonic()
        busy = self._replacing is not None and not self._replacing.done()
        stuck = self.health.stuck(0.0 if self._producer is None else PRODUCER_STUCK_S)
        if busy or not stuck or now < self._next_replace_at:
            return
        self._next_replace_at = now + PRODUCER_REPLACE_INTERVAL_S
        self._replacing = asyncio.ensure_future(self._replace())

    async def _replace(self) -> None:
        """Swap in a fresh client; if the broker is still away, keep the old one for now."""
        try:
            fresh = await asyncio.to_thread(self._build)
        except (KafkaError, OSError) as err:
            log.warning("kafka: sends failing; a new producer could not start yet: %s", err)
            return
        old, self._producer = self._producer, fresh
        self.health.restart_clock()
        log.warning("kafka: sends were failing; replaced the producer with a fresh one")
        if old is not None:
            await asyncio.to_thread(old.close, 0)

    async def ping(self) -> None:
        """One record to the health topic through this producer, acked within PING_TIMEOUT_S:
        ready means this process can produce now. Concurrent probes share one record."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(
                self._send(self._health_topic, [(PROBE_KEY, b"")], PING_TIMEOUT_S)
            )
        [error] = await asyncio.shield(self._probe)
        if error is not None:
            raise DependencyUnavailableError("kafka", f"cannot produce: {error}")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=SEND_TIMEOUT_S)


def _send_one(
    producer: KafkaProducer,
    acks: Acks,
    indexes: Sequence[int],
    topic: str,
    key: bytes | None,
    value: bytes,
    partition: int | None,
) -> None:
    """Send one record carrying the transfers at `indexes`; its answer answers them all."""
    try:
        sent = producer.send(topic, key=key, value=value, partition=partition)
    except KafkaError as err:
        acks.answer(indexes, err)
        return
    sent.add_callback(acks.acked, indexes)
    sent.add_errback(acks.answer, indexes)


class Acks:
    """The broker's answers to the transfers of one produce call, gathered on kafka-python's
    thread and handed to the request's event loop once, when the last one is answered.

    One hand-off per call, not one per record: each `call_soon_threadsafe` wakes the loop
    through its self-pipe (a system call) and runs a callback on the loop, the thread that
    bounds the API; a 500-transfer batch request used to pay that 500 times.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self._loop = loop
        self.all_answered: asyncio.Future[None] = loop.create_future()
        self._answers: list[BaseException | _Unanswered | None] = [_UNANSWERED] * count
        self._left = count
        self._lock = threading.Lock()  # answers come from the sender thread and the loop's
        if count == 0:
            self.all_answered.set_result(None)

    def acked(self, indexes: Sequence[int], _metadata: object) -> None:
        self.answer(indexes, None)

    def answer(self, indexes: Sequence[int], error: BaseException | None) -> None:
        """The answer of the record carrying the transfers at `indexes` (the first counts)."""
        with self._lock:
            left = self._left
            for index in indexes:
                if self._answers[index] is _UNANSWERED:
                    self._answers[index] = error
                    left -= 1
            if left == self._left:
                return  # all answered before: the loop was woken then
            self._left = left
            if left:
                return
        with contextlib.suppress(RuntimeError):  # the loop closed while records were in flight
            self._loop.call_soon_threadsafe(_resolve, self.all_answered)

    def errors(self, timeout_s: float) -> list[BaseException | None]:
        """Per record: None (acked), its error, or a timeout for a record still unanswered."""
        with self._lock:
            answers = list(self._answers)
        late = TimeoutError(f"no acknowledgement within {timeout_s} s")
        return [late if isinstance(a, _Unanswered) else a for a in answers]


class _Unanswered:
    """No answer from the broker yet (distinct from None, which means acked)."""


_UNANSWERED = _Unanswered()


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


class OutcomeFeed:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        waiters: OutcomeWaiters,
        quiet_after_s: float = QUIET_AFTER_S,
    ) -> None:
        self._bootstrap, self._topic, self._waiters = bootstrap, topic, waiters
        self._quiet_after_s = quiet_after_s
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once positioned at the end: outcomes flow from here
        self.resting = threading.Event()  # set while it fetches nothing, for want of waiters
        self._thread = threading.Thread(target=self._run, name="orion-api-outcomes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_JOIN_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._waiters.mark_deaf()  # until positioned: waiters wait for mark_listening
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
            reconnect_backoff_max_ms=kafka_adapter.RECONNECT_BACKOFF_MAX_MS,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            consumer.close(autocommit=False)
            raise ValueError(f"topic {self._topic} has no partitions")
        consumer.assign([TopicPartition(self._topic, p) for p in sorted(partitions)])
        try:
            self._to_end(consumer)
        except BaseException:
            consumer.close(autocommit=False)
            raise
        self.ready.set()
        return consumer

    def _to_end(self, consumer: KafkaConsumer) -> None:
        """Position at the topic's end now (not lazily), then tell the waiters."""
        consumer.seek_to_end()
        for tp in consumer.assignment():
            if consumer.position(tp, timeout_ms=POSITION_TIMEOUT_MS) is None:
                raise KafkaTimeoutError(f"no end offset of {tp} from the broker")
        self._waiters.mark_listening()

    def _pump(self, consumer: KafkaConsumer) -> None:
        last_wanted = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._waiters.count:
                last_wanted = now
            elif now - last_wanted >= self._quiet_after_s and self._waiters.try_quiet():
                if not self._rest():
                    return
                self._to_end(consumer)
                last_wanted = time.monotonic()
                continue
            for records in consumer.poll(timeout_ms=POLL_TIMEOUT_MS).values():
                for record in records:
                    if record.key is not None and not self._waiters.waiting(record.key):
                        continue  # keyed by transfer id: skip decoding what nobody waits on
                    try:  # a packed record: only the outcomes somebody waits on are built
                        outcomes = decode_outcomes(record.value, self._waiters.waiting)
                    except MessageError:
                        continue  # shards write only well-formed ones; waiters time out
                    for outcome in outcomes:
                        self._waiters.deliver(outcome)

    def _rest(self) -> bool:
        """Fetch nothing until a waiter wants the feed (True) or the app stops (False)."""
        self.resting.set()
        try:
            while not self._stop.is_set():
                if self._waiters.wanted.wait(POLL_TIMEOUT_MS / 1000):
                    return True
            return False
        finally:
            self.resting.clear()

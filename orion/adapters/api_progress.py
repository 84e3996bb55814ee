"""The API's settlement monitor: a background thread reading, from Kafka alone, whether each
partition's settlement is moving (orion.domain.progress), for /readyz and the metrics.

Guarantees: it never blocks a request (readers take the last reading, one reference read);
Kafka being away only delays readings (the failure is kept in `error` and logged, the thread
goes on); it stops within STOP_JOIN_S.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka.errors import KafkaError

from orion.adapters.kafka_progress import ProgressReader
from orion.domain.progress import Settlement, assess

log = logging.getLogger(__name__)
STOP_JOIN_S = 5.0  # shutdown waits this long for the thread

MONITOR_INTERVAL_S = 5.0  # one reading per Prometheus scrape interval is enough
SettlementObserver = Callable[[Settlement], None]


class SettlementMonitor:
    """A background thread that reads settlement progress from Kafka every
    MONITOR_INTERVAL_S: `latest` feeds /readyz, observers feed metrics. Kafka being away
    only delays readings (the failure is kept in `error`, the thread goes on)."""

    def __init__(self, bootstrap: str, topic: str, group: str, stuck_after_s: float) -> None:
        self._bootstrap, self._topic, self._group = bootstrap, topic, group
        self._stuck_after_s = stuck_after_s
        self.latest: Settlement | None = None
        self.error: str | None = None
        self._observers: list[SettlementObserver] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orion-api-progress", daemon=True)

    @property
    def stuck_summary(self) -> str | None:
        latest = self.latest
        return None if latest is None or not latest.stuck else latest.summary()

    def observe(self, observer: SettlementObserver) -> None:
        self._observers.append(observer)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_JOIN_S)

    def _run(self) -> None:
        reader: ProgressReader | None = None
        while not self._stop.is_set():
            try:
                reader = reader or ProgressReader(self._bootstrap, self._topic, self._group)
                now_ms = time.time_ns() // 1_000_000
                self._publish(assess(reader.read(), now_ms, self._stuck_after_s))
            except (KafkaError, OSError, ValueError) as err:
                self.error = f"settlement progress unknown: {err}"
                log.warning("%s", self.error)
            self._stop.wait(MONITOR_INTERVAL_S)
        if reader is not None:
            reader.close()

    def _publish(self, settlement: Settlement) -> None:
        self.latest, self.error = settlement, None
        for observer in self._observers:
            observer(settlement)

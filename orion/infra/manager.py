"""`orion infra up | down | status | logs`: the native stack as one unit.

`up` is idempotent: a service already running (pid file + matching cmdline + ready) is left
alone. It starts every missing service first and only then waits for each to be ready, so the
nodes of a Kafka cluster (which need each other for a controller quorum) come up together.
Every wait is bounded; a failure names the service and its log file. `down` stops only what
Orion started, by pid, in reverse order, and keeps data unless asked to purge. Switching
`ORION_KAFKA_BROKERS` stops the nodes of the other Kafka first (their data is kept).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from orion.adapters import kafka as kafka_adapter
from orion.adapters import postgres as pg
from orion.adapters import redis as redis_adapter
from orion.config import Settings
from orion.infra.kafka_broker import KafkaBroker, kafka_nodes
from orion.infra.postgres_server import PostgresServer
from orion.infra.process import POLL_INTERVAL_S, ServiceError, rss_bytes, wait_until
from orion.infra.prometheus_server import PrometheusServer
from orion.infra.redis_server import RedisServer
from orion.infra.service import Missing, Service
from orion.priority import SERVICES_YIELD_ON_WAKEUP

Echo = Callable[[str], None]


def services(settings: Settings) -> list[Service]:
    """In start order; `down` walks it backwards."""
    return [
        PostgresServer(settings),
        RedisServer(settings),
        *kafka_nodes(settings),
        PrometheusServer(settings),
    ]


def _other_kafka(settings: Settings) -> list[Service]:
    """Nodes of the Kafka the setting does NOT ask for (1 vs 3 brokers)."""
    return list(kafka_nodes(settings, 4 - settings.kafka_brokers))


@dataclass(frozen=True)
class Health:
    name: str
    up: bool
    address: str
    version: str
    pid: int | None
    rss_bytes: int

    def line(self) -> str:
        state = "up" if self.up else "down"
        rss = f"rss={self.rss_bytes // 2**20}MiB" if self.pid else ""
        return f"{self.name:<11} {state:<5} {self.address:<16} {self.version:<10} {rss}".rstrip()


def missing_prerequisites(settings: Settings) -> list[Missing]:
    return [m for svc in services(settings) for m in svc.prerequisites()]


def up(settings: Settings, echo: Echo) -> None:
    """Start every service not already running, then wait until each is ready."""
    for svc in _other_kafka(settings):
        if svc.managed.stop(settings.stop_timeout_s):
            echo(f"{svc.name}: stopped (ORION_KAFKA_BROKERS={settings.kafka_brokers})")
    started = []
    for svc in services(settings):
        if svc.managed.pid() is None:
            svc.prepare()
            if _safe_ready(svc):
                raise ServiceError(
                    f"{svc.name}: something not started by Orion already answers on "
                    f"{svc.address}; stop it or change the port"
                )
            svc.managed.start(svc.argv(), user=svc.user, yields_on_wakeup=SERVICES_YIELD_ON_WAKEUP)
            started.append(svc.name)
    for svc in services(settings):
        _await_ready(svc, settings.ready_timeout_s)
        for warning in svc.after_ready():
            echo(f"warning: {warning}")
    echo("started: " + ", ".join(started) if started else "already up: nothing to do")


def check_external(settings: Settings) -> None:
    """With infrastructure run elsewhere: Kafka and Redis must answer (PostgreSQL is checked
    by the migration that follows), and Orion's topics exist. Prometheus is optional."""
    for svc in services(settings):
        if isinstance(svc, PostgresServer | PrometheusServer):
            continue
        if not _safe_ready(svc):
            raise ServiceError(f"{svc.name} does not answer on {svc.address}")
        if isinstance(svc, KafkaBroker):
            svc.after_ready()


def _await_ready(svc: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _safe_ready(svc):
        if svc.managed.pid() is None:
            raise ServiceError(_failure(svc, "exited during start-up"))
        if time.monotonic() > deadline:
            raise ServiceError(_failure(svc, f"not ready within {timeout_s:.0f} s"))
        time.sleep(POLL_INTERVAL_S)


def _failure(svc: Service, what: str) -> str:
    tail = svc.managed.log_tail(5).replace("\n", "\n    ")
    return f"{svc.name} {what}; log: {svc.managed.log_file}\n    {tail}"


def _safe_ready(svc: Service) -> bool:
    return wait_until(svc.ready, 0.0)


def down(settings: Settings, echo: Echo, *, purge: bool = False) -> None:
    """Stop every service Orion started; with `purge`, delete their data, the other Kafka
    shape's too (its topics would otherwise outlive the ledger they were settled into, and
    the next audit on that shape would find their transfers missing)."""
    for svc in _other_kafka(settings):
        if svc.managed.stop(settings.stop_timeout_s):
            echo(f"{svc.name}: stopped")
        if purge and any(path.exists() for path in svc.data_dirs()):
            _purge(svc, echo)
    for svc in reversed(services(settings)):
        stopped = svc.managed.stop(settings.stop_timeout_s)
        echo(f"{svc.name}: {'stopped' if stopped else 'not running'}")
        if purge:
            _purge(svc, echo)


def _purge(svc: Service, echo: Echo) -> None:
    for path in svc.data_dirs():
        if path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)
    echo(f"{svc.name}: data purged")


def status(settings: Settings) -> list[Health]:
    """Each service Orion runs; with the infrastructure elsewhere (ORION_MANAGE_INFRA=false),
    whether Kafka, PostgreSQL and Redis answer at their configured addresses."""
    if not settings.manage_infra:
        return _external_status(settings)
    report = []
    for svc in services(settings):
        pid = svc.managed.pid()
        up_now = pid is not None and _safe_ready(svc)
        version = _safe_version(svc) if up_now else "-"
        report.append(
            Health(svc.name, up_now, svc.address, version, pid, rss_bytes(pid) if pid else 0)
        )
    return report


def _external_status(settings: Settings) -> list[Health]:
    def answer(probe: Callable[[], str]) -> str | None:
        try:
            return probe()
        except Exception:  # noqa: BLE001 - status is a report: no answer is shown as down
            return None

    kafka = settings.kafka_bootstrap
    postgres = f"{settings.postgres_host or settings.host}:{settings.postgres_port}"
    redis = f"{settings.redis_host or settings.host}:{settings.redis_port}"
    probes: list[tuple[str, str, Callable[[], str]]] = [
        ("postgres", postgres, lambda: pg.server_version(settings.postgres_dsn).split()[0]),
        ("redis", redis, lambda: redis_adapter.server_version(settings.redis_url)),
        ("kafka", kafka, lambda: _kafka_answers(kafka)),
    ]
    report = []
    for name, address, probe in probes:
        version = answer(probe)
        report.append(Health(name, version is not None, address, version or "-", None, 0))
    return report


def _kafka_answers(bootstrap: str) -> str:
    """What the status shows for an external Kafka that answers (its version is not asked)."""
    if not kafka_adapter.ping(bootstrap):
        raise ServiceError(f"kafka does not answer on {bootstrap}")
    return "external"


def _safe_version(svc: Service) -> str:
    try:
        return svc.version()
    except Exception:  # noqa: BLE001 - status is a report: an unreadable version is shown as "?"
        return "?"


def find(settings: Settings, name: str) -> Service:
    for svc in services(settings):
        if svc.name == name:
            return svc
    raise ServiceError(
        f"no service named {name!r}; one of: " + ", ".join(s.name for s in services(settings))
    )

"""Orion's typed configuration: the one place every host, port, path, topic and bound is read.

Every value comes from an `ORION_`-prefixed environment variable (or a `.env` file) and is
validated with explicit bounds, so a bad setting stops start-up with one line naming it.
Defaults describe a single developer machine: every listener on 127.0.0.1.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Port = Annotated[int, Field(ge=1, le=65_535)]
TimeoutS = Annotated[float, Field(gt=0, le=600)]
Partitions = Annotated[int, Field(ge=1, le=256)]


class Settings(BaseSettings):
    """All of Orion's settings. Field name `x` is read from `ORION_X`."""

    model_config = SettingsConfigDict(env_prefix="ORION_", env_file=".env", extra="ignore")

    # Where Orion keeps data, logs and pid files of everything it starts.
    state_dir: Path = Path(".orion")
    # The address every Orion-started server binds; loopback unless you know why not.
    host: str = "127.0.0.1"
    # Where each service is, when not on `host` (a cluster: services on their own machines).
    kafka_host: str | None = None
    postgres_host: str | None = None
    redis_host: str | None = None
    # A running Ray cluster to deploy onto ("10.0.0.5:6380"): `orion up` then starts no Ray
    # head, no infrastructure (set ORION_MANAGE_INFRA=false) and no API front, and leaves the
    # single-node loopback switch off. Unset: one machine, Ray started by Orion on `host`.
    ray_address: str | None = None
    # Orchestrators in the consumer group: each settles the partitions Kafka assigns it.
    orchestrators: Annotated[int, Field(ge=1, le=256)] = 1
    # API replicas; on a cluster at most api_replicas_per_node per node (each replica serves
    # on a port of its node's range of 8, see api_replica_port).
    api_replicas: Annotated[int, Field(ge=1, le=64)] = 1
    api_replicas_per_node: Annotated[int, Field(ge=1, le=8)] = 1
    # False when Kafka, PostgreSQL, Redis and Prometheus run elsewhere (docker compose):
    # `orion up` then only checks they answer, and `orion down` leaves them alone.
    manage_infra: bool = True

    # One broker survives a process crash (kill -9: the data is in the page cache, flushed by
    # the kernel), not a power loss. Three brokers (replication factor 3, min.insync.replicas
    # 2, each fsyncing on its own schedule) survive losing any one broker.
    kafka_brokers: Annotated[int, Field(ge=1, le=3)] = 1
    # Broker k (0-based) listens on kafka_port + 2k, its KRaft controller on
    # kafka_controller_port + 2k: 9092/9093, 9094/9095, 9096/9097 by default.
    kafka_port: Port = 9092
    kafka_controller_port: Port = 9093
    kafka_heap_mb: Annotated[int, Field(ge=128, le=16_384)] = 512
    topic_transfers: str = "orion.transfers"
    topic_results: str = "orion.transfer-results"
    topic_dlq: str = "orion.transfers.dlq"
    # Readiness probes of the API produce one tiny record here (1 partition, 1 h retention).
    topic_health: str = "orion.health"
    transfers_partitions: Partitions = 8
    # "packed": the API writes the transfers of one produce round that share a partition as
    # one record (a JSON array; ~20 µs of producer CPU per record saved per transfer, and
    # the orchestrator fetches fewer records); "single": one record per transfer, for a
    # consumer of the topic that reads objects only. Orchestrators read both.
    ingest_records: Literal["packed", "single"] = "packed"
    results_partitions: Partitions = 8
    # "packed": a shard writes the outcomes of one batch that share a partition as one record
    # (a JSON array; kafka-python's ~25 µs of shard CPU per record, ~12 % of the box under
    # batch load, paid per record instead of per outcome); "single": one record per outcome,
    # keyed by its transfer id, for consumers that read objects only. Orion's readers read both
    # (load/design-results-records.md).
    results_records: Literal["packed", "single"] = "packed"
    dlq_partitions: Partitions = 1

    postgres_port: Port = 5432
    postgres_user: str = "orion"
    postgres_password: str = "orion"
    postgres_db: str = "orion"
    # Who may log in over TCP besides loopback (CIDR): a cluster's nodes.
    postgres_clients: str = "127.0.0.1/32"

    redis_port: Port = 6379
    redis_db: Annotated[int, Field(ge=0, le=15)] = 0
    # Required off loopback: Redis refuses other clients without one (protected mode).
    redis_password: str | None = None
    # `orion infra up` caps Redis's memory here. Idempotency keys are evicted oldest-first
    # past it (PostgreSQL then answers for them, see idempotency_window_s); 0 = no cap.
    redis_maxmemory_mb: Annotated[int, Field(ge=0, le=1_048_576)] = 4096
    # How long the API answers a repeated transfer id from Redis (same body: as before;
    # another body: 409). Past it, the shards' claim in PostgreSQL still applies an id once.
    idempotency_window_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 24 * 3600

    prometheus_port: Port = 9090
    # Grafana is not installable here (not in Debian); docker compose runs it on this port.
    grafana_port: Port = 3000
    # HAProxy holds the API port; the Serve replicas behind it take ports from this one on
    # (8 of them, see orion/infra/api_front.py), on the same host.
    api_port: Port = 8000
    api_replica_port: Annotated[int, Field(ge=1024, le=65_000)] = 30000
    # false: no front; the one replica serves the API port itself. ~13 % more seed requests/s
    # on this 2-core box, but a crashed replica leaves the API down for 40-150 s (README).
    api_front: bool = True
    # Bearer keys for the API (comma-separated). Empty: no auth, and the API stays on loopback.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Serve's access log: one line per request in the replica's log (method, route, status,
    # latency). Off by default: at 1,700 requests/s it cost the replica ~7 % of its CPU and
    # writes ~15 GB a day; every request is still counted in the metrics, and the API front
    # (HAProxy) is the place for a request log when one is needed.
    api_access_log: bool = False
    # Currency of the seed-compatible POST /transactions/ (the seed's 40817810… are RUB).
    seed_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"

    # Ray: its GCS must not take Redis's 6379, so it gets its own port.
    ray_gcs_port: Port = 6380
    ray_dashboard_port: Port = 8265
    ray_namespace: str = "orion"
    # Ray Serve's supported throughput mode: the ingress replica serves HTTP itself (direct
    # ingress, on the API port), skipping the per-request Python proxy hop.
    serve_throughput_optimized: bool = True
    # Serve's own HTTP proxy still runs in that mode; it gets this port, clients use api_port.
    serve_proxy_port: Port = 8001
    # One shard per core: on this 2-core box 2 shards settled 4.1-4.8k/s against 3.4-4.2k/s
    # with 4 (smaller batches, more processes) and 3.2k/s with 1 (load/RESULTS.md).
    shard_count: Annotated[int, Field(ge=1, le=64)] = 2
    # Ray writes its Prometheus service-discovery file here (session_latest is a symlink).
    ray_temp_dir: Path = Path("/tmp/ray")

    # A partition whose oldest unsettled transfer and last commit are both older than this
    # is reported stuck (`orion status`, /readyz, orion_partition_stuck).
    stuck_after_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # Bounded waits for a service to become ready after it is started, and to stop.
    ready_timeout_s: TimeoutS = 60.0
    stop_timeout_s: TimeoutS = 30.0

    @field_validator("kafka_brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("must be 1 or 3 (two brokers cannot keep 2 in-sync copies of 3)")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(self.kafka_broker_addresses)

    @property
    def kafka_broker_addresses(self) -> list[str]:
        host = self.kafka_host or self.host
        return [f"{host}:{self.kafka_port + 2 * k}" for k in range(self.kafka_brokers)]

    @property
    def postgres_dsn(self) -> str:
        return (
            f"host={self.postgres_host or self.host} port={self.postgres_port} "
            f"dbname={self.postgres_db} "
            f"user={self.postgres_user} password={self.postgres_password}"
        )

    @property
    def redis_url(self) -> str:
        auth = f":{self.redis_password}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host or self.host}:{self.redis_port}/{self.redis_db}"

    @property
    def cluster(self) -> bool:
        """Deploying onto a Ray cluster someone else started (see ray_address)."""
        return self.ray_address is not None

    @property
    def topic_partitions(self) -> dict[str, int]:
        return {
            self.topic_transfers: self.transfers_partitions,
            self.topic_results: self.results_partitions,
            self.topic_dlq: self.dlq_partitions,
            self.topic_health: 1,
        }


class ConfigError(Exception):
    """A setting is out of its allowed range; the message names it in one line."""


def describe_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    name = "ORION_" + "_".join(str(p) for p in first["loc"]).upper()
    return f"bad setting {name}: {first['msg']} (got {first.get('input')!r})"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once; raises ConfigError with one line."""
    try:
        return Settings()
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err)) from None

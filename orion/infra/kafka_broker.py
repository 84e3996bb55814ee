"""Kafka 4.x in KRaft mode from Maven Central jars: one node, or a cluster of three.

Each node is a combined broker + controller. With `kafka_brokers = 1` the node is "kafka"
(data in .orion/kafka), formatted as a standalone controller. With 3 the nodes are "kafka-1"
.. "kafka-3" (data in .orion/kafka-N), a static three-voter quorum sharing one cluster id;
Orion's topics get replication factor 3 and `min.insync.replicas=2`, so acks=all survives
losing any one broker. Node k listens on kafka_port + 2k, its controller on
kafka_controller_port + 2k.

The jars are resolved once by `mvn dependency:copy-dependencies` from the pom kept beside this
module into .orion/kafka/libs (shared by every node); a stamp of the pom's hash makes later
runs skip Maven. Each node's storage is formatted once.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
from pathlib import Path

from orion.adapters import kafka as kafka_adapter
from orion.config import Settings
from orion.infra.process import port_open, run_once
from orion.infra.service import Missing, Service, need_binary

POM = Path(__file__).parent / "kafka" / "pom.xml"
MVN_TIMEOUT_S = 600  # a cold Maven Central resolution of ~50 jars; cached afterwards
FORMAT_TIMEOUT_S = 120  # StorageTool is a one-shot JVM: seconds
CLUSTER_MIN_INSYNC_REPLICAS = 2  # of 3: acks=all still answers with one broker down
# How fast the controller fences a dead broker and moves its partitions' leadership (Kafka's
# defaults, 2 s / 9 s, held acks=all produces for ~10 s after a kill -9 here).
BROKER_HEARTBEAT_MS = 1_000
BROKER_SESSION_TIMEOUT_MS = 4_000
PORT_STRIDE = 2  # node k: kafka_port + 2k and kafka_controller_port + 2k


def new_cluster_id() -> str:
    """A random cluster id in Kafka's form: a UUID as 22 url-safe base64 characters."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def kafka_nodes(settings: Settings, brokers: int | None = None) -> list[KafkaBroker]:
    """The nodes of the configured Kafka (or of the one with `brokers` nodes)."""
    count = settings.kafka_brokers if brokers is None else brokers
    return [KafkaBroker(settings, k, count) for k in range(count)]


class KafkaBroker(Service):
    name = "kafka"

    def __init__(self, settings: Settings, index: int = 0, brokers: int = 1) -> None:
        self.index, self.brokers = index, brokers
        self.name = "kafka" if brokers == 1 else f"kafka-{index + 1}"
        super().__init__(settings)

    @property
    def port(self) -> int:
        return self.settings.kafka_port + PORT_STRIDE * self.index

    @property
    def controller_port(self) -> int:
        return self.settings.kafka_controller_port + PORT_STRIDE * self.index

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    @property
    def libs(self) -> Path:
        return self.state / "kafka" / "libs"

    @property
    def properties(self) -> Path:
        return self.dir / "server.properties"

    def prerequisites(self) -> list[Missing]:
        return need_binary("java", "default-jre-headless") + need_binary("mvn", "maven")

    def prepare(self) -> None:
        self.resolve_jars()
        self._write_config()
        if not (self.dir / "data" / "meta.properties").exists():
            self._format_storage()

    def argv(self) -> list[str]:
        heap = f"{self.settings.kafka_heap_mb}m"
        return [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.state / 'logs'}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.properties),
        ]

    def ready(self) -> bool:
        # A metadata request to a port nobody listens on blocks for the client's whole
        # bootstrap timeout; check the listener first so start-up polling stays quick.
        host = self.settings.kafka_host or self.settings.host
        return port_open(host, self.port) and kafka_adapter.ping(f"{host}:{self.port}")

    def after_ready(self) -> list[str]:
        if self.index != self.brokers - 1:
            return []  # the last node creates the topics, once every node is up
        return kafka_adapter.ensure_topics(
            self.settings.kafka_bootstrap,
            self.settings.topic_partitions,
            replication=self.brokers,
            configs={self.settings.topic_health: kafka_adapter.HEALTH_TOPIC_CONFIG},
        )

    def version(self) -> str:
        for jar in sorted(self.libs.glob("kafka_2.13-*.jar")):
            return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
        return "?"

    def data_dirs(self) -> list[Path]:
        # Keep the resolved jars on purge: they are a cache, not data.
        cluster_id = [self.state / f"kafka-cluster-{self.brokers}.id"] if self.brokers > 1 else []
        return [self.dir / "data", *cluster_id]

    def resolve_jars(self) -> None:
        """Fetch the broker's jars once (Maven Central); later calls check a stamp only."""
        stamp = self.libs / ".pom-sha256"
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return
        shutil.rmtree(self.libs, ignore_errors=True)
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.libs}",
            "-DincludeScope=runtime",
        ]
        run_once(cmd, MVN_TIMEOUT_S)
        stamp.write_text(digest)

    def _write_config(self) -> None:
        s = self.settings
        ctrl = f"{s.host}:{self.controller_port}"
        replicas = str(self.brokers)
        min_isr = "1" if self.brokers == 1 else str(CLUSTER_MIN_INSYNC_REPLICAS)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.index + 1),
            **self._quorum(),
            "listeners": f"PLAINTEXT://{self.address},CONTROLLER://{ctrl}",
            "advertised.listeners": f"PLAINTEXT://{self.address},CONTROLLER://{ctrl}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "1",
            # Orion's topics are created explicitly with counts from config, never by accident.
            "auto.create.topics.enable": "false",
            "default.replication.factor": replicas,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "min.insync.replicas": min_isr,
            "unclean.leader.election.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.dir / "log4j2.properties").write_text(LOG4J2)

    def _quorum(self) -> dict[str, str]:
        host, base = self.settings.host, self.settings.kafka_controller_port
        if self.brokers == 1:
            return {"controller.quorum.bootstrap.servers": f"{host}:{base}"}
        voters = [f"{k + 1}@{host}:{base + PORT_STRIDE * k}" for k in range(self.brokers)]
        return {
            "controller.quorum.voters": ",".join(voters),
            "broker.heartbeat.interval.ms": str(BROKER_HEARTBEAT_MS),
            "broker.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
        }

    def _cluster_id(self) -> str:
        """One id for every node of a cluster, kept beside their data dirs."""
        if self.brokers == 1:
            return new_cluster_id()
        path = self.state / f"kafka-cluster-{self.brokers}.id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id())
        return path.read_text().strip()

    def _format_storage(self) -> None:
        standalone = ["--standalone"] if self.brokers == 1 else []
        # `--cluster-id=<id>` as one argument: an id may start with "-" (url-safe base64), and
        # StorageTool's parser reads a separate "-..." as an option ("expected one argument").
        cmd = [
            "java", "-Xmx256m", "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format",
            *standalone, f"--cluster-id={self._cluster_id()}", "-c", str(self.properties),
        ]  # fmt: skip
        run_once(cmd, FORMAT_TIMEOUT_S)


LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""

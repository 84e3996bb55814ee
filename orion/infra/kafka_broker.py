"""Single-node Kafka 4.x in KRaft mode (combined broker + controller) from Maven Central jars.

The jars are resolved once by `mvn dependency:copy-dependencies` from the pom kept beside this
module; a stamp of the pom's hash makes later runs skip Maven. Storage is formatted once.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
from pathlib import Path

from orion.adapters import kafka as kafka_adapter
from orion.infra.process import port_open, run_once
from orion.infra.service import Missing, Service, need_binary

POM = Path(__file__).parent / "kafka" / "pom.xml"
MVN_TIMEOUT_S = 600  # a cold Maven Central resolution of ~50 jars; cached afterwards
FORMAT_TIMEOUT_S = 120  # StorageTool is a one-shot JVM: seconds


class KafkaBroker(Service):
    name = "kafka"

    @property
    def address(self) -> str:
        return self.settings.kafka_bootstrap

    @property
    def libs(self) -> Path:
        return self.dir / "libs"

    @property
    def properties(self) -> Path:
        return self.dir / "server.properties"

    def prerequisites(self) -> list[Missing]:
        return need_binary("java", "default-jre-headless") + need_binary("mvn", "maven")

    def prepare(self) -> None:
        self._resolve_jars()
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
        return port_open(self.settings.host, self.settings.kafka_port) and kafka_adapter.ping(
            self.address
        )

    def after_ready(self) -> list[str]:
        return kafka_adapter.ensure_topics(self.address, self.settings.topic_partitions)

    def version(self) -> str:
        for jar in sorted(self.libs.glob("kafka_2.13-*.jar")):
            return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
        return "?"

    def data_dirs(self) -> list[Path]:
        # Keep the resolved jars on purge: they are a cache, not data.
        return [self.dir / "data"]

    def _resolve_jars(self) -> None:
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
        ctrl = f"{s.host}:{s.kafka_controller_port}"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": ctrl,
            "listeners": f"PLAINTEXT://{s.kafka_bootstrap},CONTROLLER://{ctrl}",
            "advertised.listeners": f"PLAINTEXT://{s.kafka_bootstrap},CONTROLLER://{ctrl}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "1",
            # Orion's topics are created explicitly with counts from config, never by accident.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.dir / "log4j2.properties").write_text(LOG4J2)

    def _format_storage(self) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [
            "java",
            "-Xmx256m",
            "-cp",
            f"{self.libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            cluster_id,
            "-c",
            str(self.properties),
        ]
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

"""The Kafka nodes `orion infra up` runs: one standalone node, or a three-voter cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from orion.config import Settings
from orion.infra import kafka_broker
from orion.infra.kafka_broker import kafka_nodes


def _properties(node_dir: Path) -> dict[str, str]:
    lines = (node_dir / "server.properties").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_one_broker_is_a_standalone_node_named_kafka(tmp_path: Path) -> None:
    """The default: one node "kafka", replication factor 1, its own controller quorum."""
    s = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    [node] = kafka_nodes(s)
    node._write_config()
    props = _properties(node.dir)
    assert node.name == "kafka" and node.address == "127.0.0.1:9092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert (props["min.insync.replicas"], props["default.replication.factor"]) == ("1", "1")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_three_brokers_share_a_quorum_and_keep_two_in_sync(tmp_path: Path, index: int) -> None:
    """Three nodes on ports two apart, one static voter set, RF 3, min.insync.replicas 2."""
    s = Settings(_env_file=None, state_dir=tmp_path, kafka_brokers=3)  # type: ignore[call-arg]
    node = kafka_nodes(s)[index]
    node._write_config()
    props = _properties(node.dir)
    assert node.name == f"kafka-{index + 1}"
    assert props["listeners"].startswith(f"PLAINTEXT://127.0.0.1:{9092 + 2 * index},")
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    )
    assert props["node.id"] == str(index + 1)
    assert (props["min.insync.replicas"], props["default.replication.factor"]) == ("2", "3")
    assert props["unclean.leader.election.enable"] == "false"


def test_a_cluster_id_starting_with_a_dash_reaches_the_storage_tool_as_one_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Url-safe base64 ids start with "-" one time in 64. Passed as `-t <id>`, StorageTool's
    parser took such an id for an option and `orion lab up` failed ("--cluster-id/-t:
    expected one argument"); `--cluster-id=<id>` is one argument whatever the id."""
    s = Settings(_env_file=None, state_dir=tmp_path, kafka_brokers=3)  # type: ignore[call-arg]
    node = kafka_nodes(s)[0]
    cluster_file = tmp_path / "kafka-cluster-3.id"
    cluster_file.write_text("-AbCdEfGhIjKlMnOpQrStUv")
    ran: list[list[str]] = []
    monkeypatch.setattr(kafka_broker, "run_once", lambda cmd, _timeout: ran.append(cmd))
    node._format_storage()
    [cmd] = ran
    assert "--cluster-id=-AbCdEfGhIjKlMnOpQrStUv" in cmd
    assert "-t" not in cmd


@pytest.mark.parametrize("brokers", [1, 3])
def test_purge_deletes_both_kafka_shapes_data(tmp_path: Path, brokers: int) -> None:
    """`orion down --purge` deletes the data of the Kafka it does not run too: the other
    shape's topics would outlive the purged ledger, and the audit there would fail."""
    from orion.infra import manager

    s = Settings(_env_file=None, state_dir=tmp_path, kafka_brokers=brokers)  # type: ignore[call-arg]
    other = Settings(_env_file=None, state_dir=tmp_path, kafka_brokers=4 - brokers)  # type: ignore[call-arg]
    dirs = [node.dir / "data" for node in (*kafka_nodes(s), *kafka_nodes(other))]
    for path in dirs:
        (path / "orion.transfers-0").mkdir(parents=True)
    manager.down(s, lambda _line: None, purge=True)
    assert [path for path in dirs if path.exists()] == []

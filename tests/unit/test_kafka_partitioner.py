"""KeyPartitioner must put every key exactly where Kafka's default partitioner does: per-account
order and anyone reading the topics by key depend on it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from orion.adapters.kafka_partitioner import KEY_CACHE_MAX, KeyPartitioner, murmur2

# org.apache.kafka.common.utils.UtilsTest.testMurmur2: the Java client's own values (signed).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


class Topics:
    """The two questions a partitioner asks of kafka-python's ClusterMetadata."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def topics(self) -> set[str]:
        return set(self._counts)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        n = self._counts.get(topic)
        return None if n is None else set(range(n))

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions_for_topic(topic)


def _signed(h: int) -> int:
    return h - (1 << 32) if h >= 1 << 31 else h


def test_murmur2_matches_the_java_client() -> None:
    for key, expected in JAVA_MURMUR2.items():
        assert _signed(murmur2(key)) == expected, key


@settings(max_examples=2_000)
@given(st.binary(max_size=80))
def test_murmur2_matches_kafka_python_for_any_bytes(key: bytes) -> None:
    assert murmur2(key) == kafka_python_murmur2(key)


@settings(max_examples=1_000)
@given(
    keys=st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=20),
    partitions=st.integers(min_value=1, max_value=64),
    remember=st.booleans(),
)
def test_partition_matches_the_default_partitioner(
    keys: list[bytes], partitions: int, remember: bool
) -> None:
    cluster = Topics({"t": partitions})
    ours, default = KeyPartitioner(remember_keys=remember), DefaultPartitioner()
    for key in keys + keys:  # the second pass answers from the cache when remembering
        assert ours.partition("t", key, key, b"v", b"v", cluster) == default.partition(
            "t", key, key, b"v", b"v", cluster
        )


def test_a_topic_that_grew_partitions_gets_fresh_answers() -> None:
    ours, default = KeyPartitioner(remember_keys=True), DefaultPartitioner()
    keys = [f"{10**16 + i}".encode() for i in range(200)]
    for count in (8, 12):
        cluster = Topics({"t": count})
        for key in keys:
            assert ours.partition("t", key, key, None, None, cluster) == default.partition(
                "t", key, key, None, None, cluster
            )


def test_the_key_cache_is_bounded() -> None:
    ours = KeyPartitioner(remember_keys=True)
    cluster = Topics({"t": 8})
    for i in range(KEY_CACHE_MAX + 10):
        ours.partition("t", None, i.to_bytes(4, "big"), None, None, cluster)
    assert 0 < len(ours._cache or {}) <= KEY_CACHE_MAX


def test_keyless_records_go_to_an_existing_partition() -> None:
    cluster = Topics({"t": 8})
    assert KeyPartitioner().partition("t", None, None, b"v", b"v", cluster) in range(8)

"""The settle latency's sample: one rank in LATENCY_SAMPLE_EVERY, each the middle of its group,
so the sample's quantiles stay where the batch's are."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.actors.labels import LATENCY_SAMPLE_EVERY, latency_sample

LATENCIES = st.lists(st.integers(0, 60_000), max_size=2_000)


@given(LATENCIES, st.integers(1, 16))
def test_one_per_group_of_ranks_each_inside_its_group(latencies: list[int], every: int) -> None:
    ranked = sorted(latencies)
    sample = latency_sample(latencies, every)
    assert len(sample) == -(-len(latencies) // every)
    for k, ms in enumerate(sample):
        group = ranked[k * every : (k + 1) * every]
        assert group[0] <= ms <= group[-1]
        assert ms == group[(len(group) - 1) // 2]


def test_every_batch_shows_in_the_histogram() -> None:
    assert latency_sample([120]) == [120]
    assert latency_sample([30, 10, 20]) == [20]


@given(st.lists(st.integers(0, 60_000), min_size=400, max_size=2_000))
def test_the_sample_keeps_the_quantiles(latencies: list[int]) -> None:
    ranked, sample = sorted(latencies), latency_sample(latencies)
    for q in (0.5, 0.95, 0.99):
        sampled = sample[min(len(sample) - 1, int(q * len(sample)))]
        # within two groups of ranks of the batch's own quantile (one for the group, one
        # for rounding the two ranks)
        rank, slack = int(q * len(ranked)), 2 * LATENCY_SAMPLE_EVERY
        low, high = ranked[max(0, rank - slack)], ranked[min(len(ranked) - 1, rank + slack)]
        assert low <= sampled <= high

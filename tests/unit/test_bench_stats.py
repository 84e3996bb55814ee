"""The benchmark's percentile math and per-second series (load/stats.py)."""

from __future__ import annotations

import math

import pytest

from load.stats import per_second_counts, per_second_percentiles, percentile, rate, summary_ms


def test_nearest_rank_percentiles_of_one_to_a_hundred_are_the_ranks_themselves() -> None:
    """On 1..100, p50 is 50, p95 is 95, p99 is 99, p100 is the max and p0 the min."""
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0, 1, 50, 95, 99, 100)] == [1, 1, 50, 95, 99, 100]


def test_percentile_is_always_an_observed_value_rounding_the_rank_up() -> None:
    """With 10 values p95 is the 10th (rank ceil(9.5) = 10), p50 the 5th, p51 the 6th."""
    values = [float(v) for v in range(10, 110, 10)]
    assert percentile(values, 95) == 100
    assert percentile(values, 50) == 50
    assert percentile(values, 51) == 60


def test_p99_of_a_thousand_samples_sees_ten_slow_ones_but_not_one() -> None:
    """The reason p99 is reported: 1% of slow requests moves it, 0.1% does not."""
    ten_slow = [0.01] * 990 + [1.0] * 10
    one_slow = [0.01] * 999 + [1.0]
    assert percentile(sorted(ten_slow), 99) == 0.01  # rank 990 is the last fast one
    assert percentile(sorted([0.01] * 989 + [1.0] * 11), 99) == 1.0
    assert percentile(sorted(one_slow), 99) == 0.01


def test_percentile_of_nothing_is_none_and_of_one_value_that_value() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 0) == 7.0
    assert percentile([7.0], 99.9) == 7.0


def test_percentile_outside_0_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_summary_is_in_milliseconds_and_sorts_its_input() -> None:
    s = summary_ms([0.003, 0.001, 0.002, 0.004])
    assert s == {"count": 4, "mean": 2.5, "p50": 2.0, "p95": 4.0, "p99": 4.0, "max": 4.0}
    assert summary_ms([]) == {
        "count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None
    }  # fmt: skip


def test_per_second_counts_bucket_by_whole_second_with_weights() -> None:
    """Events at 0.1 and 0.9 fall in second 0, 1.0 in second 1; batch answers carry weight."""
    assert per_second_counts([0.1, 0.9, 1.0, 3.5]) == [2, 1, 0, 1]
    assert per_second_counts([0.1, 1.2], [500, 250]) == [500, 250]
    assert per_second_counts([0.5, 5.0], seconds=2) == [1, 0]
    assert per_second_counts([-0.01]) == [1]  # clock skew before t0 lands in second 0


def test_per_second_percentiles_leave_empty_seconds_empty() -> None:
    series = per_second_percentiles([0.2, 0.4, 2.1], [0.010, 0.030, 0.5], (50.0, 99.0), 3)
    assert series[50.0] == [10.0, None, 500.0]
    assert series[99.0] == [30.0, None, 500.0]


def test_rate_of_nothing_over_no_time_is_none() -> None:
    assert rate(10, 0.0) is None
    assert rate(3, 2.0) == 1.5
    assert not math.isnan(rate(0, 1.0) or 0.0)

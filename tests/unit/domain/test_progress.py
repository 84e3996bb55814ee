"""When is settlement stuck? (orion.domain.progress, pure)"""

from __future__ import annotations

from orion.domain.progress import PartitionProgress, assess

NOW_MS = 1_000_000_000
S = 1000  # ms per second


def _p(
    partition: int, lag: int, oldest_age_s: float | None, commit_age_s: float | None
) -> PartitionProgress:
    return PartitionProgress(
        partition=partition,
        end=100 + lag,
        position=100,
        committed_at_ms=None if commit_age_s is None else NOW_MS - int(commit_age_s * S),
        oldest_unsettled_ms=None if oldest_age_s is None else NOW_MS - int(oldest_age_s * S),
    )


def test_old_unsettled_record_and_no_recent_commit_is_stuck() -> None:
    """Lag, an unsettled record older than the bound, and no commit within it: stuck."""
    report = assess([_p(3, 5, 45, 50)], NOW_MS, 30)
    assert report.stuck == (3,)
    assert report.oldest_unsettled_age_s == 45


def test_a_backlog_being_worked_off_is_not_stuck() -> None:
    """Old records but a commit a moment ago: the partition is moving, not stuck."""
    assert assess([_p(0, 50_000, 120, 0.2)], NOW_MS, 30).stuck == ()


def test_a_fresh_record_after_a_quiet_hour_is_not_stuck() -> None:
    """Last commit an hour ago because nothing came; the new record is seconds old."""
    assert assess([_p(0, 1, 2, 3600)], NOW_MS, 30).stuck == ()


def test_never_committed_partition_with_old_records_is_stuck() -> None:
    """No commit ever (a dead orchestrator from the start) and old records: stuck."""
    assert assess([_p(1, 10, 31, None)], NOW_MS, 30).stuck == (1,)


def test_no_lag_is_never_stuck_and_reports_no_age() -> None:
    """Positive control: a caught-up partition, however old its last commit."""
    report = assess([_p(0, 0, None, 9999), _p(1, 0, None, None)], NOW_MS, 30)
    assert report.stuck == () and report.oldest_unsettled_age_s is None
    assert report.summary() == "stuck partitions: none; oldest unsettled transfer: none"


def test_partitions_come_back_in_order_and_the_oldest_wins() -> None:
    """Health is listed by partition; the oldest unsettled age is the maximum over them."""
    report = assess([_p(2, 1, 5, 1), _p(0, 1, 7, 1)], NOW_MS, 30)
    assert [p.partition for p in report.partitions] == [0, 2]
    assert report.oldest_unsettled_age_s == 7

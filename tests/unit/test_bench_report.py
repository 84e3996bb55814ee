"""A run's report, Markdown summary and plots from a synthetic result (load/report.py,
load/summary.py, load/plots.py), and the exactly-one-final-row count (load/verify.py)."""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from load.generator import LoadResult
from load.plots import write_plots
from load.report import RunFacts, build_report
from load.summary import markdown
from load.verify import check_final


def _load() -> LoadResult:
    """4 requests: three accepted single transfers (0, 1, 3) and one 503, over ~2 s."""
    return LoadResult(
        t0=1_700_000_000.0,
        workers=2,
        starts_s=array("d", [0.0, 0.5, 1.0, 1.47]),
        latencies_s=array("d", [0.010, 0.020, 0.500, 0.030]),
        ok=array("b", [1, 1, 0, 1]),
        accepted_items=array("H", [1, 1, 0, 1]),
        accepted=array("q", [0, 1, 3]),
        errors=Counter({"http 503": 1}),
        error_samples={"http 503": '{"detail":"kafka | down"}'},
        cpu_s=0.0004,
    )


def _facts(**overrides: object) -> RunFacts:
    facts = RunFacts(
        scenario="seed",
        options={"clients": 2, "transfers": 4},
        target="http://127.0.0.1:8000",
        started_at="2025-01-01T00:00:00+00:00",
        load=_load(),
        attempted=4,
        settled_s=[0.2, 0.9, 3.0],  # transfer 3 settles 1.5 s after the last answer
        settle_latency_s=[0.19, 0.38, 1.4],
        outcomes={"statuses": {"completed": 3}, "duplicates": 0, "for_unaccepted": 0},
        drain={"drained": True, "why": None, "waited_s": 1.5, "timeout_s": 600.0},
        once={"ok": True, "checked": 3, "final": 3, "missing": 0, "not_final": 0, "examples": []},
        audit={"ok": True, "lines": ["audit: all invariants hold"]},
        baselines={"http": {"transfers_per_s": 6.0}, "db": {"transfers_per_s": 10.0}},
    )
    for key, value in overrides.items():
        setattr(facts, key, value)
    return facts


def test_report_rates_drain_and_ratios_follow_their_definitions() -> None:
    r = build_report(_facts())
    assert r["transfers"] | {"statuses": None} == {
        "attempted": 4, "accepted": 3, "settled": 3, "not_settled": 0, "statuses": None,
        "duplicates": 0, "for_unaccepted": 0,
    }  # fmt: skip
    assert r["throughput"]["accepted_per_s"] == 2.0  # 3 accepted by the answer at 1.5 s
    assert r["throughput"]["settled_per_s"] == 1.0  # 3 settled by 3.0 s
    assert r["drain"]["within_s"] == 1.5  # the last settlement 3.0 - the last answer 1.5
    assert r["baselines"]["http"]["ratio"] == 0.333
    assert r["baselines"]["db"]["ratio"] == 0.1
    assert r["requests"]["errors"] == {"http 503": 1}
    assert r["latency_ms"]["http"]["p50"] == 20.0
    assert r["latency_ms"]["http_ok"]["max"] == 30.0
    assert r["latency_ms"]["accept_to_settled"]["p99"] == 1400.0
    assert r["generator"]["cpu_us_per_request"] == 100.0
    assert r["ok"] is True
    json.dumps(r)  # the report is JSON as it is


def test_a_run_bracketed_by_two_bare_runs_is_also_compared_with_their_mean() -> None:
    """The box drifts within minutes: accepted/s 2.0 over 6.0 before, 2.0 after, mean 4.0."""
    http = {"http": {"transfers_per_s": 6.0}, "http_after": {"transfers_per_s": 2.0}}
    r = build_report(_facts(baselines=http | {"db": {"transfers_per_s": 10.0}}))
    ratios = {name: r["baselines"][name]["ratio"] for name in ("http", "http_after", "http_mean")}
    assert ratios == {"http": 0.333, "http_after": 1.0, "http_mean": 0.5}
    assert r["baselines"]["http_mean"]["transfers_per_s"] == 4.0
    rows = [line for line in markdown(r).splitlines() if line.startswith("| bare uvicorn")]
    assert [row.rsplit("|", 2)[1].strip() for row in rows] == ["0.333", "1.000"]
    assert "| mean of the two bare uvicorn runs (accepted/s ÷) | 4.0 | 0.500 |" in markdown(r)


def test_one_bare_run_has_no_mean() -> None:
    assert "http_mean" not in build_report(_facts())["baselines"]


def test_a_bare_run_that_answered_nothing_is_said_not_raised() -> None:
    """The second bare run comes after Orion's run: formatting it must not lose that run."""
    from load.run import _ceiling_text

    silent = {"transfers_per_s": None, "requests_per_s": None, "errors": {"connect": 200}}
    assert _ceiling_text(silent) == "n/a: no request answered (errors {'connect': 200})"
    fine = {"transfers_per_s": 3300.5, "requests_per_s": 3300.5, "errors": {}}
    assert _ceiling_text(fine) == "3,300.5 transfers/s (3,300.5 req/s)"


def test_series_have_one_point_per_second_until_the_last_settlement() -> None:
    s = build_report(_facts())["series"]
    assert s["second"] == [0, 1, 2, 3]
    assert s["accepted"] == [2, 1, 0, 0]
    assert s["settled"] == [2, 0, 0, 1]
    assert s["errors"] == [0, 1, 0, 0]
    assert s["http_p99_ms"] == [20.0, 500.0, None, None]
    assert s["settle_p50_ms"] == [190.0, None, None, 1400.0]


def test_markdown_summary_names_the_numbers_errors_ceilings_and_checks() -> None:
    md = markdown(build_report(_facts()))
    assert md.startswith("# Orion bench: seed\n")
    assert "| accepted/s | 2.0 |" in md
    assert "drained within 1.50 s of the last request" in md
    assert '| http 503 | 1 | {"detail":"kafka \\| down"} |' in md
    assert "| raw apply_batch, 1,000 per transaction (settled/s ÷) | 10.0 | 0.100 |" in md
    assert "- exactly one final row per accepted id: ok (3 checked)" in md
    assert "- audit: all invariants hold" in md
    assert "![latency](latency.png)" in md


def test_a_missing_outcome_or_a_failed_audit_fails_the_run_and_says_so() -> None:
    once = {"ok": False, "checked": 3, "final": 2, "missing": 1, "not_final": 0, "examples": []}
    audit = {"ok": False, "lines": ["ok  1 x", "FAIL 4 every acknowledged...: 1 violation(s)"]}
    drain = {"drained": False, "why": "1 without an outcome after 600 s", "waited_s": 600.0}
    r = build_report(_facts(once=once, audit=audit, drain=drain))
    md = markdown(r)
    assert r["ok"] is False and "**FAILED**" in md
    assert "**FAIL**: 1 without a row, 0 not final, of 3" in md
    assert "NOT drained: gave up after 600 s (1 without an outcome after 600 s)" in md
    assert "- audit: **FAILED**: FAIL 4 every acknowledged...: 1 violation(s)" in md


def test_settling_before_the_last_answer_is_no_backlog() -> None:
    md = markdown(build_report(_facts(settled_s=[0.2, 0.9, 1.4])))
    assert "no backlog: the last settlement came 0.10 s before the last answer" in md


def test_a_run_without_baselines_or_checks_still_reports() -> None:
    r = build_report(_facts(baselines={}, once=None, audit=None, settled_s=[], settle_latency_s=[]))
    md = markdown(r)
    assert r["throughput"]["settled_per_s"] is None
    assert "No baselines (pass --baselines)." in md and "not checked" in md and "not run" in md


def test_plots_are_png_files(tmp_path: Path) -> None:
    paths = write_plots(build_report(_facts()), tmp_path)
    assert [p.name for p in paths] == ["throughput.png", "latency.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_exactly_one_final_row_counts_missing_and_unfinished_ids() -> None:
    """Final rows pass; no row and a row still `claimed` are counted apart; lookups are
    chunked (every id is asked about exactly once)."""
    rows = {"a": "completed", "b": "rejected", "d": "claimed"}
    asked: list[str] = []

    def lookup(chunk: Sequence[str]) -> dict[str, str]:
        asked.extend(chunk)
        return {i: rows[i] for i in chunk if i in rows}

    check = check_final(["a", "b", "c", "d"], lookup)
    assert (check.ok, check.final, check.missing, check.not_final) == (False, 2, 1, 1)
    assert check.examples == ["c: no row", "d: claimed"]
    assert asked == ["a", "b", "c", "d"]
    assert check_final(["a", "b"], lookup).ok

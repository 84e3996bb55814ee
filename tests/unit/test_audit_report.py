"""The audit report: verdicts, bounded readable lines, JSON, and the violations list."""

from __future__ import annotations

import json

from orion.audit import AuditReport, CheckResult, Violation


def _report() -> AuditReport:
    return AuditReport(
        (
            CheckResult(1),
            CheckResult(2, count=3, examples=("account 1: x", "account 2: y")),
            CheckResult(4, notes=("in flight: 7",)),
        )
    )


def test_lines_mark_each_check_and_indent_examples_notes_and_the_rest() -> None:
    """`ok  N title` or `FAIL N title: K violation(s)`, then indented details, then a verdict."""
    assert _report().lines() == [
        "ok  1 balances sum to zero",
        "FAIL 2 account balances match their entries and overdraft limits: 3 violation(s)",
        "    account 1: x",
        "    account 2: y",
        "    ... and 1 more",
        "ok  4 every acknowledged transfer reached one final outcome",
        "    in flight: 7",
        "audit: 1 check(s) failed",
    ]


def test_report_is_ok_only_when_every_check_is() -> None:
    """One failed check fails the audit; its examples are the report's violations."""
    report = _report()
    assert not report.ok
    assert report.violations == (Violation(2, "account 1: x"), Violation(2, "account 2: y"))
    clean = AuditReport((CheckResult(1), CheckResult(5)))
    assert clean.ok
    assert clean.violations == ()
    assert clean.lines()[-1] == "audit: all invariants hold"


def test_json_carries_counts_examples_and_notes() -> None:
    """--json: machine-readable, with the same content as the lines."""
    body = json.loads(_report().to_json())
    assert body["ok"] is False
    assert [c["check"] for c in body["checks"]] == [1, 2, 4]
    assert body["checks"][1] == {
        "check": 2,
        "title": "account balances match their entries and overdraft limits",
        "ok": False,
        "violations": 3,
        "examples": ["account 1: x", "account 2: y"],
        "notes": [],
    }
    assert body["checks"][2]["notes"] == ["in flight: 7"]

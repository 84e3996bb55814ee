"""`orion bench` as a command (orion/cli_bench.py): registration, refusals before any I/O,
and the one-line summary."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from orion.cli_bench import register, summary_line


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for Orion's app."""

    register(app)
    return app


def test_an_unknown_scenario_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(_app(), ["bench", "soak"])
    assert result.exit_code == 1
    assert "unknown scenario 'soak': choose one of seed, contention" in result.output


def test_a_non_loopback_target_is_refused_before_anything_is_sent() -> None:
    result = CliRunner().invoke(_app(), ["bench", "seed", "--base-url", "http://10.1.2.3:8000"])
    assert result.exit_code == 1
    assert "must be on loopback" in result.output


def test_summary_line_names_rates_latency_errors_and_the_verdict() -> None:
    report = {
        "scenario": "seed",
        "ok": True,
        "throughput": {"accepted_per_s": 2950.25, "settled_per_s": None},
        "transfers": {"accepted": 100_000, "attempted": 100_000, "settled": 0},
        "latency_ms": {"http": {"p50": 61.04, "p99": 180.0}},
        "requests": {"errors": {"http 503": 2}},
    }
    assert summary_line(report) == (
        "seed: accepted 100,000 of 100,000 (2,950.2/s), settled 0 (n/a/s), "
        "http p50/p99 61.0/180.0 ms, errors 2, ok"
    )

"""`orion bench` end to end against the running system, small and bounded: the seed
scenario with its same-run ceilings (the database one, and bare uvicorn before and after the
run), the exactly-once check and the audit, and the report that says so."""

from __future__ import annotations

from pathlib import Path

from load.plan import BenchOptions
from load.run import run_bench
from load.shapes import Scenario
from orion.config import Settings

TRANSFERS = 2_000  # a few seconds of load here
CLIENTS = 20
BASELINE_S = 2.0  # each bare uvicorn run is cut after this


def test_a_seed_run_with_baselines_is_bracketed_checked_and_reported(
    system: str, settings: Settings, tmp_path: Path
) -> None:
    lines: list[str] = []
    options = BenchOptions(
        Scenario.SEED,
        count=TRANSFERS,
        clients=CLIENTS,
        baselines=True,
        baseline_s=BASELINE_S,
        out_root=tmp_path,
    )
    out, report = run_bench(options, settings, lines.append)

    transfers = report["transfers"]
    assert (transfers["accepted"], transfers["settled"]) == (TRANSFERS, TRANSFERS), transfers
    assert report["exactly_once"]["ok"] and report["audit"]["ok"], report["exactly_once"]
    assert report["ok"], lines
    ceilings = report["baselines"]
    assert ceilings.keys() == {"db", "http", "http_after", "http_mean"}
    for name in ("http", "http_after"):
        assert ceilings[name]["transfers_per_s"] > 0 and not ceilings[name]["errors"], ceilings
    before, after = ceilings["http"]["transfers_per_s"], ceilings["http_after"]["transfers_per_s"]
    assert ceilings["http_mean"]["transfers_per_s"] == round((before + after) / 2, 1)
    accepted_per_s = report["throughput"]["accepted_per_s"]
    assert ceilings["http_mean"]["ratio"] == round(accepted_per_s / ((before + after) / 2), 3)
    assert any(line.startswith("baseline: HTTP ceiling after the run") for line in lines)
    summary = (out / "summary.md").read_text()
    assert "| mean of the two bare uvicorn runs (accepted/s ÷) |" in summary
    assert (out / "bare-http.log").exists() and (out / "bare-http-after.log").exists()

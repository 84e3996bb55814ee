"""`orion bench <scenario>`: a thin command over the benchmark driver in `load/`.

The driver (aiohttp, matplotlib, worker processes) is imported only when the command runs,
so the rest of the CLI starts as fast as before. Exit 1 when the run's checks fail (an
accepted transfer without exactly one final outcome, or a broken audit), or when an option
or setting is out of range (one line on stderr).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, NoReturn

import typer

from orion.config import ConfigError, get_settings

EXIT_FAILED = 1
_CHECKOUT = Path(__file__).resolve().parent.parent  # where `load/` lives in a source tree


def register(app: typer.Typer) -> None:
    """Add `bench` to Orion's typer app."""
    app.command("bench")(bench)


def bench(
    scenario: Annotated[
        str, typer.Argument(help="seed | contention | batch | latency | generator")
    ],
    count: Annotated[
        int | None, typer.Option("--count", "-n", help="Transfers (default 100,000).")
    ] = None,
    full: Annotated[bool, typer.Option(help="1,000,000 transfers (the original test).")] = False,
    clients: Annotated[
        int | None,
        typer.Option("--clients", "-c", help="Concurrent clients (seed/contention 200, batch 4)."),
    ] = None,
    accounts: Annotated[
        int | None, typer.Option(help="Account pool size (contention 1,000, others 10,000).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Transfers per batch request.")] = 500,
    rate: Annotated[float, typer.Option(help="latency: arrivals per second.")] = 1_000.0,
    duration: Annotated[float, typer.Option(help="latency: seconds of arrivals.")] = 30.0,
    workers: Annotated[int, typer.Option(help="Load-generator processes.")] = 2,
    http_client: Annotated[
        str, typer.Option(help="wire (a minimal keep-alive client, cheapest) or aiohttp.")
    ] = "wire",
    baselines: Annotated[
        bool, typer.Option(help="Measure the database and HTTP ceilings (HTTP: before and after).")
    ] = False,
    baseline_seconds: Annotated[
        float, typer.Option(help="Time bound of each bare-HTTP ceiling run.")
    ] = 15.0,
    drain_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the backlog to settle after the load.")
    ] = 600.0,
    time_limit: Annotated[
        float, typer.Option(help="No request starts later than this many seconds.")
    ] = 1_800.0,
    audit: Annotated[bool, typer.Option(help="Run `orion audit` at the end.")] = True,
    base_url: Annotated[
        str | None, typer.Option(help="API address (loopback only; default from settings).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Reports go under this directory (default load/out).")
    ] = None,
    warmup: Annotated[
        int,
        typer.Option(
            help="First run this many transfers of the same scenario, unmeasured (steady "
            "state: right after `orion up` Kafka's JIT compiler is still busy)."
        ),
    ] = 0,
) -> None:
    """Load-test the running system (`orion up`) on 127.0.0.1 and write a JSON report, a
    Markdown summary and PNG plots under load/out/<time>-<scenario>/."""
    shapes, plan_mod, run_mod = _driver("load.shapes"), _driver("load.plan"), _driver("load.run")
    try:
        kind = shapes.Scenario(scenario)
    except ValueError:
        names = ", ".join(s.value for s in shapes.Scenario)
        _fail(f"unknown scenario {scenario!r}: choose one of {names}")
    options = plan_mod.BenchOptions(
        scenario=kind, count=count, full=full, clients=clients, accounts=accounts,
        batch_size=batch_size, rate_per_s=rate, duration_s=duration, workers=workers,
        http_client=http_client, baselines=baselines, baseline_s=baseline_seconds,
        drain_timeout_s=drain_timeout, time_limit_s=time_limit, audit=audit,
        base_url=base_url, out_root=out, warmup=warmup,
    )  # fmt: skip
    try:
        out_dir, report = run_mod.run_bench(options, get_settings(), _say)
    except (ConfigError, plan_mod.PlanError, run_mod.WarmupError) as err:
        _fail(str(err))
    typer.echo(summary_line(report))
    typer.echo(f"report: {out_dir}/summary.md")
    if not report["ok"]:
        raise typer.Exit(EXIT_FAILED)


def summary_line(report: dict[str, Any]) -> str:
    """One line: accepted and settled counts and rates, HTTP p50/p99, errors, verdict."""
    t, tp = report["throughput"], report["transfers"]
    http = report["latency_ms"]["http"]
    return (
        f"{report['scenario']}: accepted {tp['accepted']:,} of {tp['attempted']:,} "
        f"({_num(t['accepted_per_s'])}/s), settled {tp['settled']:,} "
        f"({_num(t['settled_per_s'])}/s), http p50/p99 {_num(http['p50'])}/{_num(http['p99'])} ms, "
        f"errors {sum(report['requests']['errors'].values()):,}, "
        f"{'ok' if report['ok'] else 'FAILED'}"
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _driver(name: str) -> ModuleType:
    """Import a `load` module from the tree this `orion` package sits in when it has one (a
    source checkout, where `load/` is not installed): never some other top-level `load`."""
    if (_CHECKOUT / "load" / "__init__.py").is_file() and str(_CHECKOUT) not in sys.path:
        sys.path.insert(0, str(_CHECKOUT))
    return importlib.import_module(name)


def _say(line: str) -> None:
    typer.echo(line, err=True)


def _fail(line: str) -> NoReturn:
    typer.echo(f"orion: {line}", err=True)
    raise typer.Exit(EXIT_FAILED)

"""`orion bench <scenario>`: the driver. Seeds, runs baselines and the load, follows the
results topic, checks exactly-once and the audit, and writes the report.

Order of one run (each step bounded in time):
0. with --warmup N: all of the steps below for N transfers, without baselines or audit, its
   report thrown away;
1. wait for the API's /readyz (someone may be restarting the system), seed the account pool;
2. with --baselines: the database ceiling, then the HTTP ceiling (see baselines.py);
3. position the results-topic watcher at the current end offsets, run the load generator
   (progress on stderr), then wait until the orchestrators committed past every record of
   the transfers topic (offsets only: every outcome is published by then, one per record
   or packed): the CPU window ends here;
4. read the run's outcomes from the results topic (waiting for any still missing); with
   --baselines, the HTTP ceiling once more, so the run is bracketed by two (the box's speed
   drifts within minutes here: Orion's rate is compared with their mean as well); then
   exactly one final row per accepted id (PostgreSQL), then `orion audit`;
5. report.json, summary.md, throughput.png and latency.png in load/out/<time>-<scenario>/.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load import baselines, cpu, verify
from load.generator import LoadResult, jobs_for, run_load
from load.outcomes import OutcomeWatcher
from load.plan import OPEN_LOOP_GRACE_S, BenchOptions, Plan, make_plan, warmup_options
from load.plots import write_plots
from load.progress import Progress
from load.report import RunFacts, build_report
from load.shapes import Scenario, new_id_prefix, transfer_id
from load.summary import markdown
from orion.adapters import ledger_seed
from orion.config import Settings
from orion.messages import ORCHESTRATOR_GROUP
from orion.seeding import plan_seed

OUT_ROOT = Path(__file__).resolve().parent / "out"
API_READY_S = 180.0  # the system may be restarting; wait this long for /readyz
POOL_BALANCE_MAJOR = "1000000000"  # each pool account: no transfer of 1 is ever refused
GENERATOR_S_MAX = 20.0  # the generator's own ceiling is clear well within this
WARMUP_DIR_PREFIX = "orion-bench-warmup-"  # the warm-up's reports, deleted after it
BARE_APP = "load.bare_app:app"  # the HTTP ceiling's server (baselines.py)
Say = Callable[[str], None]


class WarmupError(RuntimeError):
    """The unmeasured run before the measured one did not end ok."""


def run_bench(o: BenchOptions, settings: Settings, say: Say) -> tuple[Path, dict[str, Any]]:
    """Run one scenario end to end; returns the output directory and the report."""
    plan = make_plan(o, f"http://{settings.host}:{settings.api_port}", settings.seed_currency)
    if o.warmup:
        _warm_up(o, settings, say)
    out = _out_dir(o.out_root or OUT_ROOT, o.scenario)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if o.scenario is Scenario.GENERATOR:
        facts = _generator_ceiling(plan, out, started, say)
    else:
        facts = _orion_run(plan, settings, out, started, say)
    report = build_report(facts)
    _write(report, out)
    return out, report


def _warm_up(o: BenchOptions, settings: Settings, say: Say) -> None:
    """Run the scenario with `o.warmup` transfers first and throw its report away, so the
    measured run sees the system in steady state: right after `orion up` the broker's JIT
    compiler alone takes a sixth of a core for minutes (load/RESULTS.md, 2026-12-03 night).
    A warm-up that fails stops the bench: nothing after it would mean anything."""
    say(f"warm-up: {o.warmup:,} transfers of {o.scenario.value}, not measured")
    with tempfile.TemporaryDirectory(prefix=WARMUP_DIR_PREFIX) as tmp:
        _, report = run_bench(warmup_options(o, Path(tmp)), settings, say)
    if not report["ok"]:
        t, errors = report["transfers"], sum(report["requests"]["errors"].values())
        raise WarmupError(
            f"the warm-up run failed (accepted {t['accepted']:,} of {t['attempted']:,}, "
            f"settled {t['settled']:,}, errors {errors:,}); nothing measured"
        )
    say(f"warm-up done: {report['throughput']['accepted_per_s']:,.0f} accepted/s")


def _orion_run(plan: Plan, settings: Settings, out: Path, started: str, say: Say) -> RunFacts:
    say(f"waiting for {plan.base_url}/readyz (up to {API_READY_S:.0f} s)")
    baselines.wait_healthy(plan.base_url, API_READY_S, path="/readyz")
    _seed_pool(plan, settings, say)
    ceilings = _baselines(plan, settings, out, say) if plan.options.baselines else {}
    watcher = OutcomeWatcher(
        settings.kafka_bootstrap, settings.topic_results, plan.shape.id_prefix, plan.shape.count
    )
    watcher.start()
    stack = cpu.roots(settings)
    before, driver_cpu = cpu.sample(stack), time.process_time()
    try:
        load = _drive(plan, plan.base_url, "orion", watcher.published)
        began = time.monotonic()
        settled = _await_settled(plan, settings, watcher, say)
        after, driver_cpu_s = cpu.sample(stack), time.process_time() - driver_cpu
        drain = _drain(plan, load, watcher, settled, began, say)
    finally:
        watcher.stop()
    if ceilings:
        ceilings["http_after"] = _http_ceiling(
            plan, BARE_APP, out / "bare-http-after.log", "bare-after"
        )
        say(f"baseline: HTTP ceiling after the run {_ceiling_text(ceilings['http_after'])}")
    facts = _facts(plan, started, load, watcher, drain)
    facts.baselines, facts.driver_cpu_s = ceilings, round(driver_cpu_s, 3)
    generator_cpu_s = load.cpu_s + driver_cpu_s
    facts.cpu = cpu.between(before, after, len(load.accepted), generator_cpu_s)
    ids = [transfer_id(plan.shape.id_prefix, i) for i in load.accepted]
    say(f"checking exactly one final row for {len(ids):,} accepted ids")
    facts.once = verify.exactly_once(settings.postgres_dsn, ids).to_dict()
    if plan.options.audit:
        say("running the audit (orion audit)")
        facts.audit = verify.audit(settings)
    return facts


def _seed_pool(plan: Plan, settings: Settings, say: Say) -> None:
    s = plan.shape
    seeding = plan_seed(s.first_account, s.accounts, POOL_BALANCE_MAJOR, s.currency)
    result = ledger_seed.seed(settings.postgres_dsn, seeding)
    say(
        f"account pool {seeding.first}..{seeding.last} {s.currency}: created {result.created}, "
        f"existing {result.existing} ({result.seconds:.1f} s)"
    )


def _baselines(plan: Plan, settings: Settings, out: Path, say: Say) -> dict[str, Any]:
    db_shape = baselines.db_shape(plan.shape)
    say(f"baseline: raw apply_batch of {db_shape.count:,} transfers (fresh CHF accounts)")
    db = baselines.db_ceiling(settings, db_shape)
    say(f"baseline: database ceiling {db['transfers_per_s']:,} transfers/s")
    http = _http_ceiling(plan, BARE_APP, out / "bare-http.log", "bare")
    say(f"baseline: HTTP ceiling {_ceiling_text(http)}")
    return {"db": db, "http": http}


def _ceiling_text(http: dict[str, Any]) -> str:
    """A bare run that answered nothing has no rate: say so, and keep the Orion run's report."""
    if http["transfers_per_s"] is None:
        return f"n/a: no request answered (errors {http['errors']})"
    return f"{http['transfers_per_s']:,} transfers/s ({http['requests_per_s']:,} req/s)"


def _http_ceiling(plan: Plan, app_spec: str, log: Path, label: str) -> dict[str, Any]:
    """The scenario's shape and clients, closed loop, against bare uvicorn, time-bounded."""
    shape = replace(plan.shape, id_prefix=new_id_prefix())
    bounded = replace(plan, shape=shape, open_loop=False)
    with baselines.bare_server(app_spec, log) as base:
        load = _drive(bounded, base, label, None, plan.options.baseline_s)
    end = load.last_end_s
    return {
        "requests": load.requests,
        "transfers": len(load.accepted),
        "seconds": round(end, 3),
        "requests_per_s": round(load.requests / end, 1) if end else None,
        "transfers_per_s": round(len(load.accepted) / end, 1) if end else None,
        "errors": dict(load.errors),
        "cpu_us_per_request": round(load.cpu_s / load.requests * 1e6, 1) if load.requests else None,
    }


def _drive(
    plan: Plan,
    base: str,
    label: str,
    outcomes: Callable[[], int] | None,
    time_limit_s: float | None = None,
) -> LoadResult:
    o = plan.options
    limit = time_limit_s or o.time_limit_s
    if plan.open_loop:
        limit = min(limit, o.duration_s + OPEN_LOOP_GRACE_S)
    jobs = jobs_for(
        plan.shape,
        base,
        plan.clients,
        o.workers,
        limit,
        o.request_timeout_s,
        o.rate_per_s if plan.open_loop else None,
        o.duration_s,
        o.http_client,
    )
    bar = Progress(f"{label} {plan.shape.endpoint.value}", plan.shape.requests)
    started = time.monotonic()

    def tick(done: int, accepted: int, failed: int) -> None:
        rate = accepted / max(1e-9, time.monotonic() - started)
        extra = f" results records {outcomes():,}" if outcomes is not None else ""
        bar.update(done, f"accepted {accepted:,} ({rate:,.0f}/s){extra} errors {failed:,}")

    load = run_load(jobs, tick)
    bar.finish(
        load.requests, f"accepted {len(load.accepted):,}, errors {sum(load.errors.values()):,}"
    )
    return load


def _await_settled(plan: Plan, settings: Settings, watcher: OutcomeWatcher, say: Say) -> str | None:
    """Wait until the orchestrators committed past every record the load made (counted from
    offsets, nothing read): None, else why not."""
    o = plan.options
    bar = Progress("settling (records)", 1)

    def tick(left: int) -> None:
        bar.total = max(bar.total, left)
        bar.update(bar.total - left)

    why = watcher.wait_settled(
        settings.topic_transfers, ORCHESTRATOR_GROUP, o.drain_timeout_s, o.drain_idle_s, tick
    )
    bar.finish(bar.total if why is None else 0)
    if why:
        say(f"transfers topic behind: {why}; reading what is there")
    return why


def _drain(
    plan: Plan,
    load: LoadResult,
    watcher: OutcomeWatcher,
    settled: str | None,
    began: float,
    say: Say,
) -> dict[str, Any]:
    """Read the run's outcomes, waiting for the ones still missing within what is left of the
    drain timeout (settling was judged by records, not by this run's outcomes), and at least
    the idle window, so what was published is read even when the settling wait gave up."""
    accepted = list(load.accepted)
    o = plan.options
    watcher.read()
    bar = Progress("reading outcomes", len(accepted))
    left_s = max(o.drain_idle_s, o.drain_timeout_s - (time.monotonic() - began))
    why = watcher.wait_drained(
        accepted, left_s, o.drain_idle_s, lambda left: bar.update(len(accepted) - left)
    )
    bar.finish(len(accepted) - len(watcher.missing(accepted)))
    if why:
        say(f"backlog NOT drained: {why}")
    return {
        "drained": why is None,
        "why": why,
        "settled_why": settled,
        "waited_s": round(time.monotonic() - began, 1),
        "timeout_s": o.drain_timeout_s,
    }


def _facts(
    plan: Plan, started: str, load: LoadResult, watcher: OutcomeWatcher, drain: dict[str, Any]
) -> RunFacts:
    t0_ms = load.t0 * 1000.0
    settled_s: list[float] = []
    settle_lat: list[float] = []
    scheduled: list[float] | None = [] if plan.open_loop else None
    for i in load.accepted:
        at = watcher.settled_at_ms[i]
        if not at:
            continue
        settled_s.append((at - t0_ms) / 1000.0)
        settle_lat.append((at - watcher.accepted_at_ms[i]) / 1000.0)
        if scheduled is not None:
            scheduled.append((at - t0_ms) / 1000.0 - i / plan.options.rate_per_s)
    outcomes = {
        "statuses": dict(watcher.statuses),
        "duplicates": watcher.duplicates,
        "for_unaccepted": watcher.seen - len(settled_s),
        "undecodable": watcher.undecodable,
        "results_broker_errors": watcher.broker_errors,
        "results_start_offsets": watcher.start_offsets,
    }
    return RunFacts(
        scenario=plan.options.scenario.value,
        options=plan.describe(),
        target=plan.base_url,
        started_at=started,
        load=load,
        attempted=plan.shape.count,
        settled_s=settled_s,
        settle_latency_s=settle_lat,
        outcomes=outcomes,
        scheduled_to_settled_s=scheduled,
        drain=drain,
    )


def _generator_ceiling(plan: Plan, out: Path, started: str, say: Say) -> RunFacts:
    """The seed shape against a trivial echo on bare uvicorn: what this generator can push."""
    say("generator ceiling: the seed shape against a bare Starlette echo on uvicorn")
    with baselines.bare_server("load.bare_app:echo", out / "echo.log") as base:
        load = _drive(plan, base, "echo", None, min(plan.options.time_limit_s, GENERATOR_S_MAX))
    return RunFacts(
        scenario=plan.options.scenario.value,
        options=plan.describe(),
        target=f"{base} (echo)",
        started_at=started,
        load=load,
        attempted=plan.shape.count,
        settled_s=[],
        settle_latency_s=[],
    )


def _out_dir(root: Path, scenario: Scenario) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = root / f"{stamp}-{scenario.value}"
    out.mkdir(parents=True, exist_ok=False)
    return out


def _write(report: dict[str, Any], out: Path) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "summary.md").write_text(markdown(report))
    write_plots(report, out)

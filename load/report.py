"""A run's report: the numbers (JSON-ready dict) and their Markdown summary (pure, no I/O).

Definitions, so two reports compare:
- times are seconds since the run's start t0 (all workers released together);
- accepted/s = accepted transfers / time from t0 to the end of the last accepting answer;
- settled/s = settled accepted transfers / time from t0 to the last of their settlements
  (settled_at of the outcome record, stamped by the shard's database transaction);
- drained within X s = last settlement - end of the last answer (negative: settled before
  the last answer came back);
- HTTP latency: answer end - request start (open loop: - its scheduled time);
- accept -> settled: settled_at_ms - accepted_at_ms of each outcome record.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from load.generator import LoadResult
from load.stats import per_second_counts, per_second_percentiles, rate, summary_ms

SERIES_PERCENTILES = (50.0, 99.0)
SERIES_SECONDS_MAX = 7_200  # a plot's x axis; longer runs are cut (never happens by default)


@dataclass(slots=True)
class RunFacts:
    """Everything measured in one run, as plain values."""

    scenario: str
    options: dict[str, Any]
    target: str
    started_at: str  # ISO 8601, UTC
    load: LoadResult
    attempted: int  # transfers the run meant to send
    settled_s: list[float]  # per settled accepted transfer: settled_at, seconds since t0
    settle_latency_s: list[float]  # the same transfers: settled_at - accepted_at
    outcomes: dict[str, Any] = field(default_factory=dict)
    scheduled_to_settled_s: list[float] | None = None  # open loop only
    drain: dict[str, Any] = field(default_factory=dict)
    once: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    baselines: dict[str, Any] = field(default_factory=dict)


def build_report(f: RunFacts) -> dict[str, Any]:
    load = f.load
    accepted = len(load.accepted)
    ends = [s + lat for s, lat in zip(load.starts_s, load.latencies_s, strict=True)]
    accept_end = max((e for e, n in zip(ends, load.accepted_items, strict=True) if n), default=0)
    last_settled = max(f.settled_s, default=0.0)
    throughput = {
        "accepted_per_s": rate(accepted, accept_end),
        "settled_per_s": rate(len(f.settled_s), last_settled),
        "requests_per_s": rate(load.requests, max(ends, default=0.0)),
        "send_s": round(max(ends, default=0.0), 3),
    }
    report: dict[str, Any] = {
        "scenario": f.scenario,
        "started_at": f.started_at,
        "target": f.target,
        "options": f.options,
        "generator": _generator(load),
        "requests": _requests(load),
        "transfers": {"attempted": f.attempted, "accepted": accepted}
        | {"settled": len(f.settled_s), "not_settled": accepted - len(f.settled_s)}
        | f.outcomes,
        "throughput": throughput,
        "latency_ms": _latency(f),
        "drain": f.drain | {"within_s": round(last_settled - max(ends, default=0.0), 3)},
        "exactly_once": f.once,
        "audit": f.audit,
        "baselines": _ratios(f.baselines, throughput),
        "series": _series(f, ends),
    }
    report["ok"] = bool((f.once or {}).get("ok", True) and (f.audit or {}).get("ok", True))
    return report


def _generator(load: LoadResult) -> dict[str, Any]:
    per_request = load.cpu_s / load.requests * 1e6 if load.requests else None
    return {
        "workers": load.workers,
        "cpu_s": round(load.cpu_s, 3),
        "cpu_us_per_request": None if per_request is None else round(per_request, 1),
    }


def _requests(load: LoadResult) -> dict[str, Any]:
    return {
        "sent": load.requests,
        "ok": sum(load.ok),
        "errors": dict(load.errors.most_common()),
        "item_errors": dict(load.item_errors.most_common()),
        "error_samples": load.error_samples,
    }


def _latency(f: RunFacts) -> dict[str, Any]:
    out = {
        "http": summary_ms(f.load.latencies_s),
        "http_ok": summary_ms(
            lat for lat, ok in zip(f.load.latencies_s, f.load.ok, strict=True) if ok
        ),
        "accept_to_settled": summary_ms(f.settle_latency_s),
    }
    if f.scheduled_to_settled_s is not None:
        out["scheduled_to_settled"] = summary_ms(f.scheduled_to_settled_s)
    return out


def _ratios(baselines: dict[str, Any], throughput: dict[str, Any]) -> dict[str, Any]:
    """Orion's rate over each ceiling's: accepted/s over bare HTTP, settled/s over raw SQL."""
    out = {name: dict(values) for name, values in baselines.items()}
    pairs = (("http", "accepted_per_s"), ("db", "settled_per_s"))
    for name, ours in pairs:
        ceiling = out.get(name, {}).get("transfers_per_s")
        mine = throughput.get(ours)
        if ceiling and mine is not None:
            out[name]["ratio"] = round(mine / ceiling, 3)
    return out


def _series(f: RunFacts, ends: list[float]) -> dict[str, Any]:
    horizon = max([*ends, *f.settled_s, 0.0])
    seconds = min(SERIES_SECONDS_MAX, math.floor(horizon) + 1)
    http = per_second_percentiles(f.load.starts_s, f.load.latencies_s, SERIES_PERCENTILES, seconds)
    settle = per_second_percentiles(f.settled_s, f.settle_latency_s, SERIES_PERCENTILES, seconds)
    return {
        "second": list(range(seconds)),
        "accepted": per_second_counts(ends, f.load.accepted_items, seconds),
        "settled": per_second_counts(f.settled_s, None, seconds),
        "errors": per_second_counts(
            (e for e, ok in zip(ends, f.load.ok, strict=True) if not ok), None, seconds
        ),
        "http_p50_ms": http[50.0],
        "http_p99_ms": http[99.0],
        "settle_p50_ms": settle[50.0],
        "settle_p99_ms": settle[99.0],
    }


def markdown(r: dict[str, Any]) -> str:
    """The report as a short Markdown page (tables, checks, and the two plots)."""
    lines = [
        f"# Orion bench: {r['scenario']}",
        "",
        _intro(r),
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in _headline(r)]
    lines += _errors(r["requests"]) + _outcomes(r["transfers"]) + _baselines(r["baselines"])
    lines += ["", "## Checks", "", _once_line(r["exactly_once"]), _audit_line(r["audit"])]
    lines += ["", "## Plots", "", "![throughput](throughput.png)", "", "![latency](latency.png)"]
    return "\n".join(lines) + "\n"


def _intro(r: dict[str, Any]) -> str:
    opts = r["options"]
    shape = ", ".join(f"{k}={v}" for k, v in opts.items() if v is not None)
    return (
        f"{r['started_at']} against {r['target']}; {shape}; "
        f"{r['generator']['workers']} generator process(es). Verdict: "
        + ("**ok**" if r["ok"] else "**FAILED**")
    )


def _headline(r: dict[str, Any]) -> list[tuple[str, str]]:
    t, tp, lat = r["transfers"], r["throughput"], r["latency_ms"]
    rows = [
        ("requests sent (ok)", f"{_n(r['requests']['sent'])} ({_n(r['requests']['ok'])})"),
        (
            "transfers attempted / accepted / settled",
            f"{_n(t['attempted'])} / {_n(t['accepted'])} / {_n(t['settled'])}",
        ),
        ("accepted/s", _n(tp["accepted_per_s"])),
        ("settled/s", _n(tp["settled_per_s"])),
        ("backlog", _drain_text(r["drain"])),
        ("HTTP latency p50 / p95 / p99 (ms)", _pcts(lat["http"])),
        ("accept → settled p50 / p95 / p99 (ms)", _pcts(lat["accept_to_settled"])),
        ("generator CPU per request", f"{_n(r['generator']['cpu_us_per_request'])} µs"),
    ]
    if "scheduled_to_settled" in lat:
        rows.insert(
            7, ("scheduled → settled p50 / p95 / p99 (ms)", _pcts(lat["scheduled_to_settled"]))
        )
    return rows


def _drain_text(d: dict[str, Any]) -> str:
    if d.get("drained", True):
        return f"drained within {d['within_s']:.2f} s of the last request"
    return f"NOT drained: gave up after {d.get('waited_s', 0):.0f} s ({d.get('why', '')})"


def _errors(req: dict[str, Any]) -> list[str]:
    errs = Counter(req["errors"]) + Counter(req["item_errors"])
    if not errs:
        return ["", "No errors."]
    out = ["", "## Errors", "", "| kind | count | sample answer |", "|---|---|---|"]
    for kind, count in errs.most_common():
        sample = req["error_samples"].get(kind, "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| {kind} | {_n(count)} | {sample[:120]} |")
    return out


def _outcomes(t: dict[str, Any]) -> list[str]:
    statuses = t.get("statuses") or {}
    out = ["", "## Outcomes (results topic)", "", "| status | count |", "|---|---|"]
    out += [f"| {k} | {_n(v)} |" for k, v in sorted(statuses.items())]
    extra = ("duplicates", "for_unaccepted", "undecodable")
    out += [f"| ({k}) | {_n(t[k])} |" for k in extra if t.get(k)]
    return out


def _baselines(b: dict[str, Any]) -> list[str]:
    if not b:
        return ["", "No baselines (pass --baselines)."]
    out = [
        "",
        "## Same-run ceilings",
        "",
        "| ceiling | transfers/s | Orion ÷ ceiling |",
        "|---|---|---|",
    ]
    names = {
        "http": "bare uvicorn, same validation (accepted/s ÷)",
        "db": "raw apply_batch, 1,000 per transaction (settled/s ÷)",
    }
    for key, values in b.items():
        ratio = values.get("ratio")
        shown = "n/a" if ratio is None else f"{ratio:.3f}"
        out.append(f"| {names.get(key, key)} | {_n(values.get('transfers_per_s'))} | {shown} |")
    return out


def _once_line(once: dict[str, Any] | None) -> str:
    if once is None:
        return "- exactly one final row per accepted id: not checked"
    if once["ok"]:
        return f"- exactly one final row per accepted id: ok ({_n(once['checked'])} checked)"
    return (
        f"- exactly one final row per accepted id: **FAIL**: {_n(once['missing'])} without a "
        f"row, {_n(once['not_final'])} not final, of {_n(once['checked'])}"
    )


def _audit_line(audit: dict[str, Any] | None) -> str:
    if audit is None:
        return "- audit: not run"
    return "- audit: " + (
        "all invariants hold"
        if audit["ok"]
        else "**FAILED**: "
        + "; ".join(line.strip() for line in audit["lines"] if line.startswith("FAIL"))
    )


def _pcts(s: dict[str, Any]) -> str:
    return " / ".join(_n(s.get(k)) for k in ("p50", "p95", "p99"))


def _n(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)

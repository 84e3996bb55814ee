"""A report's Markdown summary: headline table, errors, outcomes, ceilings, checks, plots.

Pure: renders the dict that report.build_report made (or one read back from report.json).
"""

from __future__ import annotations

from collections import Counter
from typing import Any


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
    settles = r["scenario"] != "generator"  # the echo server settles nothing
    lines += [f"| {k} | {v} |" for k, v in _headline(r) if settles or k not in _SETTLE_ROWS]
    lines += _errors(r["requests"]) + (_outcomes(r["transfers"]) if settles else [])
    lines += _baselines(r["baselines"]) + _cpu(r.get("cpu"))
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
        ("backlog (settled)", _drain_text(r["drain"])),
        ("HTTP latency p50 / p95 / p99 (ms)", _pcts(lat["http"])),
        ("accept → settled p50 / p95 / p99 (ms)", _pcts(lat["accept_to_settled"])),
        ("generator CPU per request", _cpu_text(r["generator"])),
    ]
    if "scheduled_to_settled" in lat:
        rows.insert(
            7, ("scheduled → settled p50 / p95 / p99 (ms)", _pcts(lat["scheduled_to_settled"]))
        )
    return rows


_SETTLE_ROWS = frozenset(
    {"settled/s", "backlog (settled)", "accept → settled p50 / p95 / p99 (ms)"}
)


def _cpu_text(g: dict[str, Any]) -> str:
    return (
        f"{_n(g['cpu_us_per_request'])} µs ({_n(g['requests_per_cpu_s'])} requests per "
        f"CPU-second, {g['workers']} process(es))"
    )


def _drain_text(d: dict[str, Any]) -> str:
    within = d.get("within_s")
    if within is None:
        return "n/a"
    if not d.get("drained", True):
        return f"NOT drained: gave up after {d.get('waited_s', 0):.0f} s ({d.get('why', '')})"
    if within <= 0:
        return f"no backlog: the last settlement came {-within:.2f} s before the last answer"
    return f"drained within {within:.2f} s of the last request"


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
        "http": "bare uvicorn, same validation, before the run (accepted/s ÷)",
        "http_after": "bare uvicorn, the same again after the run (accepted/s ÷)",
        "http_mean": "mean of the two bare uvicorn runs (accepted/s ÷)",
        "db": "raw apply_batch, 1,000 per transaction (settled/s ÷)",
    }
    order = [*names, *sorted(set(b) - set(names))]
    for key in (k for k in order if k in b):
        values = b[key]
        ratio = values.get("ratio")
        shown = "n/a" if ratio is None else f"{ratio:.3f}"
        out.append(f"| {names.get(key, key)} | {_n(values.get('transfers_per_s'))} | {shown} |")
    return out


def _cpu(c: dict[str, Any] | None) -> list[str]:
    if not c:
        return []
    out = [
        "",
        "## Where the CPU went (load and drain)",
        "",
        f"{_n(c['window_s'])} s on {c['cores']} cores, box busy {_n(c['box_busy_percent'])} %; "
        f"the parts below account for {_n(c['accounted_percent_of_busy'])} % of the busy time.",
        "",
        "| part | CPU s | ms per transfer |",
        "|---|---|---|",
    ]
    out += [f"| {p['part']} | {_n(p['cpu_s'])} | {_ms(p['ms_per_transfer'])} |" for p in c["parts"]]
    out += [
        f"| **total** | {_n(c['total_cpu_s'])} | {_ms(c['ms_per_transfer'])} |",
        "",
        f"At this cost the box's {c['cores']} cores could settle at most "
        f"{_n(c['implied_ceiling_per_s'])} transfers/s doing nothing else.",
    ]
    return out


def _ms(value: float | None) -> str:
    """CPU per transfer is a fraction of a millisecond: three decimals tell the parts apart."""
    return "n/a" if value is None else f"{value:,.3f}"


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

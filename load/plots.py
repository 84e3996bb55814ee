"""PNG plots of a report's per-second series (matplotlib, Agg canvas: no display, no pyplot
global state, safe in any process)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

FIGURE_SIZE_IN = (10.0, 4.5)
DPI = 110


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """throughput.png (accepted/s, settled/s, errors/s) and latency.png (p50/p99 per second)."""
    s = report["series"]
    title = f"Orion bench: {report['scenario']} ({report['started_at']})"
    paths = [out_dir / "throughput.png", out_dir / "latency.png"]
    _plot(
        paths[0],
        f"{title}: throughput",
        "transfers per second",
        s["second"],
        {"accepted/s": s["accepted"], "settled/s": s["settled"], "errors/s": s["errors"]},
        log=False,
    )
    _plot(
        paths[1],
        f"{title}: latency",
        "milliseconds (log)",
        s["second"],
        {
            "HTTP p50": s["http_p50_ms"],
            "HTTP p99": s["http_p99_ms"],
            "accept→settled p50": s["settle_p50_ms"],
            "accept→settled p99": s["settle_p99_ms"],
        },
        log=True,
    )
    return paths


PLAIN = FuncFormatter(lambda value, _: f"{value:g}")  # 400, not 4x10^2
MINOR_LABELS_DECADES_MAX = 2.0  # over a wider span, labels on 2,3,4... would overlap


def _log_axis(ax: Any) -> None:
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.yaxis.set_major_formatter(PLAIN)
    narrow = low > 0 and high / low < 10**MINOR_LABELS_DECADES_MAX
    ax.yaxis.set_minor_formatter(PLAIN if narrow else NullFormatter())


def _plot(
    path: Path,
    title: str,
    ylabel: str,
    x: Sequence[int],
    lines: dict[str, Sequence[float | int | None]],
    log: bool,
) -> None:
    fig = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = False
    for label, ys in lines.items():
        points = [(xi, y) for xi, y in zip(x, ys, strict=True) if y is not None]
        if not points or (log and all(y <= 0 for _, y in points)):
            continue
        xs, vs = zip(*points, strict=True)
        ax.plot(xs, vs, label=label, linewidth=1.2, marker="." if len(xs) < 30 else None)
        drawn = True
    if log and drawn:
        _log_axis(ax)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)

"""What every scenario of ``python -m bench`` (``make bench``) shares: a row of the table,
the run's context (quick or full, where results go, the limits measured so far), and how
a row is written out (a line of the markdown table, a JSON file, a plot beside it).

A scenario is ``async def run(ctx: Context) -> list[Row]``, registered in
``bench/__main__.py``. The ``limit`` scenario runs first and records in ``ctx.limits``
what the machine allows per channel, so each later row is a ratio to a limit measured in
the same run, never a bare rate.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_POSTGRES


@dataclass
class Row:
    """One line of the table: a scenario's case, its rate, latencies and memory, and its
    ratio to the limit (or peer) measured in the same run."""

    scenario: str  # limit, dispatcher, apprise, queue-library, intake, backlog, idle
    case: str  # e.g. "email · SQLite · 1 worker · wall"
    unit: str  # deliveries/s, appeals/s, jobs/s, messages/s
    rate: float | None = None
    # Latency in ms, from enqueue (or submit) to delivered (or answered).
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_mb: float | None = None
    wall_s: float | None = None
    # What this row is measured against (a rate of the same run) and the target.
    against: str = ""  # e.g. "limit email" or "apprise"
    against_rate: float | None = None
    target: str = ""  # e.g. "≥ 0.8"
    target_ratio: float | None = None  # the ratio the row must reach (None: no target)
    # Targets that are not a ratio (e.g. "p50 ≤ 50 ms"): the scenario sets met itself.
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # (seconds since the case started, cumulative deliveries): the plot's line.
    series: list[tuple[float, int]] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.rate is None or not self.against_rate:
            return None
        return self.rate / self.against_rate

    def verdict(self) -> bool | None:
        if self.met is not None:
            return self.met
        ratio = self.ratio
        if self.target_ratio is None or ratio is None:
            return None
        return ratio >= self.target_ratio


@dataclass
class Context:
    """What a scenario is given: how long to run, where to write, the databases, and the
    limits measured so far (``limits["email"]`` and so on, in the unit of the rows)."""

    quick: bool
    out: Path
    postgres_url: str = DEFAULT_POSTGRES
    postgres: bool = True  # False when no PostgreSQL server answers: its cases are skipped
    limits: dict[str, float] = field(default_factory=dict)
    peers: dict[str, float] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


Scenario = Callable[[Context], Awaitable[list[Row]]]

HEADER = (
    "| scenario | case | rate | p50 / p95 / p99 ms | peak RSS MB | wall s "
    "| against | ratio | target | met |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|"


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown_row(row: Row) -> str:
    latency = " / ".join(_num(v, 1) for v in (row.p50_ms, row.p95_ms, row.p99_ms))
    verdict = {True: "yes", False: "**no**", None: "–"}[row.verdict()]
    ratio = row.ratio
    against = f"{row.against} {_num(row.against_rate)}" if row.against else "–"
    return (
        f"| {row.scenario} | {row.case} | {_num(row.rate)} {row.unit} | {latency} "
        f"| {_num(row.peak_rss_mb)} | {_num(row.wall_s, 1)} | {against} "
        f"| {'–' if ratio is None else f'{ratio:.2f}'} | {row.target or '–'} | {verdict} |"
    )


def machine() -> dict[str, Any]:
    """What the run ran on, for the README beside its table."""
    import os

    with open("/proc/cpuinfo", encoding="utf-8") as f:
        models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return {
        "cpus": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average": os.getloadavg(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_scenario(out: Path, name: str, rows: Sequence[Row]) -> None:
    """``out/<name>.json`` (every row, with its series) and ``out/<name>.png`` (deliveries
    over time, a line per case)."""
    out.mkdir(parents=True, exist_ok=True)
    document = [asdict(r) | {"ratio": r.ratio, "met": r.verdict()} for r in rows]
    (out / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    plot(out / f"{name}.png", name, rows)


def plot(path: Path, title: str, rows: Sequence[Row]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5), dpi=100)
    drawn = 0
    for row in rows:
        if len(row.series) < 2:
            continue
        seconds, counts = zip(*row.series, strict=True)
        axes.plot(seconds, counts, label=row.case)
        drawn += 1
    if not drawn:  # nothing over time (e.g. a latency scenario): the rates as bars
        cases = [r.case for r in rows if r.rate is not None]
        axes.barh(cases, [r.rate or 0 for r in rows if r.rate is not None])
        axes.set_xlabel(rows[0].unit if rows else "")
    else:
        axes.set_xlabel("seconds since the case started")
        axes.set_ylabel(f"done ({rows[0].unit.split('/')[0]})")
        axes.legend(fontsize="small")
    axes.set_title(f"bench: {title}")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def peak_rss_mb(pid: int) -> float | None:
    """A running process's peak resident set (VmHWM), in MB; None once it has gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def percentiles(values_ms: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and p99 of ``values_ms`` (nearest rank); Nones when there are none."""
    if not values_ms:
        return None, None, None
    ordered = sorted(values_ms)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return rank(0.50), rank(0.95), rank(0.99)

"""Tables of benchmark figures: plain text for the terminal, Markdown for docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dataset import Size
from timing import Measurement

BEGIN = "<!-- benchmark:begin (written by benchmarks/run.py; edit outside these markers) -->"
END = "<!-- benchmark:end -->"

GENERATED = "generated SQL"
PROPOSED = "generated SQL, proposed duplicate ranking"
BASELINE = "hand-written baseline"
FLOOR = "floor: bare join"
FLOOR_DEDUPE = "floor + response-id dedupe"
CUBE = "Cube SQL (via the facts view)"
CUBE_PROPOSED = "Cube SQL, facts view with proposed ranking"
REFERENCE = "pandas reference"
ORDER = (GENERATED, PROPOSED, BASELINE, FLOOR, FLOOR_DEDUPE, CUBE, CUBE_PROPOSED, REFERENCE)


@dataclass
class SizeResult:
    """Everything measured at one dataset size."""

    size: Size
    data_seconds: float
    facts: dict[str, int]
    measurements: dict[tuple[str, str], Measurement] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)


@dataclass
class Target:
    """One target of the issue and whether the figures meet it."""

    name: str
    goal: str
    figure: str
    met: bool
    measured: bool = True
    met_cpu: bool | None = None


def seconds(value: float) -> str:
    """Format a duration."""
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def memory(value: int | None) -> str:
    """Format bytes as MiB or GiB."""
    if value is None:
        return "-"
    if value >= 1024**3:
        return f"{value / 1024**3:.2f} GiB"
    return f"{value / 1024**2:.0f} MiB"


def ratio(value: float | None) -> str:
    """Format a ratio."""
    return "-" if value is None else f"{value:.2f}x"


def _ratio(result: SizeResult, view: str, what: str, base: str, cpu: bool) -> float | None:
    one = result.measurements.get((view, what))
    other = result.measurements.get((view, base))
    if one is None or other is None:
        return None
    return (one.cpu / other.cpu) if cpu else (one.wall / other.wall)


HEADERS = (
    "grouping",
    "measurement",
    "median s",
    "min-max s",
    "CPU s",
    "x baseline",
    "x baseline CPU",
    "x floor",
    "x floor CPU",
    "peak memory",
)


def size_rows(result: SizeResult, views: Sequence[str]) -> list[list[str]]:
    """One row per measurement of one size, in a fixed order."""
    rows = []
    for view in views:
        for what in ORDER:
            m = result.measurements.get((view, what))
            if m is None:
                continue
            low, high = m.spread
            rows.append(
                [
                    view,
                    what,
                    seconds(m.wall),
                    f"{seconds(low)}-{seconds(high)}",
                    seconds(m.cpu),
                    ratio(_ratio(result, view, what, BASELINE, cpu=False)),
                    ratio(_ratio(result, view, what, BASELINE, cpu=True)),
                    ratio(_ratio(result, view, what, FLOOR, cpu=False)),
                    ratio(_ratio(result, view, what, FLOOR, cpu=True)),
                    memory(m.peak_bytes),
                ]
            )
    return rows


def scaling_rows(results: Sequence[SizeResult], views: Sequence[str]) -> list[list[str]]:
    """Median wall and CPU time per size, and their growth from the smallest to the largest."""
    rows = []
    factor = results[-1].size.responses / results[0].size.responses
    for view in views:
        for what in ORDER:
            found = [r.measurements.get((view, what)) for r in results]
            times = [m for m in found if m is not None]
            if len(times) != len(found):
                continue
            wall = times[-1].wall / times[0].wall
            cpu = times[-1].cpu / times[0].cpu
            rows.append(
                [view, what]
                + [f"{seconds(m.wall)} / {seconds(m.cpu)}" for m in times]
                + [f"{wall:.1f}x", f"{cpu:.1f}x", f"{cpu / factor:.2f}"]
            )
    return rows


def scaling_headers(results: Sequence[SizeResult]) -> list[str]:
    """Column names of the scaling table."""
    first, last = results[0].size.label, results[-1].size.label
    sizes = [f"{r.size.label}: wall / CPU s" for r in results]
    growth = f"{first}->{last}"
    return [
        "grouping",
        "measurement",
        *sizes,
        f"wall growth {growth}",
        f"CPU growth {growth}",
        "CPU growth / row growth",
    ]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; numeric-looking columns are right-aligned."""
    align = ["---" if i < 2 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def target_rows(targets: Sequence[Target]) -> list[list[str]]:
    """Rows of the targets table."""

    def verdict(met: bool | None, measured: bool) -> str:
        if not measured:
            return "not measured"
        if met is None:
            return "-"
        return "met" if met else "**missed**"

    return [
        [t.name, t.goal, t.figure, verdict(t.met, t.measured), verdict(t.met_cpu, t.measured)]
        for t in targets
    ]


TARGET_HEADERS = ("target", "goal", "figure", "verdict (median wall)", "verdict (CPU time)")


def write_section(path: Path, section: str, title: str) -> None:
    """Replace the generated section of ``path`` (between the markers), keeping the rest."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}\n"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1].lstrip("\n")
            path.write_text(head + block + ("\n" + tail if tail else ""), encoding="utf-8")
            return
        path.write_text(text.rstrip() + "\n\n" + block, encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{block}", encoding="utf-8")

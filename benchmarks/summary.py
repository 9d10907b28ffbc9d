"""Turn the measurements into the targets verdict, the terminal report and the Markdown."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from queries import VIEWS
from report import (
    BASELINE,
    CUBE,
    FLOOR,
    GENERATED,
    HEADERS,
    ORDER,
    REFERENCE,
    TARGET_HEADERS,
    SizeResult,
    Target,
    markdown_table,
    memory,
    scaling_headers,
    scaling_rows,
    seconds,
    size_rows,
    target_rows,
    text_table,
    write_section,
)
from timing import Measurement

GIB = 1024**3
VIEW_NAMES = [v.name for v in VIEWS]
CLI_HEADERS = ("command", "median s", "min-max s", "CPU s", "peak memory", "note")


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def environment(before: dict[str, Any] | None = None) -> dict[str, Any]:
    """Machine, versions and load; pass the first call's result to the second."""
    node = shutil.which("node")
    node_version = (
        subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        if node
        else "absent"
    )
    with open("/proc/meminfo", encoding="ascii") as handle:
        total_kb = int(handle.readline().split()[1])
    dirty = " (uncommitted changes)" if _git("status", "--porcelain") not in ("", "?") else ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{os.cpu_count()} CPUs, {total_kb / 1024**2:.0f} GiB RAM, "
        f"{platform.system()} {platform.machine()}",
        "versions": f"Python {platform.python_version()}, DuckDB {version('duckdb')}, "
        f"pandas {version('pandas')}, sqlglot {version('sqlglot')}, Node {node_version}",
        "commit": _git("rev-parse", "--short", "HEAD") + dirty,
        "load_start": (before or {}).get("load_end", os.getloadavg()),
        "load_end": os.getloadavg(),
    }


def _get(result: SizeResult, view: str, what: str) -> Measurement | None:
    return result.measurements.get((view, what))


def _ratio_target(result: SizeResult, name: str, what: str, base: str, limit: float) -> Target:
    figures, met, met_cpu = [], True, True
    for view in VIEW_NAMES:
        one, other = _get(result, view, what), _get(result, view, base)
        if one is None or other is None:
            continue
        wall, cpu = one.wall / other.wall, one.cpu / other.cpu
        met &= wall <= limit
        met_cpu &= cpu <= limit
        figures.append(f"{view}: {wall:.2f}x (CPU {cpu:.2f}x)")
    if not figures:
        return Target(name, f"<= {limit}x", "not measured", False, measured=False)
    figure = f"{result.size.label}: {'; '.join(figures)}"
    return Target(name, f"<= {limit}x", figure, met, met_cpu=met_cpu)


def _reference_target(result: SizeResult) -> Target:
    found = [(v, _get(result, v, REFERENCE)) for v in VIEW_NAMES]
    runs = [(v, m) for v, m in found if m is not None]
    if not runs:
        return Target("pandas reference", "<= 60 s, <= 8 GiB", "not measured", False, False)
    figure = "; ".join(f"{v}: {seconds(m.wall)} s, {memory(m.peak_bytes)}" for v, m in runs)
    met = all(m.wall <= 60 and (m.peak_bytes or 0) <= 8 * GIB for _, m in runs)
    size = result.size.label
    return Target("pandas reference", "<= 60 s, <= 8 GiB at 10M", f"{size}: {figure}", met)


def _cli_target(cli: Sequence[Measurement]) -> Target:
    timed = [m for m in cli if "--help" not in m.name]
    if not timed:
        return Target("generate + check", "< 2 s", "not measured", False, False)
    total = sum(m.wall for m in timed)
    parts = " + ".join(f"{seconds(m.wall)} s" for m in timed)
    return Target(
        "generate + check (processes)", "< 2 s", f"{parts} = {seconds(total)} s", total < 2
    )


def _growth_target(results: Sequence[SizeResult]) -> Target:
    if len(results) < 2:
        return Target("linear growth", "growth <= size growth", "needs --sizes", False, False)
    first, last = results[0], results[-1]
    factor = last.size.responses / first.size.responses
    worst, met, met_cpu = "", True, True
    worst_value = 0.0
    for view in VIEW_NAMES:
        for what in (GENERATED, BASELINE, CUBE, REFERENCE):
            a, b = _get(first, view, what), _get(last, view, what)
            if a is None or b is None:
                continue
            per_row = (b.wall / a.wall) / factor
            met &= per_row <= 1.15
            met_cpu &= (b.cpu / a.cpu) / factor <= 1.15
            if per_row > worst_value:
                worst_value, worst = per_row, f"{view}, {what}"
    figure = (
        f"{first.size.label}->{last.size.label} ({factor:.0f}x rows): worst {worst} "
        f"{worst_value * factor:.1f}x time ({worst_value:.2f} per unit of size growth)"
    )
    goal = "time growth <= row growth (15 % noise)"
    return Target("linear growth", goal, figure, met, met_cpu=met_cpu)


def targets(results: Sequence[SizeResult], cli: Sequence[Measurement]) -> list[Target]:
    """Judge every target of the issue on the largest size measured."""
    last = results[-1]
    return [
        _ratio_target(last, "generated SQL vs baseline", GENERATED, BASELINE, 1.15),
        _ratio_target(last, "generated SQL vs bare join", GENERATED, FLOOR, 1.5),
        _ratio_target(last, "Cube SQL vs baseline", CUBE, BASELINE, 1.3),
        _reference_target(last),
        _cli_target(cli),
        _growth_target(results),
    ]


def _cli_rows(cli: Sequence[Measurement]) -> list[list[str]]:
    rows = []
    for m in cli:
        low, high = m.spread
        rows.append(
            [
                m.name,
                seconds(m.wall),
                f"{seconds(low)}-{seconds(high)}",
                seconds(m.cpu),
                memory(m.peak_bytes),
                m.note,
            ]
        )
    return rows


def _notes(result: SizeResult) -> list[str]:
    return [
        f"{view}, {what}: {m.note}"
        for (view, what), m in result.measurements.items()
        if m.note and what in ORDER
    ]


def render_text(
    results: Sequence[SizeResult],
    cli: Sequence[Measurement],
    found: Sequence[Target],
    env: dict[str, Any],
) -> str:
    """The report printed on stdout."""
    parts = [f"{env['date']}  {env['machine']}  load {_load(env)}", env["versions"], ""]
    for result in results:
        parts.append(f"== {result.size.label} responses, {result.facts}")
        parts.append(text_table(HEADERS, size_rows(result, VIEW_NAMES)))
        parts += _notes(result) + result.checks + [""]
    if len(results) > 1:
        parts += [
            "== scaling",
            text_table(scaling_headers(results), scaling_rows(results, VIEW_NAMES)),
            "",
        ]
    if cli:
        parts += ["== CLI", text_table(CLI_HEADERS, _cli_rows(cli)), ""]
    parts += ["== targets", text_table(TARGET_HEADERS, target_rows(found))]
    return "\n".join(parts)


def _load(env: dict[str, Any]) -> str:
    start, end = env["load_start"], env["load_end"]
    return f"{start[0]:.1f} at start, {end[0]:.1f} at end (1-min load average)"


def render_markdown(
    path: Path,
    results: Sequence[SizeResult],
    cli: Sequence[Measurement],
    found: Sequence[Target],
    env: dict[str, Any],
) -> None:
    """Write the figures into the generated section of ``path``."""
    lines = [
        f"Run of {env['date']} on {env['machine']}; commit {env['commit']}.",
        f"{env['versions']}. Load: {_load(env)}.",
        "",
        "### Targets",
        "",
        markdown_table(TARGET_HEADERS, target_rows(found)),
        "",
    ]
    for result in results:
        made = f"generated in {result.data_seconds:.1f} s" if result.data_seconds else "reused"
        facts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in result.facts.items())
        lines += [
            f"### {result.size.label} responses",
            "",
            f"Dataset ({made}): {facts}.",
            "",
            markdown_table(HEADERS, size_rows(result, VIEW_NAMES)),
            "",
        ]
        lines += [f"- {line}" for line in _notes(result) + result.checks] + [""]
    if len(results) > 1:
        lines += [
            "### Scaling (median wall / CPU seconds)",
            "",
            markdown_table(scaling_headers(results), scaling_rows(results, VIEW_NAMES)),
            "",
        ]
    if cli:
        lines += ["### CLI as whole processes", "", markdown_table(CLI_HEADERS, _cli_rows(cli)), ""]
    write_section(path, "\n".join(lines), "Benchmarks")

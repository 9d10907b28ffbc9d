"""Run and check every measurement of one dataset size, and of the CLI."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from queries import (
    VIEWS,
    View,
    baseline_sql,
    cube_columns,
    floor_sql,
    generated_sql,
    on_view,
    proposed_facts_view,
    proposed_sql,
)
from report import (
    BASELINE,
    CUBE,
    CUBE_PROPOSED,
    FLOOR,
    FLOOR_DEDUPE,
    GENERATED,
    PROPOSED,
    REFERENCE,
    SizeResult,
)
from timing import Measurement, Sample, profiled_run, run_process, run_query

from cfs_semantic.compare import compare
from cfs_semantic.contract import OUTPUT_COLUMNS
from cfs_semantic.cube_compiler import CubeSql
from cfs_semantic.spec import Spec

Progress = Callable[[str], None]
HERE = Path(__file__).resolve().parent
BUNDLED_SPEC = "examples/ravenstack/spec.yaml"
# Cube groups the facts view's user rows under a NULL month and counts no activated users per
# month: by responded month only the response-level columns are comparable.
CUBE_MONTH_COLUMNS = tuple(
    c for c in OUTPUT_COLUMNS if c not in ("activated_users", "response_rate")
)


Candidate = tuple[str, str, list[Any]]
"""(measurement name, SQL, parameters)"""


def _candidates(spec: Spec, view: View, cube: CubeSql | None) -> list[Candidate]:
    out: list[Candidate] = [
        (GENERATED, generated_sql(spec, view), []),
        (PROPOSED, proposed_sql(spec, view), []),
        (BASELINE, baseline_sql(spec, view), []),
        (FLOOR, floor_sql(spec, view), []),
        (FLOOR_DEDUPE, floor_sql(spec, view, dedupe=True), []),
    ]
    if cube is not None and cube.sql:
        out.append((CUBE, cube.sql, list(cube.params)))
        proposed = on_view(cube.sql, spec, proposed_facts_view(spec)[0])
        out.append((CUBE_PROPOSED, proposed, list(cube.params)))
    return out


def _check(
    name: str,
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    view: View,
    columns: tuple[str, ...] = OUTPUT_COLUMNS,
) -> str:
    diffs = compare(expected, actual, [view.key], columns=columns)
    if not diffs:
        return f"ok   {view.name}: {name} = generated SQL ({len(expected)} groups)"
    shown = "; ".join(d.render() for d in diffs[:3])
    return f"DIFF {view.name}: {name} != generated SQL: {len(diffs)} differences: {shown}"


def _verify(view: View, frames: dict[str, pd.DataFrame], spec: Spec) -> list[str]:
    generated = frames[GENERATED]
    lines = [
        _check(what, generated, frames[what], view)
        for what in (PROPOSED, BASELINE)
        if what in frames
    ]
    floor = frames[FLOOR_DEDUPE].rename(columns={"eligible_responses": "eligible"})
    merged = generated.merge(floor, on=view.key, how="outer")
    same = bool((merged["eligible"].fillna(0) == merged["eligible_responses"]).all())
    lines.append(
        f"{'ok  ' if same else 'DIFF'} {view.name}: floor + dedupe counts the generated "
        "eligible_responses"
    )
    for what in (CUBE, CUBE_PROPOSED):
        if what not in frames:
            continue
        cube = frames[what].rename(columns=cube_columns(spec, view))
        columns = OUTPUT_COLUMNS
        if not view.user_level:
            cube = cube[cube[view.key].notna()].reset_index(drop=True)
            columns = CUBE_MONTH_COLUMNS
        lines.append(_check(what, generated, cube, view, columns))
    return lines


def _measure_view(
    con: duckdb.DuckDBPyConnection,
    spec: Spec,
    view: View,
    cube: CubeSql | None,
    runs: int,
    result: SizeResult,
    progress: Progress,
) -> pd.DataFrame:
    label = f"{result.size.label} {view.name}"
    candidates = _candidates(spec, view, cube)
    frames: dict[str, pd.DataFrame] = {}
    for what, sql, params in candidates:
        progress(f"{label}: {what}: first run (profiled, checked)")
        frames[what], peak = profiled_run(con, sql, params)
        result.measurements[(view.name, what)] = Measurement(what, peak_bytes=peak)
    result.checks += _verify(view, frames, spec)
    for run in range(runs):
        for what, sql, params in candidates:
            sample = run_query(con, sql, params)
            result.measurements[(view.name, what)].samples.append(sample)
            progress(f"{label}: {what}: run {run + 1}/{runs}: {sample.wall:.2f} s")
    return frames[GENERATED]


def _reference(
    path: Path,
    index: int,
    runs: int,
    result: SizeResult,
    generated: pd.DataFrame,
    progress: Progress,
) -> None:
    view = VIEWS[index]
    progress(f"{result.size.label} {view.name}: pandas reference, {runs} runs in a child process")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reference.pkl"
        args = [
            sys.executable,
            str(HERE / "reference_worker.py"),
            str(path),
            str(index),
            str(runs),
            str(out),
        ]
        done = run_process(args)
        if done.returncode != 0:
            result.checks.append(f"FAIL {view.name}: reference worker: {done.stderr[-500:]}")
            return
        report = json.loads(done.stdout)
        frame = pd.read_pickle(out)
    samples = [Sample(r["wall"], r["cpu"]) for r in report["runs"]]
    load = report["load"]
    note = f"loading the tables: {load['wall']:.1f} s (not included)"
    result.measurements[(view.name, REFERENCE)] = Measurement(
        REFERENCE, samples, done.peak_bytes, note
    )
    result.checks.append(_check("pandas reference", generated, frame, view))


def measure_size(
    spec: Spec,
    path: Path,
    cube: list[CubeSql],
    runs: int,
    with_reference: bool,
    result: SizeResult,
    progress: Progress,
) -> None:
    """Time every query of every grouping at one size, check the numbers, run the reference."""
    generated = {}
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")  # Cube's DuckDB SQL depends on it
        con.execute(proposed_facts_view(spec)[1])
        for index, view in enumerate(VIEWS):
            statement = cube[index] if index < len(cube) else None
            generated[index] = _measure_view(con, spec, view, statement, runs, result, progress)
    if with_reference:
        for index in range(len(VIEWS)):
            _reference(path, index, runs, result, generated[index], progress)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("cfs-semantic")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cfs_semantic.cli"]


def _has_check_command(repo: Path) -> bool:
    done = run_process([*_cli(), "check", "--help"], cwd=repo)
    return done.returncode == 0


def measure_cli(repo: Path, runs: int, progress: Progress) -> list[Measurement]:
    """Time ``generate`` and the check as whole processes on a bundled spec."""
    cli = _cli()
    has_check = _has_check_command(repo)
    check_args = ["check", BUNDLED_SPEC] if has_check else ["generate", BUNDLED_SPEC, "--check"]
    commands = {
        "cfs-semantic --help (start-up)": ["--help"],
        "cfs-semantic generate (all dialects)": ["generate", BUNDLED_SPEC, "--out", "{out}"],
        f"cfs-semantic {' '.join(check_args[:1] + check_args[2:])}": check_args,
    }
    out = {name: Measurement(name) for name in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            for name, args in commands.items():
                target = Path(tmp) / f"run{run}"
                done = run_process([*cli, *(a.format(out=target) for a in args)], cwd=repo)
                out[name].samples.append(done.sample)
                out[name].peak_bytes = max(out[name].peak_bytes or 0, done.peak_bytes)
                if done.returncode != 0:
                    out[name].note = f"exit {done.returncode}: {done.stderr.strip()[-200:]}"
                progress(f"CLI: {name}: run {run + 1}/{runs}: {done.sample.wall:.2f} s")
                shutil.rmtree(target, ignore_errors=True)
    if not has_check:
        name = next(n for n in out if "--check" in n)
        out[name].note = (out[name].note + "; " if out[name].note else "") + (
            "no `check` command yet: `generate --check` timed instead"
        )
    return list(out.values())

"""Cube's own SQL for the generated model: valid in nine dialects, and the reference's numbers.

One harness call compiles the models of every subject (shared cases, DST edges, real-data
examples) once and answers the whole query matrix for every dialect; the pandas reference runs
meanwhile. The DuckDB and PostgreSQL SQL then runs, with bound parameters, over the facts view
created from the project's own generated SQL. The comparison rule is in docs/cube.md.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import pytest
import sqlglot

from cfs_semantic.compare import compare
from cfs_semantic.cube_compiler import CubeSql, generate_sql
from cfs_semantic.engines import Engine
from cfs_semantic.reference import Grouping
from tests.cube_matrix import (
    CUBE_DIALECTS,
    MatrixQuery,
    Subject,
    bind_for,
    comparable,
    cube_query,
    drop_subject,
    load_subject,
    matrix,
    reference,
    result_frame,
    subjects,
    write_models,
)

SUBJECTS = subjects()
SUBJECT_IDS = [subject.name for subject in SUBJECTS]
ENGINES = ("duckdb", "postgres")


SQLGLOT_CAST_GAP = ("duckdb", "snowflake")
"""Dialects whose date-range SQL (``?::timestamptz``) sqlglot 30.31.0 cannot parse."""


@dataclass(frozen=True)
class CubeRun:
    """Cube's SQL per (dialect, matrix cell), the reference per cell, and unbound twins.

    ``unbound`` holds the time queries of ``SQLGLOT_CAST_GAP`` dialects without a date range,
    so that sqlglot still parses their time-bucketing SQL.
    """

    sql: dict[tuple[str, MatrixQuery], CubeSql]
    expected: dict[MatrixQuery, pd.DataFrame]
    unbound: dict[tuple[str, MatrixQuery], CubeSql]


@pytest.fixture(scope="module")
def cube_run(tmp_path_factory: pytest.TempPathFactory) -> CubeRun:
    """Cube's SQL for the whole matrix in one harness call, the reference computed meanwhile."""
    model_dir = write_models(SUBJECTS, tmp_path_factory.mktemp("cube_model"))
    by_name = {subject.name: subject for subject in SUBJECTS}
    cells = [cell for subject in SUBJECTS for cell in matrix(subject)]
    keys = [(dialect, cell, True) for cell in cells for dialect in CUBE_DIALECTS]
    keys += [(d, cell, False) for cell in cells if cell.grouping.time_dim for d in SQLGLOT_CAST_GAP]
    items = [
        {
            "dialect": dialect,
            "query": cube_query(by_name[cell.subject].spec, cell.grouping, cell.timezone, bound),
        }
        for dialect, cell, bound in keys
    ]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(generate_sql, model_dir, items)
        expected = {
            cell: reference(by_name[cell.subject], cell.grouping, cell.timezone) for cell in cells
        }
        results = pending.result()
    answers = list(zip(keys, results, strict=True))
    return CubeRun(
        {(dialect, cell): result for (dialect, cell, bound), result in answers if bound},
        expected,
        {(dialect, cell): result for (dialect, cell, bound), result in answers if not bound},
    )


def test_cube_generates_sql_for_every_query_in_every_dialect(cube_run: CubeRun) -> None:
    """Every cell gets SQL from Cube in all nine dialects; time queries bind their date range."""
    failures = [
        f"{dialect} {cell.label}: {result.error}"
        for (dialect, cell), result in (*cube_run.sql.items(), *cube_run.unbound.items())
        if result.error is not None or result.sql is None
    ]
    assert not failures, "\n".join(failures[:20])
    assert len(cube_run.sql) == len(cube_run.expected) * len(CUBE_DIALECTS)
    time_cells = sum(1 for cell in cube_run.expected if cell.grouping.time_dim)
    for engine in ENGINES:
        bound = [r.params for (d, cell), r in cube_run.sql.items() if d == engine and r.params]
        assert len(bound) == time_cells


def _is_cast_gap(sql: str, err: sqlglot.errors.SqlglotError) -> bool:
    """True for sqlglot's known failure on a ``?`` placeholder followed by a ``::`` cast."""
    return "?::" in sql and "Required keyword: 'expression' missing" in str(err)


@pytest.mark.parametrize("dialect", list(CUBE_DIALECTS))
def test_cube_sql_parses_in_its_sqlglot_dialect(dialect: str, cube_run: CubeRun) -> None:
    """sqlglot parses every statement for the dialect, but for its known ``?::`` cast gap."""
    read = CUBE_DIALECTS[dialect]
    failures, gaps = [], 0
    statements = [(cell, r) for (name, cell), r in cube_run.sql.items() if name == dialect]
    statements += [(cell, r) for (name, cell), r in cube_run.unbound.items() if name == dialect]
    for cell, result in statements:
        assert result.sql is not None
        try:
            sqlglot.parse_one(result.sql, read=read)
        except sqlglot.errors.SqlglotError as err:
            if dialect in SQLGLOT_CAST_GAP and _is_cast_gap(result.sql, err):
                gaps += 1
            else:
                failures.append(f"{cell.label}: {err}")
    assert not failures, "\n".join(failures[:10])
    unbound = sum(1 for name, _ in cube_run.unbound if name == dialect)
    assert gaps == unbound, "each date-range statement hits the gap; its unbound twin parses"


@pytest.mark.xfail(
    raises=sqlglot.errors.ParseError,
    strict=True,
    reason="sqlglot 30.31.0 cannot parse a ? placeholder followed by a :: cast, which Cube's "
    "DuckDB and Snowflake SQL use for date ranges",
)
@pytest.mark.parametrize("dialect", SQLGLOT_CAST_GAP)
def test_sqlglot_parses_a_placeholder_followed_by_a_cast(dialect: str) -> None:
    """Known sqlglot gap; this fails loudly (strict xfail) once sqlglot parses it."""
    sqlglot.parse_one("SELECT a FROM t WHERE a >= ?::timestamptz", read=dialect)


def _check_subject(engine: Engine, subject: Subject, cube_run: CubeRun) -> list[str]:
    """Run the subject's Cube SQL on the engine; return every difference from the reference.

    On DuckDB the time queries also run without their date range, so that the user rows form
    the NULL time group the comparison rule drops.
    """
    problems = []
    runs = [(cell, cube_run.sql[(engine.name, cell)]) for cell in matrix(subject)]
    runs += [
        (cell, cube_run.unbound[(engine.name, cell)])
        for cell, _ in runs
        if (engine.name, cell) in cube_run.unbound
    ]
    for cell, result in runs:
        assert result.sql is not None, result.error
        sql, params = bind_for(engine, result.sql, result.params)
        actual = result_frame(engine.query(sql, params), subject.spec, cell.grouping)
        kept, columns, dropped = comparable(actual, subject.spec, cell.grouping)
        keys = cell.grouping.columns()
        if not dropped.empty:
            assert dropped[keys].isna().all(axis=None), f"{cell.label}: dropped a keyed group"
            expected_users = cube_run.expected[_overall(cell)]["activated_users"].iloc[0]
            assert actual["activated_users"].sum() == expected_users, cell.label
        diffs = compare(cube_run.expected[cell], kept, keys, columns=columns)
        problems += [f"{cell.label}: {diff.render()}" for diff in diffs]
    return problems


def _overall(cell: MatrixQuery) -> MatrixQuery:
    """The overall cell of the same subject."""
    return MatrixQuery(cell.subject, Grouping(), "UTC")


@pytest.mark.parametrize(
    "engine_name", [pytest.param(e, marks=pytest.mark.engine(e)) for e in ENGINES]
)
@pytest.mark.parametrize("subject", SUBJECTS, ids=SUBJECT_IDS)
def test_cube_sql_returns_the_reference_values(
    engine_name: str,
    subject: Subject,
    cube_run: CubeRun,
    get_engine: Callable[[str], Engine],
) -> None:
    """Cube's SQL on the project's facts view gives every reference value, group by group."""
    engine = get_engine(engine_name)
    load_subject(engine, subject)
    try:
        problems = _check_subject(engine, subject, cube_run)
    finally:
        drop_subject(engine, subject)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.engine("duckdb")
def test_dst_zone_moves_rows_to_the_local_day_week_and_month(
    cube_run: CubeRun, get_engine: Callable[[str], Engine]
) -> None:
    """In America/New_York Cube buckets the DST-edge rows by local day, week and month."""
    [subject] = [s for s in SUBJECTS if s.name == "dst_edges"]
    engine = get_engine("duckdb")
    load_subject(engine, subject)
    try:
        counts = {}
        for grain in ("day", "week", "month"):
            for zone in ("UTC", "America/New_York"):
                cell = MatrixQuery(subject.name, Grouping((), "responded", grain), zone)
                result = cube_run.sql[("duckdb", cell)]
                assert result.sql is not None
                frame = result_frame(
                    engine.query(result.sql, result.params), subject.spec, cell.grouping
                )
                column = cell.grouping.columns()[0]
                counts[grain, zone] = {
                    str(row[column].date()): int(row["eligible_responses"])
                    for _, row in frame.dropna(subset=[column]).iterrows()
                }
    finally:
        drop_subject(engine, subject)
    assert counts["day", "UTC"] == {
        "2024-03-10": 2,
        "2024-03-11": 1,
        "2024-04-01": 1,
        "2024-11-03": 2,
        "2024-11-04": 1,
    }
    assert counts["day", "America/New_York"] == {
        "2024-03-09": 1,
        "2024-03-10": 2,
        "2024-03-31": 1,
        "2024-11-03": 3,
    }
    assert counts["week", "America/New_York"] == {"2024-03-04": 3, "2024-03-25": 1, "2024-10-28": 3}
    assert counts["month", "America/New_York"] == {"2024-03-01": 4, "2024-11-01": 3}
    assert counts["month", "UTC"] == {"2024-03-01": 3, "2024-04-01": 1, "2024-11-01": 3}

"""The SQL rendered for each engine's dialect gives the reference numbers on all six engines.

Every shared case (every grouping it states) and every real-data example (overall, each
segment, one time grain) runs on DuckDB, SQLite, PostgreSQL, DataFusion, ClickHouse and Spark;
every counter and measure must equal the pandas reference, and the values a case states by hand
must hold. An engine that cannot start fails these tests; nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from sqlglot import exp

from cfs_semantic.cases import Case
from cfs_semantic.compare import compare
from cfs_semantic.dialects import render
from cfs_semantic.engines import ENGINE_NAMES, Engine
from cfs_semantic.loader import load_spec
from cfs_semantic.reference import Grouping, aggregate
from cfs_semantic.runner import LocalRun
from cfs_semantic.spec import Spec
from cfs_semantic.sql.aggregate import aggregate_query
from tests.conftest import EngineFactory
from tests.kpi_cases import EXAMPLES, assert_expected, cases, expectations, row_for

CASES = cases()
ENGINES = [pytest.param(name, marks=pytest.mark.engine(name)) for name in ENGINE_NAMES]

#: DuckDB column type -> the engines' logical type (DATE columns load as midnight timestamps).
_LOGICAL = {
    "VARCHAR": "string",
    "DOUBLE": "float",
    "FLOAT": "float",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "DATE": "timestamp",
    "TIMESTAMP": "timestamp",
}


def _run_on(engine: Engine, spec: Spec, grouping: Grouping) -> pd.DataFrame:
    return engine.query(render(aggregate_query(spec, grouping), engine.dialect))


def _groupings(case: Case) -> list[Grouping]:
    return list(dict.fromkeys(grouping for grouping, _, _ in expectations(case)))


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_gives_the_reference_and_the_stated_values(
    get_engine: EngineFactory, case: Case, engine_name: str
) -> None:
    """Each grouping a case states equals the reference and its hand-computed values."""
    engine = get_engine(engine_name)
    for name, frame in case.tables.items():
        engine.load_table(name, frame, case.types[name])
    for grouping in _groupings(case):
        result = _run_on(engine, case.spec, grouping)
        expected = aggregate(case.spec, case.frames(), grouping)
        diffs = compare(expected, result, grouping.columns())
        assert not diffs, f"{grouping}:\n" + "\n".join(d.render() for d in diffs)
        for stated, key, values in expectations(case):
            if stated == grouping:
                assert_expected(row_for(result, grouping, key), values, f"{case.name} {key}")


@pytest.fixture(scope="module")
def real_runs() -> Iterator[dict[str, LocalRun]]:
    """Each real-data example opened once (files registered in DuckDB, reference inputs)."""
    runs = {name: LocalRun.open(path) for name, path in EXAMPLES.items()}
    yield runs
    for run in runs.values():
        run.con.close()


def _load_real_tables(engine: Engine, run: LocalRun) -> None:
    rows = run.con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, {})[column] = _LOGICAL[str(kind)]
    for table, columns in tables.items():
        select = exp.select(exp.Star()).from_(exp.to_table(table, quoted=True))
        frame = run.con.execute(select.sql("duckdb")).df()
        for column, logical in columns.items():
            if logical == "timestamp":
                frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        engine.load_table(table, frame, columns)


def _real_groupings(run: LocalRun) -> list[Grouping]:
    out = [Grouping()] + [Grouping((segment,)) for segment in run.spec.segments]
    return [*out, Grouping((), "responded", "month")]


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_real_data_gives_the_reference_on_every_grouping(
    get_engine: EngineFactory, real_runs: dict[str, LocalRun], example: str, engine_name: str
) -> None:
    """Overall, each segment and responded month: every counter and measure equal."""
    run = real_runs[example]
    engine = get_engine(engine_name)
    _load_real_tables(engine, run)
    for grouping in _real_groupings(run):
        diffs = compare(
            run.reference(grouping), _run_on(engine, run.spec, grouping), grouping.columns()
        )
        assert not diffs, f"{grouping}:\n" + "\n".join(d.render() for d in diffs[:20])


def test_databricks_renders_exactly_the_sql_spark_executes() -> None:
    """Databricks runs the text Spark runs in CI, so its parity is Spark's parity."""
    specs = [case.spec for case in CASES] + [load_spec(p) for p in EXAMPLES.values()]
    for spec in specs:
        for grouping in [Grouping(), Grouping(tuple(spec.segments[:1]), "responded", "week")]:
            tree = aggregate_query(spec, grouping)
            assert render(tree, "databricks") == render(tree, "spark")

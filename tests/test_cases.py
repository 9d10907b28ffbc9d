"""Every hand-computed case in shared/cases holds on the reference and on DuckDB SQL."""

from __future__ import annotations

import duckdb
import pytest

from cfs_semantic.cases import Case
from cfs_semantic.compare import compare
from cfs_semantic.reference import aggregate
from cfs_semantic.sql.aggregate import aggregate_query
from tests.kpi_cases import assert_expected, cases, expectations, row_for

CASES = cases()
CASE_IDS = [case.name for case in CASES]


def _duckdb_result(case: Case, grouping):  # type: ignore[no-untyped-def]
    con = duckdb.connect()
    for name, frame in case.tables.items():
        con.register(name, frame)
    return con.execute(aggregate_query(case.spec, grouping).sql("duckdb")).df()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reference_gives_the_hand_computed_values(case: Case) -> None:
    """The pandas reference reproduces every value the case states."""
    for grouping, key, expected in expectations(case):
        result = aggregate(case.spec, case.frames(), grouping)
        assert_expected(row_for(result, grouping, key), expected, f"{case.name} {key}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_duckdb_sql_gives_the_hand_computed_values(case: Case) -> None:
    """The generated SQL on DuckDB reproduces every value the case states."""
    for grouping, key, expected in expectations(case):
        result = _duckdb_result(case, grouping)
        assert_expected(row_for(result, grouping, key), expected, f"{case.name} {key}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_duckdb_sql_equals_reference_on_every_counter(case: Case) -> None:
    """Beyond the stated values, SQL and reference agree on all counters of all groups."""
    for grouping, _, _ in expectations(case):
        expected = aggregate(case.spec, case.frames(), grouping)
        diffs = compare(expected, _duckdb_result(case, grouping), grouping.columns())
        assert not diffs, "\n".join(d.render() for d in diffs)

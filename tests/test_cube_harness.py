"""Cube's own schema compiler (npm, pinned in tests/cube_harness) driven through the harness.

The model is written by hand here, so these tests check the harness and what Cube does, not
the project's generators.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cfs_semantic.cube_compiler import (
    DIALECTS,
    CubeCompileError,
    compile_model,
    ensure_installed,
    generate_sql,
    harness_dir,
    run_harness,
)

ORDERS_MODEL = """\
cubes:
  - name: orders
    sql_table: orders
    measures:
      - name: count
        type: count
      - name: amount_sum
        type: sum
        sql: amount
      - name: avg_amount
        type: number
        sql: "1.0 * {amount_sum} / NULLIF({count}, 0)"
{extra_measures}
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
      - name: status
        sql: status
        type: string
      - name: created_at
        sql: created_at
        type: time
{extra_cube}
{extra_top}
"""

ORDERS_ROWS = [
    (1, "done", 10.0, "2024-01-01 10:00:00"),
    (2, "done", 20.0, "2024-01-01 23:30:00"),
    (3, "open", 5.0, "2024-01-02 08:00:00"),
    (4, "done", 30.0, "2024-01-03 12:00:00"),
    (5, "open", None, "2024-01-03 13:00:00"),
    (6, "done", 99.0, "2024-02-15 09:00:00"),
]

MEASURES = ["orders.count", "orders.amount_sum", "orders.avg_amount"]

JANUARY_BY_STATUS_AND_DAY: dict[str, Any] = {
    "measures": MEASURES,
    "dimensions": ["orders.status"],
    "timeDimensions": [
        {
            "dimension": "orders.created_at",
            "granularity": "day",
            "dateRange": ["2024-01-01", "2024-01-31"],
        }
    ],
    "timezone": "UTC",
    "order": [
        {"id": "orders.created_at", "desc": False},
        {"id": "orders.status", "desc": False},
    ],
}

DONE_ONLY: dict[str, Any] = {
    "measures": MEASURES,
    "filters": [{"member": "orders.status", "operator": "equals", "values": ["done"]}],
    "timezone": "UTC",
    "order": [],
}

QUERY_CLASSES = {
    "postgres": "PostgresQuery",
    "duckdb": "DuckDBQuery",
    "snowflake": "SnowflakeQuery",
    "bigquery": "BigqueryQuery",
    "redshift": "RedshiftQuery",
    "databricks": "DatabricksQuery",
    # Cube's Trino driver answers with the schema compiler's PrestodbQuery.
    "trino": "PrestodbQuery",
    "mysql": "MysqlQuery",
    "mssql": "MssqlQuery",
}

FIRST_PLACEHOLDER = {"postgres": "$1", "redshift": "$1", "mssql": "@_1"}


def write_model(
    directory: Path,
    *,
    extra_measures: str = "",
    extra_cube: str = "",
    extra_top: str = "",
) -> Path:
    """Write the orders model, with optional extra YAML, and return its folder."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (
        ORDERS_MODEL.replace(
            "{extra_measures}", textwrap.indent(textwrap.dedent(extra_measures), " " * 6)
        )
        .replace("{extra_cube}", textwrap.indent(textwrap.dedent(extra_cube), " " * 4))
        .replace("{extra_top}", textwrap.dedent(extra_top))
    )
    (directory / "orders.yml").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def harness() -> Path:
    """The installed harness; installs it from the lockfile on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the Cube harness needs Node.js and npm on PATH")
    return ensure_installed()


@pytest.fixture(scope="module")
def orders_model(harness: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("cube") / "model")


@pytest.fixture()
def orders_db() -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB with the orders table, session time zone UTC (as Cube's drivers set it)."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(
        "CREATE TABLE orders (id INTEGER, status VARCHAR, amount DECIMAL(10, 2),"
        " created_at TIMESTAMP)"
    )
    connection.executemany("INSERT INTO orders VALUES (?, ?, ?, CAST(? AS TIMESTAMP))", ORDERS_ROWS)
    yield connection
    connection.close()


def as_floats(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [
        tuple(
            float(value) if value is not None and not isinstance(value, str | datetime) else value
            for value in row
        )
        for row in rows
    ]


def test_harness_files_are_where_the_wrapper_looks(harness: Path) -> None:
    assert harness == harness_dir()
    package = json.loads((harness / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"]["@cubejs-backend/schema-compiler"] == "1.7.43"
    assert package["dependencies"]["@cubejs-backend/duckdb-driver"] == "1.7.43"
    assert (harness / "node_modules" / "@cubejs-backend" / "schema-compiler").is_dir()


def test_model_compiles(orders_model: Path) -> None:
    assert compile_model(orders_model) == []


def test_compile_only_reports_time_and_no_results(orders_model: Path) -> None:
    compilation = run_harness(
        orders_model, [{"dialect": "duckdb", "query": DONE_ONLY}], compile_only=True
    )
    assert compilation.errors == []
    assert compilation.compile_error is None
    assert compilation.results == []
    assert compilation.compile_ms > 0


def test_sql_for_every_dialect(orders_model: Path) -> None:
    queries = [{"dialect": dialect, "query": JANUARY_BY_STATUS_AND_DAY} for dialect in DIALECTS]
    results = generate_sql(orders_model, queries)

    assert [result.dialect for result in results] == list(DIALECTS)
    for result in results:
        assert result.error is None, (result.dialect, result.error)
        assert result.sql is not None
        assert result.query_class == QUERY_CLASSES[result.dialect]
        assert "NULLIF(count(" in result.sql
        assert FIRST_PLACEHOLDER.get(result.dialect, "?") in result.sql
        assert len(result.params) == 2
        assert result.params[0].startswith("2024-01-01T00:00:00.000")
        assert result.params[1].startswith("2024-01-31T23:59:59.999")
        assert result.pre_aggregations == []


def test_unknown_dialect_is_an_error_per_query(orders_model: Path) -> None:
    [unknown, known] = generate_sql(
        orders_model,
        [
            {"dialect": "no_such_dialect", "query": DONE_ONLY},
            {"dialect": "duckdb", "query": DONE_ONLY},
        ],
    )
    assert unknown.sql is None
    assert unknown.error == "unknown dialect: no_such_dialect"
    assert known.error is None


def test_unknown_member_in_query_is_an_error_per_query(orders_model: Path) -> None:
    [result] = generate_sql(
        orders_model,
        [{"dialect": "duckdb", "query": {**DONE_ONLY, "measures": ["orders.nope"]}}],
    )
    assert result.sql is None
    assert result.error is not None
    assert "nope" in result.error


@pytest.mark.engine("duckdb")
def test_duckdb_sql_gives_the_right_numbers(
    orders_model: Path, orders_db: duckdb.DuckDBPyConnection
) -> None:
    [grouped, done] = generate_sql(
        orders_model,
        [
            {"dialect": "duckdb", "query": JANUARY_BY_STATUS_AND_DAY},
            {"dialect": "duckdb", "query": DONE_ONLY},
        ],
    )
    assert grouped.sql is not None and done.sql is not None

    rows = as_floats(orders_db.execute(grouped.sql, grouped.params).fetchall())
    assert rows == [
        ("done", datetime(2024, 1, 1), 2.0, 30.0, 15.0),
        ("open", datetime(2024, 1, 2), 1.0, 5.0, 5.0),
        ("done", datetime(2024, 1, 3), 1.0, 30.0, 30.0),
        ("open", datetime(2024, 1, 3), 1.0, None, None),
    ]

    assert done.params == ["done"]
    [(count, amount_sum, avg_amount)] = orders_db.execute(done.sql, done.params).fetchall()
    assert (count, float(amount_sum)) == (4, 159.0)
    assert float(avg_amount) == pytest.approx(159.0 / 4)


@pytest.mark.engine("duckdb")
def test_duckdb_groups_days_in_the_reporting_time_zone_across_dst(
    orders_model: Path, orders_db: duckdb.DuckDBPyConnection
) -> None:
    orders_db.execute("DELETE FROM orders")
    orders_db.executemany(
        "INSERT INTO orders VALUES (?, 'done', 1, CAST(? AS TIMESTAMP))",
        [
            (1, "2024-03-10 04:30:00"),  # 2024-03-09 23:30 EST
            (2, "2024-03-10 05:30:00"),  # 2024-03-10 00:30 EST
            (3, "2024-03-11 03:30:00"),  # 2024-03-10 23:30 EDT
            (4, "2024-03-11 04:30:00"),  # 2024-03-11 00:30 EDT
        ],
    )
    query = {
        "measures": ["orders.count"],
        "timeDimensions": [{"dimension": "orders.created_at", "granularity": "day"}],
        "timezone": "America/New_York",
        "order": [{"id": "orders.created_at", "desc": False}],
    }
    [result] = generate_sql(orders_model, [{"dialect": "duckdb", "query": query}])
    assert result.sql is not None
    assert "timezone('America/New_York'" in result.sql
    rows = orders_db.execute(result.sql, result.params).fetchall()
    assert rows == [
        (datetime(2024, 3, 9), 1),
        (datetime(2024, 3, 10), 2),
        (datetime(2024, 3, 11), 1),
    ]


BROKEN_MODELS: dict[str, tuple[dict[str, str], str]] = {
    "unknown_member": (
        {
            "extra_measures": """\
                - name: bad
                  type: number
                  sql: "{amount_sum} / {no_such_measure}"
                """
        },
        "no_such_measure is not defined",
    ),
    "duplicate_measure": (
        {
            "extra_measures": """\
                - name: count
                  type: sum
                  sql: amount
                """
        },
        "Member names must be unique within a cube. "
        "Found duplicate measure 'count' in cube 'orders'.",
    ),
    "invalid_format": (
        {
            "extra_measures": """\
                - name: share
                  type: number
                  sql: "{count}"
                  format: percentage
                """
        },
        '"measures.share.format" does not match any of the allowed types',
    ),
    "access_policy_role": (
        {
            "extra_cube": """\
                access_policy:
                  - role: analyst
                    member_level:
                      includes: "*"
                """
        },
        '"accessPolicy[0].role" is not allowed. '
        '"accessPolicy[0]" must contain at least one of [group, groups].',
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_MODELS))
def test_broken_model_is_caught_with_cubes_message(
    case: str, harness: Path, tmp_path: Path
) -> None:
    parts, expected = BROKEN_MODELS[case]
    model = write_model(tmp_path / "model", **parts)

    errors = compile_model(model)
    assert len(errors) == 1, errors
    assert expected in errors[0]

    with pytest.raises(CubeCompileError) as raised:
        generate_sql(model, [{"dialect": "duckdb", "query": DONE_ONLY}])
    assert raised.value.errors == errors


def test_invalid_format_lists_the_valid_ones(harness: Path, tmp_path: Path) -> None:
    parts, _ = BROKEN_MODELS["invalid_format"]
    [error] = compile_model(write_model(tmp_path / "model", **parts))
    assert "must be one of [percent, currency, number]" in error


@pytest.mark.engine("duckdb")
def test_filters_on_a_number_measure_are_not_caught_by_cube(
    harness: Path, tmp_path: Path, orders_db: duckdb.DuckDBPyConnection
) -> None:
    """Cube compiles it and wraps the ratio in CASE WHEN: the project must lint for it."""
    model = write_model(
        tmp_path / "model",
        extra_measures="""\
            - name: done_avg
              type: number
              sql: "1.0 * {amount_sum} / NULLIF({count}, 0)"
              filters:
                - sql: "{CUBE}.status = 'done'"
            """,
    )
    assert compile_model(model) == []

    [ungrouped] = generate_sql(
        model,
        [{"dialect": "duckdb", "query": {"measures": ["orders.done_avg"], "timezone": "UTC"}}],
    )
    assert ungrouped.sql is not None
    assert "CASE WHEN (\"orders\".status = 'done') THEN 1.0 * sum(" in ungrouped.sql
    with pytest.raises(duckdb.BinderException, match="GROUP BY"):
        orders_db.execute(ungrouped.sql, ungrouped.params)


def test_percent_format_is_valid_on_a_number_measure(harness: Path, tmp_path: Path) -> None:
    model = write_model(
        tmp_path / "model",
        extra_measures="""\
            - name: done_share
              type: number
              sql: "1.0 * {count} / NULLIF({count}, 0)"
              format: percent
            """,
    )
    assert compile_model(model) == []


def test_access_policy_with_group_compiles(harness: Path, tmp_path: Path) -> None:
    model = write_model(
        tmp_path / "model",
        extra_cube="""\
            access_policy:
              - group: analyst
                member_level:
                  includes: "*"
            """,
    )
    assert compile_model(model) == []


PRE_AGGREGATION_AND_VIEW = {
    "extra_cube": """\
        pre_aggregations:
          - name: by_day
            measures: [count, amount_sum]
            dimensions: [status]
            time_dimension: created_at
            granularity: day
        """,
    "extra_top": """\
        views:
          - name: orders_view
            cubes:
              - join_path: orders
                includes: [count, amount_sum, avg_amount, status, created_at]
        """,
}


@pytest.mark.engine("duckdb")
def test_views_and_rollups_compile_and_rollups_recompute_ratios(
    harness: Path, tmp_path: Path, orders_db: duckdb.DuckDBPyConnection
) -> None:
    model = write_model(tmp_path / "model", **PRE_AGGREGATION_AND_VIEW)
    query = {
        "measures": ["orders_view.count", "orders_view.amount_sum", "orders_view.avg_amount"],
        "dimensions": ["orders_view.status"],
        "timezone": "UTC",
        "order": [{"id": "orders_view.status", "desc": False}],
    }
    [raw, rolled_up] = generate_sql(
        model,
        [
            {"dialect": "duckdb", "query": query},
            {"dialect": "duckdb", "query": query, "pre_aggregations": "use"},
        ],
    )
    assert raw.sql is not None and rolled_up.sql is not None
    assert raw.pre_aggregations == []
    assert "stb_pre_aggregations" not in raw.sql
    [rollup] = rolled_up.pre_aggregations
    assert rollup["id"] == "orders.by_day"
    assert rollup["table_name"] in rolled_up.sql

    expected = as_floats(orders_db.execute(raw.sql, raw.params).fetchall())
    assert expected == [("done", 4.0, 159.0, 39.75), ("open", 2.0, 5.0, 2.5)]

    orders_db.execute("CREATE SCHEMA stb_pre_aggregations")
    orders_db.execute(rollup["load_sql"], rollup["load_params"])
    assert as_floats(orders_db.execute(rolled_up.sql, rolled_up.params).fetchall()) == expected


def test_jinja_model_is_reported_not_crashed(harness: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "orders.yml").write_text(
        "cubes:\n  - name: orders\n    sql_table: {{ 'orders' }}\n", encoding="utf-8"
    )
    errors = compile_model(model)
    assert len(errors) == 1
    assert "native" in errors[0].lower()


def test_harness_exits_nonzero_only_for_harness_failures(harness: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    completed = subprocess.run(
        [node, str(harness / "compile.js")],
        input="not json",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "cube harness failed" in completed.stderr

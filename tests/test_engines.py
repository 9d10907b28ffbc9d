"""The engine adapters really run SQL: loading, NULLs, timestamps, quoting, division, params."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from cfs_semantic.engines import ENGINE_NAMES, EngineStartError, open_engine
from cfs_semantic.engines.base import Engine, frame_to_arrow, quoted_table

HOSTILE_TABLE = 'Feedback "Q1"; -- `x` \\ ü.v2'
HOSTILE_STRINGS = [
    "plain",
    "it's",
    'say "hi"',
    "a;b",
    "-- not a comment",
    "/* nor this */",
    "back\\slash \\n \\N",
    "line1\nline2\r\nline3",
    "tab\there",
    "ünïcødé ✓ 日本語 🙂",
    "'); DROP TABLE t; --",
    "",
    None,
]
HOSTILE_COLUMNS = {
    "id": "integer",
    "user id": "string",
    "Mixed Case": "string",
    'it\'s "quoted"': "string",
    "select": "string",
    "semi;colon -- x": "string",
    "back\\slash`tick": "string",
    "dot.name": "string",
    "naïve ✓": "string",
}

# How each engine spells a positional placeholder for one string value.
STRING_PLACEHOLDER = {
    "duckdb": "?",
    "sqlite": "?",
    "postgres": "%s",
    "datafusion": "$1",
    "clickhouse": "{p1:Nullable(String)}",
    "spark": "?",
}
# ``SELECT 7 / 2``: which engines divide integers as integers (the trap DESIGN.md warns about).
INTEGER_DIVISION = {"sqlite", "postgres", "datafusion"}


def _select_all(engine: Engine, table: str, columns: list[str], order_by: str) -> str:
    query = exp.select(*[exp.column(col, quoted=True) for col in columns])
    query = query.from_(quoted_table(table)).order_by(exp.column(order_by, quoted=True))
    return query.sql(dialect=engine.dialect)


def _plain(value: Any) -> Any:
    """None for any missing value, builtin Python scalars otherwise."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def test_hostile_names_and_strings_round_trip(engine: Engine) -> None:
    rows = len(HOSTILE_STRINGS)
    data: dict[str, Any] = {"id": list(range(rows))}
    for offset, col in enumerate(list(HOSTILE_COLUMNS)[1:]):
        data[col] = [HOSTILE_STRINGS[(i + offset) % rows] for i in range(rows)]
    frame = pd.DataFrame(data)
    engine.load_table(HOSTILE_TABLE, frame, HOSTILE_COLUMNS)

    result = engine.query(_select_all(engine, HOSTILE_TABLE, list(HOSTILE_COLUMNS), "id"))

    assert list(result.columns) == list(HOSTILE_COLUMNS)
    for col in HOSTILE_COLUMNS:
        assert [_plain(v) for v in result[col]] == [_plain(v) for v in frame[col]], col


def test_load_replaces_table(engine: Engine) -> None:
    columns = {"n": "integer"}
    engine.load_table("replaced", pd.DataFrame({"n": [1, 2, 3]}), columns)
    engine.load_table("replaced", pd.DataFrame({"n": [10, 20]}), columns)

    result = engine.query(_select_all(engine, "replaced", ["n"], "n"))

    assert [_plain(v) for v in result["n"]] == [10, 20]


def test_nulls_survive_for_every_type(engine: Engine) -> None:
    columns = {"k": "integer", "s": "string", "f": "float", "i": "integer"}
    columns |= {"t": "timestamp", "b": "boolean"}
    frame = pd.DataFrame(
        {
            "k": [1, 2, 3],
            "s": ["x", None, np.nan],
            "f": [1.5, None, np.nan],
            "i": [7, None, np.nan],
            "t": [pd.Timestamp("2024-05-01 12:00:00"), None, pd.NaT],
            "b": [False, None, pd.NA],
        }
    )
    engine.load_table("nulls", frame, columns)

    counts = exp.select(
        *[exp.func("COUNT", exp.column(col, quoted=True)).as_(col, quoted=True) for col in columns]
    ).from_(quoted_table("nulls"))
    counted = engine.query(counts.sql(dialect=engine.dialect))
    result = engine.query(_select_all(engine, "nulls", list(columns), "k"))

    assert {col: int(counted[col].iloc[0]) for col in columns} == {
        "k": 3, "s": 1, "f": 1, "i": 1, "t": 1, "b": 1
    }  # fmt: skip
    assert result.loc[1:].drop(columns="k").isna().all().all()
    first = {col: _plain(result[col].iloc[0]) for col in columns}
    if engine.name == "sqlite":  # no timestamp/boolean storage types: ISO text and 0/1
        first["t"] = pd.Timestamp(first["t"])
        first["b"] = bool(first["b"])
    assert first == {"k": 1, "s": "x", "f": 1.5, "i": 7, "t": frame["t"][0], "b": False}


def test_timestamps_keep_microseconds(engine: Engine) -> None:
    stamps = pd.to_datetime(
        [
            "1999-12-31 23:59:59.123456",
            "2024-01-01 00:00:00",
            "2024-03-31 02:30:00.000001",  # inside the Central European DST gap
            "2024-10-27 02:59:59.999999",  # inside the Central European DST overlap
        ],
        format="ISO8601",
    )
    frame = pd.DataFrame({"k": range(len(stamps)), "ts": stamps})
    engine.load_table("stamps", frame, {"k": "integer", "ts": "timestamp"})

    result = engine.query(_select_all(engine, "stamps", ["k", "ts"], "k"))

    values = result["ts"]
    if engine.name == "sqlite":
        assert values[1] == "2024-01-01 00:00:00"
        values = pd.to_datetime(values, format="ISO8601")
    else:
        assert pd.api.types.is_datetime64_dtype(values.dtype), values.dtype
        assert getattr(values.dtype, "tz", None) is None
    assert list(values) == list(stamps)


def test_decimal_division_gives_a_fraction(engine: Engine) -> None:
    sql = "SELECT CAST(7 AS DECIMAL(10, 2)) / 2 AS d, CAST(7 AS DOUBLE) / 2 AS f"
    [native] = sqlglot.transpile(sql, read="duckdb", write=engine.dialect)

    result = engine.query(native)

    assert result["d"].dtype == np.float64, result.dtypes
    assert math.isclose(result["d"].iloc[0], 3.5)
    assert math.isclose(result["f"].iloc[0], 3.5)


def test_integer_division_follows_the_engine(engine: Engine) -> None:
    result = engine.query("SELECT 7 / 2 AS q")

    assert result["q"].iloc[0] == (3 if engine.name in INTEGER_DIVISION else 3.5)


def test_query_binds_parameters(engine: Engine) -> None:
    value = "x'; DROP TABLE t; -- \\ \n ü"
    sql = f"SELECT {STRING_PLACEHOLDER[engine.name]} AS v"

    result = engine.query(sql, [value])

    assert list(result.columns) == ["v"]
    assert result["v"].iloc[0] == value


def test_execute_runs_setup_statements(engine: Engine) -> None:
    engine.load_table("base", pd.DataFrame({"n": [1, 2, 3]}), {"n": "integer"})
    n = exp.column("n", quoted=True)
    view = exp.Create(
        this=quoted_table("big n"),
        kind="VIEW",
        expression=exp.select(n).from_(quoted_table("base")).where(n > 1),
    )
    if engine.name == "spark":  # a permanent view cannot read a temporary one
        view.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))

    engine.execute(view.sql(dialect=engine.dialect))
    result = engine.query(_select_all(engine, "big n", ["n"], "n"))

    assert [_plain(v) for v in result["n"]] == [2, 3]


def test_open_engine_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        open_engine("oracle")
    assert ENGINE_NAMES == ("duckdb", "sqlite", "postgres", "datafusion", "clickhouse", "spark")


def test_engine_that_cannot_start_raises(tmp_path: Any) -> None:
    with pytest.raises(EngineStartError, match="initdb/pg_ctl not found"):
        open_engine("postgres", bin_dir=str(tmp_path))


def test_only_one_clickhouse_per_process(get_engine: Callable[[str], Engine]) -> None:
    first = get_engine("clickhouse")

    with pytest.raises(EngineStartError, match="chdb"):
        open_engine("clickhouse")
    assert first.query("SELECT 1 AS x")["x"].iloc[0] == 1


@pytest.mark.parametrize(
    ("frame", "columns", "message"),
    [
        (pd.DataFrame({"a": [1]}), {"a": "integer", "b": "string"}, "missing"),
        (pd.DataFrame({"a": [1], "b": [2]}), {"a": "integer"}, "extra"),
        (pd.DataFrame({"a": [1]}), {"a": "decimal"}, "unknown logical type"),
        (pd.DataFrame({"a": [1.5]}), {"a": "integer"}, "cannot be loaded as integer"),
        (pd.DataFrame({"a": [1]}), {"a": "string"}, "cannot be loaded as string"),
        (
            pd.DataFrame({"a": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")}),
            {"a": "timestamp"},
            "time-zone-aware",
        ),
    ],
    ids=["missing", "extra", "unknown-type", "lossy-int", "int-as-string", "tz-aware"],
)
def test_bad_frames_are_rejected(
    frame: pd.DataFrame, columns: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        frame_to_arrow(frame, columns)

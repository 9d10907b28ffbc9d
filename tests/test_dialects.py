"""Dialect rules, transforms and the ``check`` command, each trap shown with and without its fix.

A trap test renders the same tree twice: with plain sqlglot 30.31 (``tree.sql(dialect)``), which
must still show the trap (so a fix upstream makes the test fail and the transform can go), and
with :func:`render`, which must not. Where an engine runs the dialect, both texts are executed
and only the rendered one gives the reference numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlglot
import yaml
from sqlglot import exp

from cfs_semantic import lints as L
from cfs_semantic.cases import build_spec
from cfs_semantic.check import check_statement, unstable
from cfs_semantic.compare import compare
from cfs_semantic.dialects import RULES, render, sqlglot_name
from cfs_semantic.engines import Engine
from cfs_semantic.lints import Lint, masked
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import Grouping, SourceFrames, aggregate
from cfs_semantic.spec import SUPPORTED_DIALECTS, Spec
from cfs_semantic.sql import facts as facts_module
from cfs_semantic.sql.aggregate import aggregate_query, facts_view
from cfs_semantic.time_sql import _NO_ZONES
from cfs_semantic.transforms import UnsupportedFeature
from tests.cli_helpers import run_cli
from tests.conftest import EngineFactory
from tests.kpi_cases import EXAMPLES

ACT_TYPES = {"user_id": "string", "activated_at": "timestamp", "persona": "string"}
RESP_TYPES = {
    "response_id": "string",
    "user_id": "string",
    "responded_at": "timestamp",
    "score": "float",
    "sentiment": "string",
}
LABELS = {"positive": ["positive"], "neutral": ["neutral"], "negative": ["negative"]}


def _spec(**partial: Any) -> Spec:
    sentiment = {"source": "score", "positive_min": 4, "negative_max": 2}
    sentiment.update(partial.pop("sentiment", {}))
    data = {"scale": {"min": 1, "max": 5}, "sentiment": sentiment, **partial}
    return spec_from_dict(build_spec("trap", data, ["persona"], []))


def _frames(acts: list[tuple[Any, ...]], resps: list[tuple[Any, ...]]) -> SourceFrames:
    activations = pd.DataFrame(acts, columns=list(ACT_TYPES))
    activations["activated_at"] = pd.to_datetime(activations["activated_at"])
    responses = pd.DataFrame(resps, columns=list(RESP_TYPES))
    responses["responded_at"] = pd.to_datetime(responses["responded_at"])
    responses["score"] = responses["score"].astype("float64")
    for frame, column in ((activations, "activated_at"), (responses, "responded_at")):
        frame[column] = frame[column].astype("datetime64[us]")
    return SourceFrames(responses=responses, activations=activations)


def _load(engine: Engine, frames: SourceFrames) -> None:
    assert frames.activations is not None
    engine.load_table("activations", frames.activations, ACT_TYPES)
    engine.load_table("responses", frames.responses, RESP_TYPES)


def _diffs(
    engine: Engine, spec: Spec, frames: SourceFrames, sql: str, grouping: Grouping
) -> list[str]:
    expected = aggregate(spec, frames, grouping)
    return [d.render() for d in compare(expected, engine.query(sql), grouping.columns())]


# A window that does not start at midnight: the end is 2024-01-31 10:00:00, not midnight.
WINDOW = _spec(window_days=30)
WINDOW_DATA = _frames(
    [("u1", "2024-01-01 10:00:00", "a")],
    [
        ("r1", "u1", "2024-01-01 10:00:00", 5.0, None),
        ("r2", "u1", "2024-01-31 09:59:59", 4.0, None),
        ("r3", "u1", "2024-01-31 10:00:00", 1.0, None),
    ],
)


# --- the capability table ----------------------------------------------------------------------


def test_every_supported_dialect_has_rules() -> None:
    """The capability table covers exactly the dialects a spec may name."""
    assert set(RULES) == set(SUPPORTED_DIALECTS)
    assert all(rules.name == name for name, rules in RULES.items())


def test_targets_without_time_zones_are_the_ones_that_reject_them() -> None:
    """The table's time_zones flag and the conversion rules agree on every target."""
    assert {name for name, rules in RULES.items() if not rules.time_zones} == set(_NO_ZONES)


@pytest.mark.parametrize("dialect", sorted(_NO_ZONES))
def test_a_time_zone_on_a_target_without_zones_is_a_clear_error(dialect: str) -> None:
    """SQLite and SQL Server get an error naming the zone and the fix, not broken SQL."""
    spec = _spec(timezone="Europe/Berlin")
    with pytest.raises(UnsupportedFeature, match=r"Europe/Berlin.*set timezone"):
        render(aggregate_query(spec), dialect)


# --- traps executed on engines -----------------------------------------------------------------


@pytest.mark.parametrize("engine_name", ["spark", "sqlite"])
def test_window_end_keeps_the_time_of_day(get_engine: EngineFactory, engine_name: str) -> None:
    """Spark DATE_ADD and SQLite DATE() drop the time; the last day's responses get lost."""
    engine = get_engine(engine_name)
    _load(engine, WINDOW_DATA)
    tree = aggregate_query(WINDOW)
    assert _diffs(engine, WINDOW, WINDOW_DATA, tree.sql(engine.dialect), Grouping())
    assert not _diffs(engine, WINDOW, WINDOW_DATA, render(tree, engine.dialect), Grouping())


def test_sqlite_month_buckets_need_strftime(get_engine: EngineFactory) -> None:
    """sqlglot writes TIMESTAMP_TRUNC for SQLite, which has no such function."""
    engine = get_engine("sqlite")
    _load(engine, WINDOW_DATA)
    grouping = Grouping((), "responded", "month")
    tree = aggregate_query(WINDOW, grouping)
    with pytest.raises(Exception, match="TIMESTAMP_TRUNC|MONTH"):
        engine.query(tree.sql("sqlite"))
    assert not _diffs(engine, WINDOW, WINDOW_DATA, render(tree, "sqlite"), grouping)


def test_clickhouse_keeps_microseconds(get_engine: EngineFactory) -> None:
    """A response 0.5 s before activation is not eligible; DateTime casts would make it so."""
    engine = get_engine("clickhouse")
    spec = _spec()
    data = _frames(
        [("u1", "2024-01-01 10:00:00.700", "a")],
        [("r1", "u1", "2024-01-01 10:00:00.200", 5.0, None)],
    )
    _load(engine, data)
    tree = aggregate_query(spec)
    assert _diffs(engine, spec, data, tree.sql("clickhouse"), Grouping())
    assert not _diffs(engine, spec, data, render(tree, "clickhouse"), Grouping())


def test_clickhouse_converts_time_zones(get_engine: EngineFactory) -> None:
    """ClickHouse accepts sqlglot's AT TIME ZONE but only relabels the zone: wrong local days."""
    engine = get_engine("clickhouse")
    spec = _spec(timezone="America/New_York", reporting_timezone="Asia/Kolkata")
    data = _frames(
        [("u1", "2024-01-01 20:00:00", "a")],
        [
            ("r1", "u1", "2024-01-01 20:00:00", 5.0, None),
            ("r2", "u1", "2024-01-05 21:00:00", 1.0, None),
        ],
    )
    _load(engine, data)
    grouping = Grouping((), "responded", "day")
    tree = aggregate_query(spec, grouping)
    assert _diffs(engine, spec, data, tree.sql("clickhouse"), grouping)
    assert not _diffs(engine, spec, data, render(tree, "clickhouse"), grouping)


@pytest.fixture
def clickhouse_default_joins(get_engine: EngineFactory) -> Iterator[Engine]:
    """The session's ClickHouse with ClickHouse's default join_use_nulls = 0, then restored."""
    engine = get_engine("clickhouse")
    engine.execute("SET join_use_nulls = 0")
    yield engine
    engine.execute("SET join_use_nulls = 1")


def test_clickhouse_outer_join_gives_null_attributes(clickhouse_default_joins: Engine) -> None:
    """A user with events but no users row has a NULL plan, not '' (join_use_nulls)."""
    engine = clickhouse_default_joins
    data = {
        "name": "events",
        "activation": {
            "mode": "first_event",
            "source": "events",
            "user_id": "user_id",
            "occurred_at": "occurred_at",
            # Warehouse columns are rarely Nullable in ClickHouse; the loader makes them so.
            "users": {
                "source": "SELECT user_id, assumeNotNull(plan) AS plan FROM users",
                "user_id": "user_id",
                "attributes": {"plan": "plan"},
            },
        },
        "responses": {
            "source": "responses",
            "response_id": "response_id",
            "user_id": "user_id",
            "responded_at": "responded_at",
            "score": "score",
        },
        "scale": {"min": 1, "max": 5},
        "sentiment": {"source": "score", "positive_min": 4, "negative_max": 2},
        "segments": ["plan"],
        "source_dialect": "clickhouse",
    }
    spec = spec_from_dict(data)
    events = pd.DataFrame({"user_id": ["u1", "u2"], "occurred_at": ["2024-01-01", "2024-01-02"]})
    events["occurred_at"] = pd.to_datetime(events["occurred_at"]).astype("datetime64[us]")
    users = pd.DataFrame({"user_id": ["u1"], "plan": ["pro"]})
    frames = _frames(
        [], [("r1", "u1", "2024-01-03", 5.0, None), ("r2", "u2", "2024-01-03", 1.0, None)]
    )
    engine.load_table("events", events, {"user_id": "string", "occurred_at": "timestamp"})
    engine.load_table("users", users, {"user_id": "string", "plan": "string"})
    engine.load_table("responses", frames.responses, RESP_TYPES)
    reference = SourceFrames(responses=frames.responses, activations=events, users=users)
    grouping = Grouping(("plan",))
    tree = aggregate_query(spec, grouping)
    assert _diffs(engine, spec, reference, tree.sql("clickhouse"), grouping)
    assert not _diffs(engine, spec, reference, render(tree, "clickhouse"), grouping)


@pytest.mark.parametrize("engine_name", ["postgres", "sqlite", "datafusion"])
def test_integer_division_truncates_unless_cast(
    get_engine: EngineFactory, engine_name: str
) -> None:
    """Hand-written SUM(int) / COUNT(*) truncates here; the check flags it, the builder casts."""
    engine = get_engine(engine_name)
    engine.load_table("ints", pd.DataFrame({"x": [1, 3]}), {"x": "integer"})
    typed = sqlglot.parse_one("SELECT MAX(x) / COUNT(*) AS r FROM ints", read="postgres")
    assert float(engine.query(render(typed, engine.dialect))["r"][0]) == 1.0
    assert [c for c, _ in check_statement("ratio", typed, engine.dialect, {})] == ["division"]
    neutral = exp.select(
        exp.alias_(
            exp.Div(this=exp.Max(this=exp.column("x")), expression=exp.Count(this=exp.Star())), "r"
        )
    ).from_(exp.to_table("ints"))
    assert float(engine.query(render(neutral, engine.dialect))["r"][0]) == 1.5
    assert check_statement("ratio", neutral, engine.dialect, {}) == []


def test_datafusion_needs_typed_nulls_in_the_user_rows(
    get_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DataFusion types a UNION column from its first branch: SUM over bare NULL fails."""
    engine = get_engine("datafusion")
    _load(engine, WINDOW_DATA)
    monkeypatch.setattr(facts_module, "_typed_null", lambda name: exp.Null())
    with pytest.raises(Exception, match="SUM not supported for Null"):
        engine.query(render(aggregate_query(WINDOW), "postgres"))
    monkeypatch.undo()
    assert not _diffs(
        engine, WINDOW, WINDOW_DATA, render(aggregate_query(WINDOW), "postgres"), Grouping()
    )


@pytest.mark.xfail(
    raises=AssertionError,
    strict=True,
    reason="SQLite stores timestamps as text; its date functions keep milliseconds only",
)
def test_sqlite_compares_microseconds(get_engine: EngineFactory) -> None:
    """A response 1 microsecond before the window end counts (fails: SQLite rounds to ms)."""
    engine = get_engine("sqlite")
    data = _frames(
        [("u1", "2024-01-01 10:00:00.250000", "a")],
        [("r1", "u1", "2024-01-31 10:00:00.249999", 4.0, None)],
    )
    _load(engine, data)
    assert not _diffs(engine, WINDOW, data, render(aggregate_query(WINDOW), "sqlite"), Grouping())


# --- traps shown on the text (targets without a local engine) ----------------------------------

TZ_WEEKS = _spec(
    window_days=30,
    timezone="America/New_York",
    reporting_timezone="Europe/Berlin",
    sentiment={"source": "label_then_score", "labels": LABELS},
)


def _week_query() -> exp.Expr:
    return aggregate_query(TZ_WEEKS, Grouping(("persona",), "responded", "week"))


def _month_query() -> exp.Expr:
    return aggregate_query(WINDOW, Grouping((), "activated", "month"))


def _view() -> exp.Expr:
    return facts_view(TZ_WEEKS)


def _filter_count() -> exp.Expr:
    return sqlglot.parse_one("SELECT COUNT(*) FILTER (WHERE x > 1) AS n FROM t")


def _interval_add() -> exp.Expr:
    return sqlglot.parse_one("SELECT t + INTERVAL '30 days' AS e FROM x", read="postgres")


def _average() -> exp.Expr:
    return sqlglot.parse_one("SELECT AVG(x) AS a FROM t")


def _unordered_row_number() -> exp.Expr:
    return sqlglot.parse_one("SELECT ROW_NUMBER() OVER (PARTITION BY u) AS rn FROM t")


TRAPS: list[tuple[str, Lint, Callable[[], exp.Expr]]] = [
    ("mysql", L.FILTER, _filter_count),
    ("oracle", L.FILTER, _filter_count),
    ("redshift", L.FILTER, _filter_count),
    ("redshift", L.AVG_INTEGER, _average),
    ("tsql", L.AVG_INTEGER, _average),
    ("tsql", L.INTERVAL_ADD, _interval_add),
    ("sqlite", L.INTERVAL_ADD, _interval_add),
    ("oracle", L.PLURAL_UNITS, _interval_add),
    ("spark", L.DATE_ADD_DROPS_TIME, _month_query),
    ("sqlite", L.SQLITE_DATE, _month_query),
    ("sqlite", L.SQLITE_TRUNC, _month_query),
    ("oracle", L.TRUNCATION_MISSING, _month_query),
    ("mysql", L.YEAR_ZERO, _month_query),
    ("mysql", L.ROUNDED_DATETIME, _month_query),
    ("trino", L.MILLISECOND_TIMESTAMP, _week_query),
    ("athena", L.MILLISECOND_TIMESTAMP, _week_query),
    ("clickhouse", L.SECONDS_ONLY_DATETIME, _week_query),
    ("clickhouse", L.AT_TIME_ZONE, _week_query),
    ("bigquery", L.SUNDAY_WEEKS, _week_query),
    ("bigquery", L.DATETIME_AS_TIMESTAMP, _week_query),
    ("snowflake", L.SESSION_WEEK, _week_query),
    ("tsql", L.DATEFIRST_WEEK, lambda: aggregate_query(WINDOW, Grouping((), "responded", "week"))),
    ("tsql", L.WINDOW_CONSTANT, lambda: facts_view(WINDOW)),
    ("tsql", L.UNORDERED_ROW_NUMBER, _unordered_row_number),
    ("oracle", L.UNORDERED_ROW_NUMBER, _unordered_row_number),
    ("oracle", L.BOOLEAN_LITERAL, _view),
    ("oracle", L.MIXED_STAR, _view),
    ("oracle", L.CLOB, _view),
    ("duckdb", L.CONSTANT_FLAG, _view),
]


def _found(lint: Lint, sql: str, dialect: str) -> list[str]:
    read = sqlglot_name(dialect)
    try:
        tree = sqlglot.parse_one(sql, read=read)
    except sqlglot.errors.ParseError:
        tree = exp.Null()
    return lint.find(sql, masked(sql, read), tree)


@pytest.mark.parametrize(
    ("dialect", "lint", "build"),
    [pytest.param(d, lint, b, id=f"{d}-{lint.message[:40]}") for d, lint, b in TRAPS],
)
def test_trap_is_in_plain_sqlglot_and_gone_after_render(
    dialect: str, lint: Lint, build: Callable[[], exp.Expr]
) -> None:
    """Plain sqlglot shows the pattern the target rejects; render() neither shows it nor fails."""
    tree = build()
    assert _found(lint, tree.sql(dialect=sqlglot_name(dialect), pretty=True), dialect)
    assert not _found(lint, render(tree, dialect), dialect)
    assert check_statement("trap", tree, dialect, {}) == []


def test_snowflake_aliases_are_quoted_where_referenced_quoted() -> None:
    """Unquoted aliases fold to upper case on Snowflake; every quoted reference must match."""
    sql = render(facts_view(TZ_WEEKS), "snowflake")
    tree = sqlglot.parse_one(sql, read="snowflake")
    unquoted = {a.name for a in tree.find_all(exp.TableAlias) if a.this and not a.this.quoted}
    quoted_refs = {
        c.table for c in tree.find_all(exp.Column) if c.args.get("table") and c.args["table"].quoted
    }
    assert unquoted and quoted_refs
    assert not unquoted & quoted_refs


# --- the check command -------------------------------------------------------------------------


def test_check_finds_integer_division() -> None:
    """A division of two integers fails the type check where no transform forces decimals."""
    tree = sqlglot.parse_one("SELECT SUM(1) / COUNT(*) AS r FROM t")
    problems = check_statement("ratio", tree, "duckdb", {})
    assert [check for check, _ in problems] == ["division"]
    assert check_statement("ratio", tree, "postgres", {}) == []


def test_check_finds_unstable_text() -> None:
    """Text that changes when parsed and generated again fails the stability check."""
    tree = sqlglot.parse_one("SELECT x FROM t ORDER BY x NULLS LAST", read="duckdb")
    assert unstable(tree.sql("tsql", pretty=True), "tsql")
    assert unstable(render(tree, "tsql"), "tsql") is None


def test_check_passes_for_every_bundled_spec_and_dialect() -> None:
    """``cfs-semantic check`` exits 0 with one ok line per dialect for the bundled specs."""
    done = run_cli("check")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line[:4] in {"ok  ", "FAIL"}]
    assert len(lines) == len(SUPPORTED_DIALECTS)
    assert all(line.startswith("ok") for line in lines)


def _spec_copy(tmp_path: Path, example: str, **changes: Any) -> Path:
    source = EXAMPLES[example]
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    for table in data.get("tables", {}).values():
        table["path"] = str((source.parent / table["path"]).resolve())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    target = tmp_path / "spec.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


def test_check_names_an_unknown_column_with_a_suggestion(tmp_path: Path) -> None:
    """A mapped column the SELECT source does not project fails with its name and a hint."""
    path = _spec_copy(tmp_path, "ravenstack", activation__occurred_at="usage_dat")
    done = run_cli("check", str(path), "--dialect", "postgres", "--jobs", "1")
    assert done.returncode == 1
    assert "unknown column 'usage_dat'" in done.stdout
    assert "did you mean 'usage_date'?" in done.stdout


def test_check_fails_a_dialect_that_cannot_convert_the_spec_zone(tmp_path: Path) -> None:
    """SQLite cannot read Europe/Berlin: its line fails, PostgreSQL's passes, exit 1."""
    path = _spec_copy(
        tmp_path, "telecom_nps", timezone="Europe/Berlin", dialects=["postgres", "sqlite"]
    )
    done = run_cli("check", str(path), "--jobs", "1")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith("ok   postgres") for line in lines)
    assert any(line.startswith("FAIL sqlite") for line in lines)
    assert "cannot convert time zone Europe/Berlin" in done.stdout


def test_readme_support_table_matches_the_capability_table() -> None:
    """The README says "executed" exactly for the dialects CI runs on an engine."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Warehouse support", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[1].strip(): cells[2]
        for line in section.splitlines()
        if line.startswith("| ") and (cells := line.split("|"))[1].strip() in RULES
    }
    assert set(rows) == set(RULES)
    for name, status in rows.items():
        executed = RULES[name].executed_on is not None
        assert ("executed on" in status) == executed, name
        assert ("syntax-checked and linted only" in status) == (not executed), name

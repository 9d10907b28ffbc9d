"""The query matrix run through Cube's compiler, and the rule for comparing it with the reference.

Every subject (a shared case or a real-data example) gets the generated Cube model of its spec;
all models go into one folder so that Cube compiles once and answers every query in one harness
call. A query asks the analyst view for every public measure, grouped by nothing, by one segment,
or by one time dimension at one grain (with a date range around all data, so that its SQL has
bound parameters), in UTC or in a zone with DST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlglot import exp

from cfs_semantic.cases import COLUMN_TYPES, Case, build_spec
from cfs_semantic.contract import OUTPUT_COLUMNS, TIME_DIMENSIONS, time_column
from cfs_semantic.dialects import render
from cfs_semantic.engines import Engine
from cfs_semantic.engines.base import quoted_table
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import Grouping, SourceFrames, aggregate
from cfs_semantic.runner import LocalRun
from cfs_semantic.spec import Grain, Spec
from cfs_semantic.sql.aggregate import facts_view
from generators.cube_model import cube_model, facts_table
from generators.emit import dump_yaml
from tests.kpi_cases import EXAMPLES, cases

TIMEZONES = ("UTC", "America/New_York")
"""UTC and one zone with DST changes (2024-03-10 and 2024-11-03)."""

CUBE_DIALECTS = {
    "postgres": "postgres",
    "duckdb": "duckdb",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "databricks": "databricks",
    "trino": "trino",
    "mysql": "mysql",
    "mssql": "tsql",
}
"""Cube dialect -> sqlglot dialect to parse Cube's SQL with."""

DATE_RANGE = ("2000-01-01", "2099-12-31")
"""A range around all data: time queries then carry parameters, as Cube's queries usually do."""

USER_LEVEL_ONLY = ("activated_users", "response_rate")
"""Measures compared only for user-level groupings (see :func:`comparable`)."""

_DUCKDB_TYPES = {
    "VARCHAR": "string",
    "DATE": "timestamp",
    "TIMESTAMP": "timestamp",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "DOUBLE": "float",
    "BOOLEAN": "boolean",
}
_PG_PLACEHOLDER = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class Subject:
    """One spec with its input tables: a shared case or a real-data example.

    Attributes:
        name: The case or example name (unique; it names the spec and the cube).
        spec: The spec.
        tables: Table name -> (rows, column name -> logical type), to load into an engine.
        frames: The source rows for the pandas reference.
    """

    name: str
    spec: Spec
    tables: dict[str, tuple[pd.DataFrame, dict[str, str]]]
    frames: SourceFrames


@dataclass(frozen=True)
class MatrixQuery:
    """One cell of the matrix: a subject, a grouping and a time zone."""

    subject: str
    grouping: Grouping
    timezone: str

    @property
    def label(self) -> str:
        """A readable name for failure messages."""
        by = ", ".join(self.grouping.columns()) or "overall"
        return f"{self.subject} by {by} in {self.timezone}"


def case_subject(case: Case) -> Subject:
    """Return a shared case as a subject."""
    tables = {name: (frame, case.types[name]) for name, frame in case.tables.items()}
    return Subject(case.name, case.spec, tables, case.frames())


def example_subject(spec_path: Path) -> Subject:
    """Return a real-data example as a subject, its files read by the project's runner."""
    run = LocalRun.open(spec_path)
    tables = {}
    for name in run.spec.tables:
        table = quoted_table(name)
        frame = run.con.execute(exp.select("*").from_(table).sql("duckdb")).df()
        described = run.con.execute(exp.Describe(this=table).sql("duckdb")).fetchall()
        tables[name] = (frame, {row[0]: _DUCKDB_TYPES[str(row[1])] for row in described})
    return Subject(run.spec.name, run.spec, tables, run.frames())


DST_ACTIVATIONS = [
    ("u1", "2024-03-01 12:00:00", "web"),
    ("u2", "2024-03-10 06:30:00", "email"),  # 01:30 EST, half an hour before the change
    ("u3", "2024-10-30 12:00:00", None),
    ("u4", "2024-11-03 05:30:00", "web"),  # 01:30 EDT, the first of the two 01:30s
]
DST_RESPONSES = [
    ("r1", "u1", "2024-03-10 04:30:00", 5.0, "onboarding"),  # 2024-03-09 23:30 EST
    ("r2", "u1", "2024-03-10 05:30:00", 4.0, "onboarding"),  # 2024-03-10 00:30 EST
    ("r3", "u2", "2024-03-11 03:30:00", 2.0, "billing"),  # Sunday 2024-03-10 23:30 EDT
    ("r4", "u2", "2024-04-01 03:30:00", None, None),  # 2024-03-31 23:30 EDT, no journey
    ("r5", "u3", "2024-11-03 05:30:00", 3.0, "billing"),  # 01:30 EDT
    ("r6", "u3", "2024-11-03 06:30:00", 1.0, None),  # 01:30 EST, the hour repeats
    ("r7", "u4", "2024-11-04 04:59:59", 4.0, "support"),  # 2024-11-03 23:59:59 EST
]


def dst_subject() -> Subject:
    """A small subject whose rows sit next to the 2024 DST changes of America/New_York."""
    spec = spec_from_dict(
        build_spec(
            "dst_edges",
            {
                "scale": {"preset": "1-5"},
                "sentiment": {"source": "score"},
                "segments": ["channel", "journey"],
            },
            ["channel"],
            ["journey"],
        ),
        file="tests/cube_matrix.py",
    )
    activations = pd.DataFrame(DST_ACTIVATIONS, columns=["user_id", "activated_at", "channel"])
    responses = pd.DataFrame(
        DST_RESPONSES, columns=["response_id", "user_id", "responded_at", "score", "journey"]
    )
    for frame, column in ((activations, "activated_at"), (responses, "responded_at")):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    types = {c: COLUMN_TYPES.get(c, "string") for c in [*activations, *responses]}
    tables = {
        "activations": (activations, {c: types[c] for c in activations}),
        "responses": (responses, {c: types[c] for c in responses}),
    }
    return Subject(spec.name, spec, tables, SourceFrames(responses, activations))


def subjects() -> list[Subject]:
    """Every shared case, the DST edges and every real-data example."""
    out = [case_subject(case) for case in cases()] + [dst_subject()]
    out += [example_subject(path) for path in EXAMPLES.values()]
    names = [subject.name for subject in out]
    assert len(set(names)) == len(names), f"subject names must be unique: {names}"
    return out


def groupings(spec: Spec) -> list[Grouping]:
    """Overall, each segment alone, and each time dimension at each grain."""
    out = [Grouping()] + [Grouping((segment,)) for segment in spec.segments]
    for time_dim in TIME_DIMENSIONS:
        out += [Grouping((), time_dim, grain.value) for grain in Grain]
    return out


def matrix(subject: Subject) -> list[MatrixQuery]:
    """The subject's queries: every grouping in UTC, time groupings also in the DST zone."""
    out = []
    for grouping in groupings(subject.spec):
        zones = TIMEZONES if grouping.time_dim else TIMEZONES[:1]
        out += [MatrixQuery(subject.name, grouping, zone) for zone in zones]
    return out


def view_name(spec: Spec) -> str:
    """The analyst view of a spec's Cube model."""
    return str(cube_model(spec)["views"][0]["name"])


def public_measures(spec: Spec) -> list[str]:
    """The measures the analyst view exposes, in model order."""
    cube = cube_model(spec)["cubes"][0]
    return [m["name"] for m in cube["measures"] if m.get("public", True)]


def cube_query(
    spec: Spec, grouping: Grouping, timezone: str, date_range: bool = True
) -> dict[str, Any]:
    """Return the Cube REST query for every public measure of ``spec`` by ``grouping``.

    A time grouping also gets ``DATE_RANGE`` (unless ``date_range`` is false), so that its SQL
    carries bound parameters.
    """
    view = view_name(spec)
    query: dict[str, Any] = {
        "measures": [f"{view}.{m}" for m in public_measures(spec)],
        "dimensions": [f"{view}.{s}" for s in grouping.segments],
        "timezone": timezone,
        "order": [{"id": f"{view}.{s}", "desc": False} for s in grouping.segments],
    }
    if grouping.time_dim and grouping.grain:
        member = f"{view}.{TIME_DIMENSIONS[grouping.time_dim]}"
        time: dict[str, Any] = {"dimension": member, "granularity": grouping.grain}
        if date_range:
            time["dateRange"] = list(DATE_RANGE)
        query["timeDimensions"] = [time]
        query["order"].append({"id": member, "desc": False})
    return query


def write_models(all_subjects: list[Subject], directory: Path) -> Path:
    """Write every subject's generated cube and view into one model folder."""
    for subject in all_subjects:
        model = cube_model(subject.spec)
        for kind in ("cubes", "views"):
            target = directory / kind / f"{subject.name}.yml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump_yaml({kind: model[kind]}), encoding="utf-8")
    return directory


def load_subject(engine: Engine, subject: Subject) -> None:
    """Load the subject's tables and create its facts view from the project's own SQL."""
    for name, (frame, types) in subject.tables.items():
        engine.load_table(name, frame, types)
    engine.execute(render(facts_view(subject.spec, facts_table(subject.spec)), engine.dialect))


def drop_subject(engine: Engine, subject: Subject) -> None:
    """Drop the subject's facts view (its tables are replaced by the next subject's)."""
    view = quoted_table(facts_table(subject.spec))
    engine.execute(exp.Drop(tables=[view], kind="VIEW", exists=True).sql(engine.dialect))


def bind_for(engine: Engine, sql: str, params: list[Any]) -> tuple[str, Any]:
    """Return Cube's SQL and parameters in the engine's parameter style.

    DuckDB takes Cube's ``?`` placeholders as they are. PostgreSQL's ``$n`` become psycopg's
    named placeholders (``%(pn)s``), so values are still bound by the driver, never pasted.
    """
    if engine.name == "duckdb":
        return sql, list(params)
    if engine.name == "postgres":
        text = _PG_PLACEHOLDER.sub(r"%(p\1)s", sql.replace("%", "%%"))
        return text, {f"p{index}": value for index, value in enumerate(params, start=1)}
    raise ValueError(f"no parameter binding for engine {engine.name!r}")


def result_frame(frame: pd.DataFrame, spec: Spec, grouping: Grouping) -> pd.DataFrame:
    """Rename Cube's ``<view>__<member>`` columns to the contract's output names."""
    view = cube_model(spec)["views"][0]
    prefix = f"{view.get('sql_alias', view['name'])}__"
    renamed = {str(column): str(column).removeprefix(prefix) for column in frame.columns}
    if grouping.time_dim and grouping.grain:
        member = f"{TIME_DIMENSIONS[grouping.time_dim]}_{grouping.grain}"
        renamed[prefix + member] = time_column(grouping.time_dim, grouping.grain)
    return frame.rename(columns=renamed)


def is_user_level(spec: Spec, grouping: Grouping) -> bool:
    """True when every group column is a user attribute or the activation time."""
    user_attrs = set(spec.user_attributes())
    time_ok = grouping.time_dim in (None, "activated")
    return time_ok and all(segment in user_attrs for segment in grouping.segments)


def reference(subject: Subject, grouping: Grouping, timezone: str) -> pd.DataFrame:
    """The pandas reference with the query's time zone as the reporting time zone."""
    spec = subject.spec.model_copy(update={"reporting_timezone": timezone})
    return aggregate(spec, subject.frames, grouping)


def comparable(
    actual: pd.DataFrame, spec: Spec, grouping: Grouping
) -> tuple[pd.DataFrame, tuple[str, ...], pd.DataFrame]:
    """Apply the comparison rule of docs/cube.md to Cube's result.

    For user-level groupings (overall, user attributes, activation time) every measure is
    compared as it is. For response-level groupings (a response attribute or the response
    time) Cube's rows are the facts rows, so the user rows form a group of their own whose key
    is NULL: a group without eligible responses is dropped (the reference has no such group),
    and ``activated_users`` / ``response_rate`` are left out, because Cube counts the activated
    users inside the group while the reference counts those of the user-level part.

    Returns:
        Cube's rows to compare, the columns to compare, and the dropped rows.
    """
    if is_user_level(spec, grouping):
        return actual, OUTPUT_COLUMNS, actual.iloc[0:0]
    only_users = actual["eligible_responses"].fillna(0) == 0
    columns = tuple(c for c in OUTPUT_COLUMNS if c not in USER_LEVEL_ONLY)
    kept = actual[~only_users].reset_index(drop=True)
    return kept, columns, actual[only_users].reset_index(drop=True)

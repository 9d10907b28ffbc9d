"""Render SQL trees for each target dialect: capabilities as data, transforms before generation.

Every statement goes through :func:`render`: the tree is copied, the target's transforms run on
it (in order), and sqlglot generates the text with unsupported features raised as errors.
:data:`RULES` holds one :class:`DialectRules` per target: what the target can and cannot do, the
transforms that follow from it, the patterns its lint rejects, and where CI executes it.

Example::

    from cfs_semantic.dialects import render
    from cfs_semantic.sql.aggregate import aggregate_query

    sql = render(aggregate_query(spec), "oracle")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlglot import ErrorLevel, exp

from cfs_semantic import lints as L
from cfs_semantic.lints import Lint
from cfs_semantic.time_sql import (
    interval_arithmetic,
    singular_interval_units,
    sqlite_timestamps,
    time_functions,
)
from cfs_semantic.transforms import (
    Transform,
    UnsupportedFeature,
    average_as_double,
    cast_types,
    clickhouse_join_nulls,
    drop_constant_window_order,
    emulate_nulls_last,
    filter_to_case,
    fold_constant_flags,
    predicate_booleans,
    qualify_mixed_star,
    quote_referenced_aliases,
    require_row_number_order,
    table_aliases,
)

logger = logging.getLogger(__name__)

__all__ = ["RULES", "DialectRules", "UnsupportedFeature", "render", "sqlglot_name", "transform"]

T = exp.DType


@dataclass(frozen=True)
class DialectRules:
    """What one target dialect supports, and how the project renders for it.

    Attributes:
        name: The project's dialect name (as in a spec's ``dialects``).
        sqlglot: sqlglot's dialect name.
        executed_on: The engine CI runs this dialect's SQL on, or None (syntax-checked only).
        filter_clause: ``AGG(...) FILTER (WHERE ...)`` is accepted.
        boolean_literals: TRUE / FALSE are valid predicates.
        integer_division: ``int / int`` truncates. sqlglot already casts the numerator of a
            neutral division for such targets; the check verifies it on the typed tree.
        avg_truncates: ``AVG`` of an integer column returns an integer.
        time_zones: IANA time zone conversion is possible.
        nulls_order: ``NULLS FIRST`` / ``NULLS LAST`` is accepted in ORDER BY.
        interval_arithmetic: ``timestamp + INTERVAL ...`` is accepted.
        timestamp_type: The type naive timestamps are cast to (keeps microseconds).
        extra: Target-specific transforms, run after the generic ones.
        lints: Patterns the target rejects.
        notes: Caveats for deployers (README support table).
    """

    name: str
    sqlglot: str
    executed_on: str | None = None
    filter_clause: bool = True
    boolean_literals: bool = True
    integer_division: bool = False
    avg_truncates: bool = False
    time_zones: bool = True
    nulls_order: bool = True
    interval_arithmetic: bool = True
    timestamp_type: str = "TIMESTAMP"
    extra: tuple[Transform, ...] = ()
    lints: tuple[Lint, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def transforms(self) -> list[Transform]:
        """Return the transforms, in order, that :func:`render` applies for this target."""
        steps: list[Transform] = [
            table_aliases,
            quote_referenced_aliases,
            qualify_mixed_star,
            fold_constant_flags,
            drop_constant_window_order,
            singular_interval_units,
        ]
        if not self.interval_arithmetic:
            steps.append(interval_arithmetic)
        steps.append(time_functions(self.name))
        if not self.filter_clause:
            steps.append(filter_to_case)
        if self.avg_truncates:
            steps.append(average_as_double)
        if not self.boolean_literals:
            steps.append(predicate_booleans)
        if not self.nulls_order:
            steps.append(emulate_nulls_last)
        if self.timestamp_type != "TIMESTAMP":
            steps.append(cast_types({T.TIMESTAMP: self.timestamp_type}, self.sqlglot))
        return [*steps, *self.extra]


RULES: dict[str, DialectRules] = {
    "duckdb": DialectRules("duckdb", "duckdb", executed_on="DuckDB"),
    "postgres": DialectRules(
        "postgres",
        "postgres",
        executed_on="PostgreSQL (throwaway server) and DataFusion",
        integer_division=True,
    ),
    "snowflake": DialectRules(
        "snowflake",
        "snowflake",
        timestamp_type="TIMESTAMP_NTZ",
        lints=(L.SESSION_WEEK,),
        notes=(
            "weeks start on Monday through DAYOFWEEKISO, whatever WEEK_START is",
            "unquoted names fold to upper case: spec names must match the stored case",
        ),
    ),
    "bigquery": DialectRules(
        "bigquery",
        "bigquery",
        lints=(L.DATETIME_AS_TIMESTAMP, L.SUNDAY_WEEKS),
        notes=("the view name must be dataset-qualified unless the job has a default dataset",),
    ),
    "redshift": DialectRules(
        "redshift",
        "redshift",
        filter_clause=False,
        integer_division=True,
        avg_truncates=True,
        lints=(L.FILTER, L.AVG_INTEGER),
    ),
    "databricks": DialectRules(
        "databricks",
        "databricks",
        executed_on="Apache Spark (local PySpark; Databricks SQL is Spark SQL)",
        timestamp_type="TIMESTAMP_NTZ",
        lints=(L.DATE_ADD_DROPS_TIME,),
    ),
    "spark": DialectRules(
        "spark",
        "spark",
        executed_on="Apache Spark (local PySpark)",
        timestamp_type="TIMESTAMP_NTZ",
        lints=(L.DATE_ADD_DROPS_TIME,),
    ),
    "trino": DialectRules(
        "trino",
        "trino",
        integer_division=True,
        timestamp_type="TIMESTAMP(6)",
        lints=(L.MILLISECOND_TIMESTAMP,),
    ),
    "athena": DialectRules(
        "athena",
        "athena",
        integer_division=True,
        timestamp_type="TIMESTAMP(6)",
        lints=(L.MILLISECOND_TIMESTAMP,),
    ),
    "mysql": DialectRules(
        "mysql",
        "mysql",
        filter_clause=False,
        nulls_order=False,
        timestamp_type="DATETIME(6)",
        lints=(L.FILTER, L.NULLS_ORDER, L.ROUNDED_DATETIME, L.YEAR_ZERO),
        notes=("named time zones need the time zone tables (mysql_tzinfo_to_sql)",),
    ),
    "tsql": DialectRules(
        "tsql",
        "tsql",
        filter_clause=False,
        boolean_literals=False,
        integer_division=True,
        avg_truncates=True,
        time_zones=False,
        nulls_order=False,
        interval_arithmetic=False,
        timestamp_type="DATETIME2(6)",
        extra=(require_row_number_order("(SELECT NULL)", "tsql"),),
        lints=(
            L.FILTER,
            L.AVG_INTEGER,
            L.INTERVAL_ADD,
            L.NULLS_ORDER,
            L.AT_TIME_ZONE,
            L.BOOLEAN_LITERAL,
            L.WINDOW_CONSTANT,
            L.UNORDERED_ROW_NUMBER,
            L.DATEFIRST_WEEK,
        ),
        notes=("DATETRUNC needs SQL Server 2022 or Azure SQL", "spec time zones must be UTC"),
    ),
    "clickhouse": DialectRules(
        "clickhouse",
        "clickhouse",
        executed_on="ClickHouse (chdb, embedded)",
        timestamp_type="Nullable(DateTime64(6))",
        extra=(clickhouse_join_nulls,),
        lints=(L.SECONDS_ONLY_DATETIME, L.AT_TIME_ZONE),
        notes=("outer joins carry SETTINGS join_use_nulls = 1",),
    ),
    "sqlite": DialectRules(
        "sqlite",
        "sqlite",
        executed_on="SQLite",
        integer_division=True,
        time_zones=False,
        interval_arithmetic=False,
        extra=(sqlite_timestamps,),
        lints=(L.INTERVAL_ADD, L.AT_TIME_ZONE, L.SQLITE_TRUNC, L.SQLITE_DATE),
        notes=("timestamps are ISO text compared at millisecond precision",),
    ),
    "oracle": DialectRules(
        "oracle",
        "oracle",
        filter_clause=False,
        boolean_literals=False,
        interval_arithmetic=False,
        extra=(
            cast_types({T.TEXT: "VARCHAR2(4000)"}, "oracle"),
            require_row_number_order("NULL", "oracle"),
        ),
        lints=(
            L.FILTER,
            L.PLURAL_UNITS,
            L.BOOLEAN_LITERAL,
            L.MIXED_STAR,
            L.UNORDERED_ROW_NUMBER,
            L.TRUNCATION_MISSING,
            L.TABLE_ALIAS_AS,
            L.CLOB,
        ),
        notes=("identifiers up to 128 characters (Oracle 12.2 or later)",),
    ),
}

#: Lints every target gets: constant boolean flags are folded away before generation.
COMMON_LINTS: tuple[Lint, ...] = (L.CONSTANT_FLAG,)


def sqlglot_name(dialect: str) -> str:
    """Return sqlglot's name for a target dialect."""
    return RULES[dialect].sqlglot if dialect in RULES else dialect


def transform(tree: exp.Expr, dialect: str) -> exp.Expr:
    """Return a copy of ``tree`` with the target's transforms applied (no text yet).

    Raises:
        UnsupportedFeature: The tree needs something the target cannot express.
    """
    node = tree.copy()
    rules = RULES.get(dialect)
    for step in rules.transforms() if rules else []:
        node = step(node)
    return node


def render(tree: exp.Expr, dialect: str, pretty: bool = True) -> str:
    """Return ``tree`` as SQL text for ``dialect`` after the dialect's transforms.

    Args:
        tree: A dialect-neutral statement from :mod:`cfs_semantic.sql`.
        dialect: A target dialect name (see :data:`RULES`).
        pretty: Format over several lines.

    Returns:
        The SQL text.

    Raises:
        UnsupportedFeature: The spec needs something the target cannot express.
        sqlglot.errors.UnsupportedError: sqlglot cannot generate a construct for the target.
    """
    node = transform(tree, dialect)
    return node.sql(
        dialect=sqlglot_name(dialect), pretty=pretty, unsupported_level=ErrorLevel.RAISE
    )

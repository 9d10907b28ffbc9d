"""Timestamp arithmetic, truncation and time zone conversion per target dialect.

The neutral tree uses ``DateAdd`` (the window end), ``TimestampTrunc`` (day / week / month
buckets, weeks start on Monday) and ``ConvertTimezone`` (naive local <-> naive UTC). sqlglot's
own rendering is right for some targets and wrong for others (measured on sqlglot 30.31):

* Spark ``DATE_ADD(ts, n)`` returns a DATE: the time of day is lost, and with it part of the
  window's last day.
* SQLite ``DATE(ts, '30 DAY')`` also drops the time; ``DATETIME()`` drops fractional seconds;
  ``TIMESTAMP_TRUNC`` does not exist; there is no time zone database.
* Oracle has no ``DATE_ADD`` or ``TIMESTAMP_TRUNC`` (``TRUNC(ts, 'MM')`` instead) and rejects
  plural interval units; ``ts AT TIME ZONE`` reads a naive value in the session zone.
* BigQuery weeks start on Sunday unless ``ISOWEEK``; ``TIMESTAMP_TRUNC`` takes TIMESTAMP values
  while the project's timestamps are DATETIME; its generated zone conversion is not valid.
* SQL Server's ``DATETRUNC(WEEK, ...)`` depends on ``@@DATEFIRST``; ``AT TIME ZONE`` only knows
  Windows zone names.
* Snowflake's ``DATE_TRUNC('WEEK', ...)`` depends on the ``WEEK_START`` session parameter.
* MySQL's generated truncation counts from year 0; ClickHouse truncates weeks and months to
  ``Date`` and ``DateTime`` keeps whole seconds only; Trino's ``AT_TIMEZONE`` on a naive value
  assumes the session zone.
"""

from __future__ import annotations

from sqlglot import exp

from cfs_semantic.transforms import (
    SQLITE_TIMESTAMP,
    Transform,
    UnsupportedFeature,
    fill,
    rewrite_up,
)

_SQLITE_TRUNC = {
    "DAY": "STRFTIME('%Y-%m-%d 00:00:00', :t)",
    "WEEK": "STRFTIME('%Y-%m-%d 00:00:00', :t, '-6 days', 'weekday 1')",
    "MONTH": "STRFTIME('%Y-%m-01 00:00:00', :t)",
}
_ORACLE_TRUNC = {"DAY": "DD", "WEEK": "IW", "MONTH": "MM"}
_MYSQL_TRUNC = {
    "DAY": "CAST(DATE(:t) AS DATETIME(6))",
    "WEEK": "CAST(SUBDATE(DATE(:t), WEEKDAY(:t)) AS DATETIME(6))",
    "MONTH": "CAST(DATE_FORMAT(:t, '%Y-%m-01') AS DATETIME(6))",
}
_SNOWFLAKE_WEEK = "DATEADD(DAY, 1 - DAYOFWEEKISO(:t), DATE_TRUNC('DAY', :t))"

_CONVERT = {
    "trino": "CAST(AT_TIMEZONE(WITH_TIMEZONE(:t, :src), :tgt) AS TIMESTAMP(6))",
    "athena": "CAST(AT_TIMEZONE(WITH_TIMEZONE(:t, :src), :tgt) AS TIMESTAMP(6))",
    "bigquery": "DATETIME(TIMESTAMP(:t, :src), :tgt)",
    "oracle": "CAST(FROM_TZ(CAST(:t AS TIMESTAMP), :src) AT TIME ZONE :tgt AS TIMESTAMP)",
    "clickhouse": "toDateTime64(toString(toDateTime64(toString(:t), 6, :src), :tgt), 6)",
}
_NO_ZONES = {
    "sqlite": "SQLite has no time zone database (only the process's local time)",
    "tsql": "SQL Server's AT TIME ZONE accepts Windows zone names only, not IANA names",
}


_UNITS = ("SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "YEAR")


def _unit_name(node: exp.Expr) -> str:
    unit = node.args.get("unit")
    name = unit.name.upper() if unit is not None else "DAY"
    name = name[:-1] if name.endswith("S") and name[:-1] in _UNITS else name
    if name not in _UNITS:
        raise UnsupportedFeature(f"unsupported interval unit {name!r} in {node.sql()}")
    return name


def _count(node: exp.Expr, value: exp.Expr) -> int:
    text = value.name if isinstance(value, exp.Literal) else ""
    sign = -1 if isinstance(value, exp.Neg) else 1
    if sign < 0 and isinstance(value.this, exp.Literal):
        text = value.this.name
    try:
        return sign * int(text.strip())
    except ValueError:
        raise UnsupportedFeature(
            f"cannot render {node.sql()}: only a whole-number interval count is supported"
        ) from None


def interval_arithmetic(tree: exp.Expr) -> exp.Expr:
    """``ts + INTERVAL '30' DAY`` (and ``-``) -> ``DateAdd``, with singular units.

    SQL Server and SQLite have no interval arithmetic, and a PostgreSQL ``INTERVAL '30 days'``
    in a source query comes out as ``INTERVAL '30' DAYS``, which Oracle rejects.
    """

    def rewrite(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Add | exp.Sub):
            return node
        left, right = node.this, node.expression
        if isinstance(left, exp.Interval) and isinstance(node, exp.Add):
            left, right = right, left
        if not isinstance(right, exp.Interval) or isinstance(left, exp.Interval):
            return node
        count = _count(node, right.this)
        count = -count if isinstance(node, exp.Sub) else count
        return exp.DateAdd(
            this=left, expression=exp.Literal.number(count), unit=exp.var(_unit_name(right))
        )

    return rewrite_up(tree, rewrite)


def singular_interval_units(tree: exp.Expr) -> exp.Expr:
    """``INTERVAL '30' DAYS`` -> ``INTERVAL '30' DAY`` (plural units are not standard SQL)."""
    for interval in tree.find_all(exp.Interval):
        if interval.args.get("unit") is not None:
            interval.set("unit", exp.var(_unit_name(interval)))
    return tree


def _add_interval(dialect: str, node: exp.DateAdd) -> exp.Expr:
    unit, count = _unit_name(node), _count(node, node.expression)
    if unit == "WEEK" and dialect in {"sqlite", "oracle"}:
        unit, count = "DAY", count * 7
    if dialect in {"spark", "databricks", "duckdb", "mysql"}:
        # INTERVAL '30' DAY: the form these dialects parse back to (stable re-rendering).
        interval = exp.Interval(this=exp.Literal.string(str(count)), unit=exp.var(unit))
        if dialect == "mysql":
            return exp.Anonymous(this="DATE_ADD", expressions=[node.this, interval])
        return exp.Add(this=node.this, expression=interval)
    if dialect == "sqlite":
        modifier = exp.Literal.string(f"{count:+d} {unit.lower()}s")
        return fill("STRFTIME(:fmt, :t, :m)", "sqlite", fmt=_fmt(), t=node.this, m=modifier)
    if dialect == "oracle":
        function = "NUMTOYMINTERVAL" if unit in {"MONTH", "YEAR"} else "NUMTODSINTERVAL"
        amount = exp.Anonymous(
            this=function, expressions=[exp.Literal.number(count), exp.Literal.string(unit)]
        )
        return exp.Add(this=node.this, expression=amount)
    if dialect == "bigquery":
        # INTERVAL (30) DAY: an INT64 expression, and stable when parsed back (a bare 30 comes
        # back as the string '30', which BigQuery does not document for one date part).
        count_sql = exp.paren(exp.Literal.number(count))
        return exp.DatetimeAdd(this=node.this, expression=count_sql, unit=exp.var(unit))
    return exp.DateAdd(this=node.this, expression=exp.Literal.number(count), unit=exp.var(unit))


def _fmt() -> exp.Literal:
    return exp.Literal.string(SQLITE_TIMESTAMP)


def _truncate(dialect: str, node: exp.TimestampTrunc) -> exp.Expr:
    grain = node.unit.name.upper() if node.unit is not None else ""
    if grain not in {"DAY", "WEEK", "MONTH"}:
        raise UnsupportedFeature(f"unsupported time grain {grain!r}; use day, week or month")
    value = node.this
    if dialect == "sqlite":
        return fill(_SQLITE_TRUNC[grain], "sqlite", t=value)
    if dialect == "oracle":
        unit = exp.Literal.string(_ORACLE_TRUNC[grain])
        return fill("CAST(TRUNC(:t, :u) AS TIMESTAMP)", "oracle", t=value, u=unit)
    if dialect == "mysql":
        return fill(_MYSQL_TRUNC[grain], "mysql", t=value)
    if dialect == "bigquery":
        unit_name = "ISOWEEK" if grain == "WEEK" else grain
        return exp.DatetimeTrunc(this=value, unit=exp.var(unit_name))
    if dialect == "tsql" and grain == "WEEK":
        return exp.TimestampTrunc(this=value, unit=exp.var("ISO_WEEK"))
    if dialect == "snowflake" and grain == "WEEK":
        return fill(_SNOWFLAKE_WEEK, "snowflake", t=value)
    if dialect == "clickhouse":
        # dateTrunc gives Date for weeks and months and DateTime (seconds) for days.
        return exp.cast(node, exp.DataType.build("Nullable(DateTime64(6))", dialect="clickhouse"))
    if dialect in {"spark", "databricks"}:
        # DATE_TRUNC returns a session-zone TIMESTAMP; the project's timestamps are NTZ.
        return exp.cast(node, exp.DataType.build("TIMESTAMP_NTZ", dialect="spark"))
    return node


def _convert(dialect: str, node: exp.ConvertTimezone) -> exp.Expr:
    source, target = node.args.get("source_tz"), node.args.get("target_tz")
    if dialect in _NO_ZONES:
        zones = ", ".join(z.name for z in (source, target) if z is not None and z.name != "UTC")
        raise UnsupportedFeature(
            f"{dialect}: cannot convert time zone {zones}: {_NO_ZONES[dialect]}. "
            f"Store timestamps in UTC and set timezone and reporting_timezone to UTC, "
            f"or remove {dialect} from the spec's dialects"
        )
    template = _CONVERT.get(dialect)
    if template is None:
        return node
    assert source is not None and target is not None
    return fill(template, dialect, t=node.args["timestamp"], src=source, tgt=target)


def time_functions(dialect: str) -> Transform:
    """Return the transform that rewrites DateAdd, TimestampTrunc and ConvertTimezone.

    Raises:
        UnsupportedFeature: (when applied) the target cannot express a conversion the spec
            needs, e.g. an IANA time zone on SQLite or SQL Server.
    """

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.DateAdd):
            return _add_interval(dialect, node)
        if isinstance(node, exp.TimestampTrunc):
            return _truncate(dialect, node)
        if isinstance(node, exp.ConvertTimezone):
            return _convert(dialect, node)
        return node

    def transform(tree: exp.Expr) -> exp.Expr:
        return rewrite_up(tree, rewrite)

    return transform


def sqlite_timestamps(tree: exp.Expr) -> exp.Expr:
    """``CAST(x AS TIMESTAMP)`` -> ``STRFTIME('%Y-%m-%d %H:%M:%f', x)`` on SQLite.

    SQLite stores timestamps as text; sqlglot's ``DATETIME(x)`` drops fractional seconds, so two
    responses in the same second would compare equal. The fixed-width text sorts correctly.
    """

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIMESTAMP):
            return fill("STRFTIME(:fmt, :t)", "sqlite", fmt=_fmt(), t=node.this)
        return node

    return rewrite_up(tree, rewrite)

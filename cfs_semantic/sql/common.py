"""Small builders shared by the SQL modules: quoted names, literals, flags, sources."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from cfs_semantic.errors import Problem, SpecError
from cfs_semantic.spec import SourceRef

FACT_FLAGS: tuple[str, ...] = (
    "is_eligible",
    "is_scored",
    "is_unscored",
    "is_invalid_score",
    "is_classified",
    "is_unmapped_label",
    "is_positive",
    "is_neutral",
    "is_negative",
)
"""0/1 columns of the facts relation; each counter is the sum of one of them."""


def col(name: str, table: str | None = None) -> exp.Column:
    """Return a quoted column reference, optionally qualified by a quoted table alias."""
    return exp.column(name, table=table, quoted=True)


def alias(expr: exp.Expr, name: str) -> exp.Expr:
    """Return ``expr AS "name"`` with the name quoted."""
    return exp.alias_(expr, name, quoted=True)


def lit(value: str) -> exp.Literal:
    """Return a string literal; sqlglot escapes quotes for each dialect."""
    return exp.Literal.string(value)


def flag(condition: exp.Expr) -> exp.Case:
    """Return ``CASE WHEN condition THEN 1 ELSE 0 END``."""
    return exp.Case().when(condition, exp.Literal.number(1)).else_(exp.Literal.number(0))


def null_safe_in(expr: exp.Expr, values: list[str]) -> exp.Expr:
    """Return ``expr IN (values)``, or FALSE for an empty list."""
    if not values:
        return exp.false()
    return exp.In(this=expr, expressions=[lit(v) for v in values])


def is_query(source: SourceRef) -> bool:
    """True when a spec source is a SELECT rather than a table name."""
    return source.query is not None


def parse_source(ref: SourceRef, dialect: str) -> exp.Expr:
    """Return a spec source as a table or a parenthesized query, ready to alias.

    A table name may be qualified (``schema.table``); each part is quoted as an identifier.
    A query must be exactly one SELECT (or WITH ... SELECT, or a set operation of them).
    """
    if ref.table is not None:
        source = ref.table
        parts = source.split(".")
        if not all(parts) or len(parts) > 3:
            raise SpecError(
                [Problem(f"invalid table name {source!r}", "use table or schema.table")]
            )
        identifiers = [exp.to_identifier(p, quoted=True) for p in parts]
        return exp.Table(
            this=identifiers[-1],
            db=identifiers[-2] if len(parts) > 1 else None,
            catalog=identifiers[-3] if len(parts) > 2 else None,
        )
    source = str(ref.query)
    try:
        statements = sqlglot.parse(source, read=dialect)
    except ParseError as err:
        raise SpecError(
            [
                Problem(
                    f"the source query does not parse: {err.errors[0]['description']}",
                    "fix the SELECT",
                )
            ]
        ) from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SpecError(
            [
                Problem(
                    "a source must be one table name or one SELECT statement",
                    "remove the other statements",
                )
            ]
        )
    return statements[0].subquery()


def to_utc(expr: exp.Expr, zone: str) -> exp.Expr:
    """Read a naive timestamp in ``zone`` and return it as naive UTC."""
    if zone == "UTC":
        return expr
    return exp.ConvertTimezone(source_tz=lit(zone), target_tz=lit("UTC"), timestamp=expr)


def from_utc(expr: exp.Expr, zone: str) -> exp.Expr:
    """Turn a naive UTC timestamp into naive local time of ``zone``."""
    if zone == "UTC":
        return expr
    return exp.ConvertTimezone(source_tz=lit("UTC"), target_tz=lit(zone), timestamp=expr)

"""Patterns a target rejects (or silently evaluates differently), checked on rendered SQL.

A lint is either a regular expression over the rendered text (by default with string literals
and quoted identifiers blanked, so that a label or a column name cannot trigger it) or a
predicate over the nodes of the statement parsed back in the target dialect.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

NodeTest = Callable[[exp.Expr], bool]


@dataclass(frozen=True)
class Lint:
    """One pattern a target rejects.

    Attributes:
        message: What is wrong, shown with the offending snippet.
        pattern: Regular expression (case-insensitive) searched in the SQL.
        raw: Search the SQL as rendered instead of the blanked text.
        node: Predicate over parsed nodes; a node for which it is true is reported.
    """

    message: str
    pattern: str | None = None
    raw: bool = False
    node: NodeTest | None = None

    def find(self, sql: str, masked: str, tree: exp.Expr) -> list[str]:
        """Return the offending snippets in ``sql`` / ``tree``."""
        found: list[str] = []
        if self.pattern is not None:
            text = sql if self.raw else masked
            found += [m.group(0) for m in re.finditer(self.pattern, text, re.IGNORECASE)]
        if self.node is not None:
            found += [n.sql()[:80] for n in tree.walk() if self.node(n)]
        return found


def masked(sql: str, dialect: str) -> str:
    """Return ``sql`` with string literals and quoted identifiers blanked, tokens spaced."""
    parts = []
    for token in Dialect.get_or_raise(dialect).tokenize(sql):
        if token.token_type == TokenType.STRING:
            parts.append("''")
        elif token.token_type == TokenType.IDENTIFIER:
            parts.append('"_"')
        else:
            parts.append(token.text)
    return " ".join(parts)


def _window_constant_key(node: exp.Expr) -> bool:
    order = node.args.get("order") if isinstance(node, exp.Window) else None
    return order is not None and any(
        isinstance(o.this, exp.Null | exp.Literal) for o in order.expressions
    )


def _unordered_row_number(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Window)
        and isinstance(node.this, exp.RowNumber)
        and not node.args.get("order")
    )


def _mixed_star(node: exp.Expr) -> bool:
    return (
        isinstance(node, exp.Select)
        and len(node.expressions) > 1
        and any(isinstance(p, exp.Star) for p in node.expressions)
    )


def _boolean_literal(node: exp.Expr) -> bool:
    return isinstance(node, exp.Boolean)


def _constant_case(node: exp.Expr) -> bool:
    return isinstance(node, exp.If) and isinstance(node.this, exp.Boolean)


def _average_of_uncast(node: exp.Expr) -> bool:
    if not isinstance(node, exp.Avg):
        return False
    argument = node.this
    return not (isinstance(argument, exp.Cast) and argument.to.is_type(*exp.DataType.REAL_TYPES))


def _function(*names: str) -> str:
    return r"\b(" + "|".join(names) + r")\s*\("


FILTER = Lint("aggregate FILTER (WHERE ...) is not supported", r"\bFILTER\s*\(\s*WHERE\b")
INTERVAL_ADD = Lint("timestamp + INTERVAL arithmetic is not supported", r"[+-]\s*INTERVAL\b")
NULLS_ORDER = Lint("NULLS FIRST / NULLS LAST is not supported", r"\bNULLS\s+(FIRST|LAST)\b")
AT_TIME_ZONE = Lint("AT TIME ZONE is not supported here", r"\bAT\s+TIME\s+ZONE\b")
BOOLEAN_LITERAL = Lint("TRUE / FALSE literals are not supported", node=_boolean_literal)
AVG_INTEGER = Lint(
    "AVG of a value not cast to a fractional type truncates integers",
    node=_average_of_uncast,
)
CONSTANT_FLAG = Lint("constant CASE WHEN TRUE / FALSE flag", node=_constant_case)
PLURAL_UNITS = Lint(
    "plural interval units (DAYS) are rejected",
    r"\bINTERVAL\s*'[^']*'\s*(DAYS|HOURS|MONTHS|WEEKS|YEARS)\b|'\s*\d+\s+(DAYS|HOURS)\s*'",
    raw=True,
)
MIXED_STAR = Lint("SELECT *, ... needs a qualified star", node=_mixed_star)
WINDOW_CONSTANT = Lint("a window ORDER BY key is a constant", node=_window_constant_key)
UNORDERED_ROW_NUMBER = Lint("ROW_NUMBER needs ORDER BY", node=_unordered_row_number)
DATE_ADD_DROPS_TIME = Lint(
    "DATE_ADD returns a DATE and drops the time of day", _function("DATE_ADD")
)
TRUNCATION_MISSING = Lint(
    "the function does not exist here", _function("TIMESTAMP_TRUNC", "DATE_TRUNC", "DATE_ADD")
)
SECONDS_ONLY_DATETIME = Lint("DateTime keeps whole seconds only", r"\bDateTime\b(?!64)")
MILLISECOND_TIMESTAMP = Lint(
    "TIMESTAMP without a precision keeps milliseconds only", r"\bAS\s+TIMESTAMP\s*\)"
)
ROUNDED_DATETIME = Lint("DATETIME without (6) drops fractional seconds", r"\bAS\s+DATETIME\s*\)")
YEAR_ZERO = Lint("date arithmetic counted from year 0", r"'0000-01-01", raw=True)
SQLITE_DATE = Lint(
    "DATE() / DATETIME() drop the time of day or the fractional seconds",
    _function("DATE", "DATETIME"),
)
SQLITE_TRUNC = Lint("SQLite has no truncation function", _function("TIMESTAMP_TRUNC", "DATE_TRUNC"))
SUNDAY_WEEKS = Lint("WEEK starts on Sunday (use ISOWEEK)", r",\s*WEEK\s*\)")
DATETIME_AS_TIMESTAMP = Lint("TIMESTAMP_TRUNC on DATETIME values", _function("TIMESTAMP_TRUNC"))
SESSION_WEEK = Lint(
    "DATE_TRUNC('WEEK') depends on the WEEK_START parameter",
    r"DATE_TRUNC\s*\(\s*'WEEK'",
    raw=True,
)
DATEFIRST_WEEK = Lint("DATETRUNC(WEEK) depends on @@DATEFIRST", r"\bDATETRUNC\s*\(\s*WEEK\b")
TABLE_ALIAS_AS = Lint(
    "AS before a table alias",
    r'\b(FROM|JOIN)\s+"_"\s+AS\b'
    r'|\)\s+AS\s+"_"\s*(WHERE|LEFT|RIGHT|INNER|FULL|JOIN|CROSS|ON|GROUP|ORDER|UNION|\)|$)',
)
CLOB = Lint("CLOB values cannot be compared with =", r"\bAS\s+CLOB\s*\)")

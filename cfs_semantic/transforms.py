"""Tree transforms that make the dialect-neutral SQL tree correct on each target.

sqlglot transpiles many constructs into text a target rejects or, worse, accepts with another
meaning (a date instead of a timestamp, a week that starts on Sunday, seconds instead of
microseconds). Each function here rewrites one construct; :mod:`cfs_semantic.dialects` says which
target gets which. Every rewrite builds nodes from the tree or from small templates with named
placeholders, never by formatting strings.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from cfs_semantic.errors import CfsError

logger = logging.getLogger(__name__)

Transform = Callable[[exp.Expr], exp.Expr]

#: Format of a naive timestamp stored as text on SQLite (millisecond precision, sortable).
SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%f"


class UnsupportedFeature(CfsError):
    """The spec needs something a target dialect cannot express; the message says what to do."""


@functools.cache
def _template(sql: str, dialect: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=dialect)


def fill(sql: str, dialect: str, **values: exp.Expr) -> exp.Expr:
    """Parse ``sql`` (with ``:name`` placeholders) in ``dialect`` and put copies of values in."""

    def put(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name in values:
            return values[node.name].copy()
        return node

    return _template(sql, dialect).copy().transform(put)


def rewrite_up(tree: exp.Expr, rewrite: Transform) -> exp.Expr:
    """Apply ``rewrite`` to every node, children before parents, replacing nodes in place.

    Unlike ``Expression.transform``, a replaced node's own children have already been
    rewritten, so nested constructs (a zone conversion inside a truncation) are all handled.
    """
    for node in reversed(list(tree.dfs())):
        new = rewrite(node)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


# --- generic rewrites (every target) ---------------------------------------------------------


def table_aliases(tree: exp.Expr) -> exp.Expr:
    """Store every derived-table alias as a ``TableAlias`` (``Subquery.as_`` leaves a bare name).

    The parsed form of the same SQL has a ``TableAlias``; without it, SQL Server generation names
    a derived table's columns only on the second round, and re-rendering is not stable.
    """
    for node in tree.find_all(exp.Subquery, exp.Table):
        alias = node.args.get("alias")
        if isinstance(alias, exp.Identifier):
            node.set("alias", exp.TableAlias(this=alias))
    return tree


def quote_referenced_aliases(tree: exp.Expr) -> exp.Expr:
    """Quote a derived table's alias when the columns of its SELECT refer to it quoted.

    ``(...) AS v`` with ``"v"."x"`` works where unquoted names fold to lower case, but on
    Snowflake and Oracle ``v`` becomes ``V`` and ``"v"`` no longer matches it.
    """
    quoted: dict[int, set[str]] = {}
    for column in tree.find_all(exp.Column):
        table = column.args.get("table")
        if isinstance(table, exp.Identifier) and table.quoted:
            select = column.find_ancestor(exp.Select)
            if select is not None:
                quoted.setdefault(id(select), set()).add(table.name)
    for select in tree.find_all(exp.Select):
        names = quoted.get(id(select), set())
        for source in _sources(select) if names else []:
            alias = source.args.get("alias")
            ident = alias.this if isinstance(alias, exp.TableAlias) else None
            if isinstance(ident, exp.Identifier) and not ident.quoted and ident.name in names:
                ident.set("quoted", True)
    return tree


def _sources(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_") or select.args.get("from")
    sources = [from_.this] if from_ is not None else []
    return sources + [join.this for join in select.args.get("joins") or []]


def qualify_mixed_star(tree: exp.Expr) -> exp.Expr:
    """Turn ``SELECT *, x FROM (...) AS e`` into ``SELECT "e".*, x`` (Oracle rejects the former)."""
    for select in tree.find_all(exp.Select):
        stars = [p for p in select.expressions if isinstance(p, exp.Star)]
        sources = _sources(select)
        if not stars or len(select.expressions) == 1 or len(sources) != 1:
            continue
        alias = sources[0].args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.this is not None:
            name = alias.this
        elif isinstance(sources[0], exp.Table):
            name = sources[0].this
        else:
            continue
        for star in stars:
            star.replace(exp.Column(this=exp.Star(), table=name.copy()))
    return tree


def fold_constant_flags(tree: exp.Expr) -> exp.Expr:
    """Simplify ``CASE WHEN TRUE THEN a ...`` to ``a`` and drop ``WHEN FALSE`` branches.

    The builder writes every counter as a 0/1 flag, including the constant ones (``is_eligible``
    is always 1); targets without boolean literals reject ``WHEN TRUE``.
    """

    def fold(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Case) or node.this is not None:
            return node
        branches: list[exp.Expr] = []
        for branch in node.args.get("ifs") or []:
            condition = branch.this
            if isinstance(condition, exp.Boolean) and not condition.this:
                continue
            if isinstance(condition, exp.Boolean) and not branches:
                return branch.args["true"]
            branches.append(branch)
        default = node.args.get("default")
        if not branches:
            return default if default is not None else exp.Null()
        node.set("ifs", branches)
        return node

    return rewrite_up(tree, fold)


def drop_constant_window_order(tree: exp.Expr) -> exp.Expr:
    """Remove constant (``NULL``, literal) keys from window ORDER BY, and empty ORDER BYs.

    Ordering by a constant changes nothing, SQL Server rejects it, and an ORDER BY without keys
    is a syntax error everywhere.
    """
    for window in tree.find_all(exp.Window):
        order = window.args.get("order")
        if order is None:
            continue
        keys = [o for o in order.expressions if not isinstance(o.this, exp.Null | exp.Literal)]
        if keys:
            order.set("expressions", keys)
        else:
            window.set("order", None)
    return tree


def _is_fractional(node: exp.Expr) -> bool:
    if isinstance(node, exp.Cast):
        return node.to.is_type(*exp.DataType.REAL_TYPES)
    return isinstance(node, exp.Literal) and not node.is_string and "." in node.name


def average_as_double(tree: exp.Expr) -> exp.Expr:
    """``AVG(x)`` -> ``AVG(CAST(x AS DOUBLE))``: Redshift and SQL Server truncate integer AVG."""
    for avg in list(tree.find_all(exp.Avg)):
        if not _is_fractional(avg.this):
            avg.set("this", exp.cast(avg.this, "DOUBLE"))
    return tree


def filter_to_case(tree: exp.Expr) -> exp.Expr:
    """``AGG(x) FILTER (WHERE c)`` -> ``AGG(CASE WHEN c THEN x END)`` for targets without FILTER."""

    def rewrite(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Filter):
            return node
        agg, condition = node.this, node.expression.this
        argument = agg.this
        if isinstance(argument, exp.Star) or argument is None:
            argument = exp.Literal.number(1)
        agg.set("this", exp.Case().when(condition, argument))
        return agg

    return rewrite_up(tree, rewrite)


def predicate_booleans(tree: exp.Expr) -> exp.Expr:
    """Write TRUE / FALSE predicates as ``1 = 1`` / ``1 = 0`` (no boolean literals on Oracle)."""

    def rewrite(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Boolean):
            return node
        right = exp.Literal.number(1 if node.this else 0)
        return exp.paren(exp.EQ(this=exp.Literal.number(1), expression=right))

    return rewrite_up(tree, rewrite)


def require_row_number_order(filler_sql: str, dialect: str) -> Transform:
    """Build a transform that gives every ORDER-less ROW_NUMBER window ``ORDER BY filler``."""
    filler = fill(filler_sql, dialect)

    def transform(tree: exp.Expr) -> exp.Expr:
        for window in tree.find_all(exp.Window):
            if isinstance(window.this, exp.RowNumber) and window.args.get("order") is None:
                window.set("order", exp.Order(expressions=[exp.Ordered(this=filler.copy())]))
        return tree

    return transform


def cast_types(mapping: dict[exp.DType, str], dialect: str) -> Transform:
    """Build a transform that replaces the target type of casts (e.g. TIMESTAMP -> DATETIME(6))."""
    built = {kind: exp.DataType.build(sql, dialect=dialect) for kind, sql in mapping.items()}

    def transform(tree: exp.Expr) -> exp.Expr:
        for cast in tree.find_all(exp.Cast):
            kind = cast.to.this
            if kind in built and not cast.to.expressions:
                cast.set("to", built[kind].copy())
        return tree

    return transform


def clickhouse_join_nulls(tree: exp.Expr) -> exp.Expr:
    """Add ``SETTINGS join_use_nulls = 1`` to every SELECT with an outer join (ClickHouse).

    ClickHouse fills the unmatched side of an outer join with the type's default ('' or 0)
    instead of NULL unless ``join_use_nulls`` is set; a user without a users row would then be
    grouped under '' instead of NULL.
    """
    for select in tree.find_all(exp.Select):
        outer = any(
            join.side in {"LEFT", "RIGHT", "FULL"} for join in select.args.get("joins") or []
        )
        if outer and not select.args.get("settings"):
            setting = exp.EQ(this=exp.column("join_use_nulls"), expression=exp.Literal.number(1))
            select.set("settings", [setting])
    return tree


def emulate_nulls_last(tree: exp.Expr) -> exp.Expr:
    """``ORDER BY x NULLS LAST`` -> ``ORDER BY CASE WHEN x IS NULL THEN 1 ELSE 0 END, x``.

    For targets that sort NULLs first ascending and have no NULLS LAST (MySQL, SQL Server).
    sqlglot emulates it during generation too, but unformatted, so the text changes on a
    second round; rewriting the tree keeps re-rendering stable.
    """
    for order in list(tree.find_all(exp.Order)):
        keys: list[exp.Expr] = []
        for key in order.expressions:
            if (
                isinstance(key, exp.Ordered)
                and not key.args.get("desc")
                and (not key.args.get("nulls_first"))
            ):
                is_null = exp.Is(this=key.this.copy(), expression=exp.Null())
                keys.append(exp.Ordered(this=_flag_case(is_null), nulls_first=True))
                key.set("nulls_first", True)
            keys.append(key)
        order.set("expressions", keys)
    return tree


def _flag_case(condition: exp.Expr) -> exp.Case:
    return exp.Case().when(condition, exp.Literal.number(1)).else_(exp.Literal.number(0))

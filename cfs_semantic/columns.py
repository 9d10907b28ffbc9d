"""Resolve every column reference of a statement against the columns its source provides.

A source is a table of the spec's declared schema (the columns of its local file), a CTE, or a
derived table whose columns are the names its SELECT projects (``*`` expanded where the columns
are known). A reference to a name the source does not have is reported with a suggestion; a
source whose columns are unknown (a warehouse table without a local file) is not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp

from cfs_semantic.loader import suggest

logger = logging.getLogger(__name__)

Schema = Mapping[str, Sequence[str]]
"""Table name -> its column names."""


@dataclass(frozen=True)
class UnknownColumn:
    """A column reference that names no column of its source."""

    column: str
    source: str
    known: tuple[str, ...]

    def render(self) -> str:
        """Return ``unknown column 'x' in <source>; did you mean 'y'? (columns: ...)``."""
        hint = suggest(self.column, self.known)
        shown = ", ".join(self.known[:12]) + (", ..." if len(self.known) > 12 else "")
        text = f"unknown column {self.column!r} in {self.source}"
        return text + (f"; {hint}" if hint else "") + f" (columns: {shown})"


def _sources(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_") or select.args.get("from")
    found = [from_.this] if from_ is not None else []
    return found + [join.this for join in select.args.get("joins") or []]


class _Resolver:
    def __init__(self, tree: exp.Expr, schema: Schema) -> None:
        self.schema = {name.lower(): list(cols) for name, cols in schema.items()}
        self.ctes = {cte.alias_or_name: cte.this for cte in tree.find_all(exp.CTE)}

    def source_columns(self, source: exp.Expr) -> list[str] | None:
        """The columns a FROM/JOIN source provides, or None when they are unknown."""
        if isinstance(source, exp.Table):
            if not source.args.get("db") and source.name in self.ctes:
                return self.outputs(self.ctes[source.name])
            return self.schema.get(source.name.lower())
        if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Query):
            return self.outputs(source.this)
        return None

    def outputs(self, query: exp.Expr) -> list[str] | None:
        """The column names a query produces, or None when a star cannot be expanded."""
        if isinstance(query, exp.SetOperation):
            return self.outputs(query.left)
        if not isinstance(query, exp.Select):
            return None
        names: list[str] = []
        by_alias = {s.alias_or_name: s for s in _sources(query)}
        for projection in query.expressions:
            if isinstance(projection, exp.Star):
                parts = [self.source_columns(s) for s in _sources(query)]
                if any(p is None for p in parts):
                    return None
                names += [c for p in parts if p for c in p]
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                source = by_alias.get(projection.table)
                cols = self.source_columns(source) if source is not None else None
                if cols is None:
                    return None
                names += cols
            else:
                names.append(projection.alias_or_name)
        return names


def _describe(source: exp.Expr) -> str:
    alias = source.alias_or_name
    if isinstance(source, exp.Table):
        return f"table {source.name!r}" + (f" (alias {alias!r})" if alias != source.name else "")
    return f"the derived table {alias!r}"


def _matches(name: str, quoted: bool, known: Sequence[str]) -> bool:
    if quoted:
        return name in known
    return name.lower() in {k.lower() for k in known}


def unknown_columns(tree: exp.Expr, schema: Schema) -> list[UnknownColumn]:
    """Return every column reference in ``tree`` that its source does not provide.

    Args:
        tree: A parsed statement.
        schema: Columns of the physical tables whose columns are known.

    Returns:
        One :class:`UnknownColumn` per unresolvable reference, in tree order.
    """
    resolver = _Resolver(tree, schema)
    by_select: dict[int, list[exp.Column]] = {}
    for column in tree.find_all(exp.Column):
        select = column.find_ancestor(exp.Select)
        if select is not None and not isinstance(column.this, exp.Star):
            by_select.setdefault(id(select), []).append(column)
    found: list[UnknownColumn] = []
    for select in tree.find_all(exp.Select):
        sources = {s.alias_or_name: s for s in _sources(select)}
        own_aliases = {p.alias for p in select.expressions if p.alias}
        for column in by_select.get(id(select), []):
            if column.table:
                source = sources.get(column.table)
            elif len(sources) == 1 and column.name not in own_aliases:
                source = next(iter(sources.values()))
            else:
                source = None
            known = resolver.source_columns(source) if source is not None else None
            if source is None or known is None or _matches(column.name, column.this.quoted, known):
                continue
            found.append(UnknownColumn(column.name, _describe(source), tuple(known)))
    return found

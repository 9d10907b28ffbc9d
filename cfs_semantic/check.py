"""Per-target checks of every statement a spec emits (``cfs-semantic check``).

For each spec and each target dialect, every statement (the emitted facts view and overall
query, and one query per distinct shape of the groupings ``verify`` uses) is:

1. generated with the target's transforms and unsupported features raised;
2. parsed back in its own dialect with errors raised (exactly one statement);
3. linted for patterns the target rejects (:attr:`DialectRules.lints`);
4. re-rendered: parse -> generate must give the same text;
5. type-annotated: every division needs a numerator or denominator of a non-integer type;
6. column-qualified against the spec's declared schema (the columns of its local files, and
   for SELECT sources the columns the SELECT projects).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import ErrorLevel, exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types

from cfs_semantic.columns import Schema, unknown_columns
from cfs_semantic.dialects import COMMON_LINTS, RULES, render, sqlglot_name
from cfs_semantic.errors import CfsError, DataError
from cfs_semantic.lints import masked
from cfs_semantic.runner import all_groupings
from cfs_semantic.spec import Spec
from cfs_semantic.sql.aggregate import aggregate_query, facts_view

logger = logging.getLogger(__name__)

CHECKS = ("generate", "parse", "lint", "stable", "division", "columns")


@dataclass(frozen=True)
class Finding:
    """One failed check of one statement."""

    spec: str
    dialect: str
    statement: str
    check: str
    message: str

    def render(self) -> str:
        """Return the finding as one line."""
        return f"{self.spec}/{self.statement}: {self.check}: {self.message}"


@dataclass
class DialectReport:
    """Every finding for one dialect, over all specs checked."""

    dialect: str
    statements: int = 0
    specs: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        """Return the per-dialect summary line."""
        head = f"{'ok  ' if not self.findings else 'FAIL'} {self.dialect:<10}"
        counted = f"{self.statements} statements from {len(self.specs)} specs"
        if not self.findings:
            return f"{head} {counted}: {', '.join(CHECKS)} passed"
        return f"{head} {counted}: {len(self.findings)} problems"


def statements(spec: Spec) -> list[tuple[str, exp.Expr]]:
    """Return (name, tree) for every statement checked.

    The emitted facts view and overall query, plus the query of the groupings ``verify`` uses
    that have a different shape: the first user-level and the first response-level segment,
    each grain of the response time, the month of the activation time, and the combinations.
    """
    out: list[tuple[str, exp.Expr]] = [("facts_view", facts_view(spec))]
    user_level = set(spec.user_attributes())
    seen_levels: set[bool] = set()
    for grouping in all_groupings(spec):
        if len(grouping.segments) == 1 and not grouping.time_dim:
            level = grouping.segments[0] in user_level
            if level in seen_levels:
                continue
            seen_levels.add(level)
        if grouping.time_dim == "activated" and grouping.grain != "month":
            continue
        name = "by " + ", ".join(grouping.columns()) if grouping.columns() else "overall"
        out.append((name, aggregate_query(spec, grouping)))
    return out


def declared_schema(spec: Spec, base_dir: Path) -> Schema:
    """Return the columns of every ``tables`` entry whose local file exists.

    Tables without a local file are left out: their columns are unknown and not checked.
    """
    from cfs_semantic.sources import register_tables

    present = {n: t for n, t in spec.tables.items() if (base_dir / t.path).is_file()}
    for name in sorted(set(spec.tables) - set(present)):
        logger.warning("table %s has no local file; its columns are not checked", name)
    if not present:
        return {}
    try:
        con = register_tables(spec.model_copy(update={"tables": present}), base_dir)
    except DataError as err:
        logger.warning("cannot read the declared tables (%s); columns are not checked", err)
        return {}
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    con.close()
    schema: dict[str, list[str]] = {}
    for table, column in rows:
        schema.setdefault(str(table), []).append(str(column))
    return schema


def _lint(sql: str, dialect: str, tree: exp.Expr) -> list[str]:
    text = masked(sql, sqlglot_name(dialect))
    found = []
    for lint in (*COMMON_LINTS, *RULES[dialect].lints):
        for snippet in lint.find(sql, text, tree):
            found.append(f"{lint.message}: {snippet.strip()!r}")
    return found


def _integer_divisions(tree: exp.Expr, dialect: str) -> list[str]:
    annotated = annotate_types(tree, dialect=dialect)
    bad = []
    for div in annotated.find_all(exp.Div):
        sides = (div.this.type, div.expression.type)
        fractional = [t for t in sides if t is not None and t.is_type(*exp.DataType.REAL_TYPES)]
        if not fractional:
            kinds = ", ".join(t.sql() if t is not None else "UNKNOWN" for t in sides)
            bad.append(f"{div.sql(dialect=dialect)[:80]} may divide integers ({kinds})")
    return bad


def check_statement(
    name: str, tree: exp.Expr, dialect: str, schema: Schema
) -> list[tuple[str, str]]:
    """Run every check on one statement for one dialect; return (check, message) failures."""
    read = sqlglot_name(dialect)
    try:
        sql = render(tree, dialect)
    except (CfsError, SqlglotError) as err:
        return [("generate", str(err))]
    try:
        parsed = sqlglot.parse(sql, read=read, error_level=ErrorLevel.RAISE)
    except ParseError as err:
        return [("parse", str(err).splitlines()[0])]
    if len(parsed) != 1 or parsed[0] is None:
        return [("parse", f"expected one statement, got {len(parsed)}")]
    statement = parsed[0]
    problems = [("lint", message) for message in _lint(sql, dialect, statement)]
    change = unstable(sql, dialect, statement)
    if change:
        problems.append(("stable", change))
    problems += [("division", message) for message in _integer_divisions(statement, read)]
    problems += [("columns", u.render()) for u in unknown_columns(statement, schema)]
    logger.debug("%s %s: %d problems", dialect, name, len(problems))
    return problems


def unstable(sql: str, dialect: str, parsed: exp.Expr | None = None) -> str | None:
    """Return how ``sql`` changes when parsed and generated again, or None when it does not."""
    read = sqlglot_name(dialect)
    statement = parsed if parsed is not None else sqlglot.parse_one(sql, read=read)
    again = statement.sql(dialect=read, pretty=True, unsupported_level=ErrorLevel.RAISE)
    return None if again == sql else _first_difference(sql, again)


def _first_difference(first: str, second: str) -> str:
    for number, (a, b) in enumerate(zip(first.splitlines(), second.splitlines(), strict=False), 1):
        if a != b:
            return f"line {number} changes on re-rendering: {a.strip()!r} -> {b.strip()!r}"
    return "the text changes on re-rendering (line count)"


def check_dialect(spec: Spec, schema: Schema, dialect: str) -> tuple[int, list[Finding]]:
    """Check every statement of ``spec`` for one dialect; return (statements, findings)."""
    findings = []
    trees = statements(spec)
    for name, tree in trees:
        for check, message in check_statement(name, tree, dialect, schema):
            findings.append(Finding(spec.name, dialect, name, check, message))
    return len(trees), findings


def check_specs(
    specs: Sequence[tuple[Spec, Schema]],
    dialects: Sequence[str] | None = None,
    jobs: int = 1,
) -> dict[str, DialectReport]:
    """Check each spec for each dialect (default: the spec's own ``dialects``).

    Args:
        specs: Validated specs with their declared schemas (see :func:`declared_schema`).
        dialects: Target dialects to check instead of each spec's list.
        jobs: Worker processes; checks of different (spec, dialect) pairs run in parallel.

    Returns:
        One report per dialect, in the order the dialects were first met.
    """
    tasks = [(spec, schema, d) for spec, schema in specs for d in (dialects or spec.dialects)]
    if jobs > 1 and len(tasks) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            results = list(pool.map(check_dialect, *zip(*tasks, strict=True)))
    else:
        results = [check_dialect(*task) for task in tasks]
    reports: dict[str, DialectReport] = {}
    for (spec, _, dialect), (count, findings) in zip(tasks, results, strict=True):
        report = reports.setdefault(dialect, DialectReport(dialect))
        report.specs.add(spec.name)
        report.statements += count
        report.findings += findings
    return reports


def failed(reports: Iterable[DialectReport]) -> bool:
    """True when any report has a finding."""
    return any(report.findings for report in reports)

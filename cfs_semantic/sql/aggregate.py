"""The aggregate query: every counter and measure of the contract for one grouping.

Counters are sums of the 0/1 flags of the facts relation; ratios are computed from the summed
counters with a forced decimal division and ``NULLIF`` on every divisor, never averaged.
"""

from __future__ import annotations

from sqlglot import exp

from cfs_semantic.contract import CLASSES, COUNTERS, OUTPUT_COLUMNS, Grouping, time_column
from cfs_semantic.spec import Spec
from cfs_semantic.sql.common import alias, col, from_utc
from cfs_semantic.sql.facts import ACT, RESP, USER, facts

FACTS = "facts"
_COUNTER_FLAG = {
    "eligible_responses": "is_eligible",
    "scored_responses": "is_scored",
    "unscored_responses": "is_unscored",
    "invalid_score_responses": "is_invalid_score",
    "classified_responses": "is_classified",
    "unmapped_label_responses": "is_unmapped_label",
    "positive_responses": "is_positive",
    "neutral_responses": "is_neutral",
    "negative_responses": "is_negative",
}


def time_bucket(spec: Spec, column: exp.Expr, grain: str) -> exp.Expr:
    """Truncate a naive UTC timestamp to ``grain`` in the reporting time zone."""
    local = from_utc(column, spec.report_zone)
    return exp.TimestampTrunc(this=local, unit=exp.var(grain.upper()))


def _dimension_exprs(spec: Spec, grouping: Grouping) -> list[tuple[str, exp.Expr, bool]]:
    """Return (output name, expression over facts, is user-level) for each group column."""
    user_attrs = set(spec.user_attributes())
    dims: list[tuple[str, exp.Expr, bool]] = [
        (s, col(s, "f"), s in user_attrs) for s in grouping.segments
    ]
    if grouping.time_dim and grouping.grain:
        source = ACT if grouping.time_dim == "activated" else RESP
        bucket = time_bucket(spec, col(source, "f"), grouping.grain)
        dims.append(
            (
                time_column(grouping.time_dim, grouping.grain),
                bucket,
                grouping.time_dim == "activated",
            )
        )
    return dims


def _sum(name: str, table: str = "g") -> exp.Expr:
    return exp.Coalesce(this=exp.Sum(this=col(name, table)), expressions=[exp.Literal.number(0)])


def _ratio(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    """``CAST(numerator AS DOUBLE) / NULLIF(denominator, 0)``: decimal, guarded."""
    return exp.Div(
        this=exp.cast(numerator, "DOUBLE"),
        expression=exp.Nullif(this=denominator, expression=exp.Literal.number(0)),
    )


def _counter_selects(table: str) -> list[exp.Expr]:
    responding = exp.Count(
        this=exp.Distinct(
            expressions=[
                exp.Case().when(
                    exp.EQ(this=col("is_eligible", table), expression=exp.Literal.number(1)),
                    col(USER, table),
                )
            ]
        )
    )
    out: list[exp.Expr] = [
        alias(_sum("is_user_row", table), "activated_users"),
        alias(responding, "responding_users"),
    ]
    out += [alias(_sum(flag_name, table), name) for name, flag_name in _COUNTER_FLAG.items()]
    out.append(alias(_sum("valid_score", table), "score_sum"))
    return out


def _ratios(table: str) -> list[exp.Expr]:
    def c(name: str) -> exp.Column:
        return col(name, table)

    shares = {cls: _ratio(c(f"{cls}_responses"), c("classified_responses")) for cls in CLASSES}
    out: list[exp.Expr] = [alias(_ratio(c("score_sum"), c("scored_responses")), "score")]
    out += [alias(shares[cls], f"{cls}_share") for cls in CLASSES]
    out.append(
        alias(
            exp.Sub(this=shares["positive"].copy(), expression=shares["negative"].copy()),
            "net_sentiment",
        )
    )
    out.append(alias(_ratio(c("responding_users"), c("activated_users")), "response_rate"))
    return out


def _null_safe_eq(left: exp.Expr, right: exp.Expr) -> exp.Expr:
    """``left = right OR (left IS NULL AND right IS NULL)``: portable NULL-as-a-group join."""
    return exp.or_(
        exp.EQ(this=left, expression=right),
        exp.and_(
            exp.Is(this=left.copy(), expression=exp.Null()),
            exp.Is(this=right.copy(), expression=exp.Null()),
        ),
    )


def aggregate_query(
    spec: Spec, grouping: Grouping = Grouping(), facts_view_name: str | None = None
) -> exp.Query:
    """Build the aggregate query for ``grouping`` as one SELECT over the facts relation.

    Groups by user-level columns only (user attributes, activation time) start from the
    activated users, so a segment without feedback still appears. Groups with a response-level
    column are the groups that have eligible responses; their ``activated_users`` counts the
    activated users of the user-level part of the group.

    With ``facts_view_name`` the query reads that deployed view; otherwise it carries the
    facts relation as a CTE and runs on the source tables alone.
    """
    dims = _dimension_exprs(spec, grouping)
    names = [n for n, _, _ in dims]
    star = exp.Column(this=exp.Star(), table=exp.to_identifier("f", quoted=True))
    # Segments are columns of facts already; only computed time buckets get a new column.
    computed = [alias(e, n) for n, e, _ in dims if not isinstance(e, exp.Column)]
    source = exp.Table(this=exp.to_identifier(facts_view_name or FACTS, quoted=True))
    base = exp.select(*computed, star).from_(source.as_("f", quoted=True))
    user_only = all(is_user for _, _, is_user in dims)
    grouped = exp.select(*[col(n, "g") for n in names], *_counter_selects("g")).from_(
        base.subquery("g")
    )
    if not user_only:
        grouped = grouped.where(
            exp.EQ(this=col("is_user_row", "g"), expression=exp.Literal.number(0))
        )
    if names:
        grouped = grouped.group_by(*[col(n, "g") for n in names])
    outer = exp.select(*[col(n, "t") for n in names]).from_(grouped.subquery("t"))
    if user_only:
        outer = outer.select(*[col(c, "t") for c in ("activated_users",)])
    else:
        users = _activated_by(base, [n for n, _, is_user in dims if is_user])
        condition: exp.Expr = exp.true()
        user_names = [n for n, _, is_user in dims if is_user]
        if user_names:
            condition = exp.and_(*[_null_safe_eq(col(n, "t"), col(n, "a")) for n in user_names])
        outer = outer.join(users.subquery("a"), on=condition, join_type="left")
        outer = outer.select(
            alias(
                exp.Coalesce(this=col("activated_users", "a"), expressions=[exp.Literal.number(0)]),
                "activated_users",
            )
        )
    outer = outer.select(*[col(c, "t") for c in COUNTERS if c != "activated_users"])
    outer = outer.select(col("score_sum", "t"))
    final = exp.select(
        *[col(n, "o") for n in names], *[col(c, "o") for c in (*COUNTERS, "score_sum")]
    )
    final = final.select(*_ratios("o")).from_(outer.subquery("o"))
    if names:
        final = final.order_by(*[exp.Ordered(this=col(n, "o"), nulls_first=False) for n in names])
    assert [s.alias_or_name for s in final.selects] == [*names, *OUTPUT_COLUMNS]
    if facts_view_name is not None:
        return final  # reads the deployed facts view
    return final.with_(FACTS, as_=facts(spec))


def _activated_by(base: exp.Select, user_names: list[str]) -> exp.Select:
    select = exp.select(*[col(n, "b") for n in user_names]).select(
        alias(_sum("is_user_row", "b"), "activated_users")
    )
    select = select.from_(base.copy().subquery("b"))
    select = select.where(exp.EQ(this=col("is_user_row", "b"), expression=exp.Literal.number(1)))
    if user_names:
        select = select.group_by(*[col(n, "b") for n in user_names])
    return select


def facts_view(spec: Spec, name: str | None = None) -> exp.Create:
    """Return ``CREATE VIEW <name> AS <facts>``: the governed row-level view."""
    view = name or f"{spec.name}_feedback_facts"
    return exp.Create(
        this=exp.to_table(view, quoted=True),
        kind="VIEW",
        expression=facts(spec),
        replace=True,
    )

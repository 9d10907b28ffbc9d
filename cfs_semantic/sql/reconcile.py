"""Where every input response went, as one SQL query (the reference is in ``reconcile``).

Each input row lands in exactly one bucket, checked in this order: missing user or time,
duplicate response id, not at a post-activation stage / user never activated, before
activation, after the window, and otherwise eligible (before any per-user dedupe).
"""

from __future__ import annotations

from sqlglot import exp

from cfs_semantic.spec import ActivationMode, Spec
from cfs_semantic.sql.common import col, lit
from cfs_semantic.sql.facts import ACT, RESP, USER, first_activation, response_rows

BUCKETS: tuple[str, ...] = (
    "missing_user_or_time",
    "duplicate_response_id",
    "not_at_activation_stage",
    "never_activated",
    "before_activation",
    "after_window",
    "eligible",
)


def _is_null(expr: exp.Expr) -> exp.Expr:
    return exp.Is(this=expr, expression=exp.Null())


def bucket_case(spec: Spec) -> exp.Case:
    """The bucket of one response row joined (LEFT) to its user's first activation."""
    case = exp.Case().when(
        exp.or_(_is_null(col(USER, "r")), _is_null(col(RESP, "r"))), lit("missing_user_or_time")
    )
    case = case.when(
        exp.EQ(this=col("is_duplicate", "r"), expression=exp.Literal.number(1)),
        lit("duplicate_response_id"),
    )
    if spec.activation.mode is ActivationMode.RESPONSE_STAGE:
        at_stage = exp.In(
            this=col("stage", "r"), expressions=[lit(s) for s in spec.activation.stages]
        )
        case = case.when(
            exp.or_(_is_null(col("stage", "r")), exp.Not(this=at_stage)),
            lit("not_at_activation_stage"),
        )
        return case.else_(lit("eligible"))
    case = case.when(_is_null(col(USER, "u")), lit("never_activated"))
    case = case.when(
        exp.LT(this=col(RESP, "r"), expression=col(ACT, "u")), lit("before_activation")
    )
    if spec.window_days is not None:
        end = exp.DateAdd(
            this=col(ACT, "u"), expression=exp.Literal.number(spec.window_days), unit=exp.var("DAY")
        )
        case = case.when(exp.GTE(this=col(RESP, "r"), expression=end), lit("after_window"))
    return case.else_(lit("eligible"))


def reconcile_query(spec: Spec) -> exp.Select:
    """Return ``SELECT bucket, COUNT(*) AS responses ... GROUP BY bucket`` over every input row."""
    rows = response_rows(spec).subquery("r")
    select = exp.select(exp.alias_(bucket_case(spec), "bucket", quoted=True)).from_(rows)
    if spec.activation.mode is not ActivationMode.RESPONSE_STAGE:
        select = select.join(
            first_activation(spec).subquery("u"),
            on=exp.EQ(this=col(USER, "r"), expression=col(USER, "u")),
            join_type="left",
        )
    return (
        exp.select(
            col("bucket", "b"), exp.alias_(exp.Count(this=exp.Star()), "responses", quoted=True)
        )
        .from_(select.subquery("b"))
        .group_by(col("bucket", "b"))
        .order_by(col("bucket", "b"))
    )

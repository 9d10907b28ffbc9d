"""The governed row-level relation, built as a sqlglot expression tree.

``facts`` has one row per activated user (``is_user_row = 1``, response columns NULL) and one
row per eligible response (``is_user_row = 0``) carrying its user's activation and attributes,
its score status and sentiment class as 0/1 flags. Every measure of the contract is a sum or a
distinct count over it, so the aggregate query, the Cube model and pre-aggregations all read the
same rows and nobody can bypass the post-activation rule.
"""

from __future__ import annotations

from sqlglot import exp

from cfs_semantic.spec import ActivationMode, Dedupe, Spec, normalize_label
from cfs_semantic.sql.common import (
    FACT_FLAGS,
    alias,
    col,
    flag,
    lit,
    null_safe_in,
    parse_source,
    to_utc,
)

USER = "user_id"
ACT = "activated_at"
RESP = "responded_at"
RID = "response_id"
_NULL_TYPES = {
    RESP: "TIMESTAMP",
    "score": "DOUBLE",
    "valid_score": "DOUBLE",
    "label": "TEXT",
    "sentiment_class": "TEXT",
}


def _ts(spec: Spec, table: str, column: str) -> exp.Expr:
    return to_utc(exp.cast(col(column, table), "TIMESTAMP"), spec.timezone)


def _activation_rows(spec: Spec) -> exp.Select:
    """One row per activation candidate: user, time and user attributes."""
    act = spec.activation
    assert act.source is not None and act.user_id is not None
    src = parse_source(act.source, spec.source_dialect).as_("a", quoted=True)
    time_col = act.activated_at if act.mode is ActivationMode.TABLE else act.occurred_at
    assert time_col is not None
    select = exp.select(
        alias(col(act.user_id, "a"), USER), alias(_ts(spec, "a", time_col), ACT)
    ).from_(src)
    if act.mode is ActivationMode.TABLE:
        for name, column in spec.user_attributes().items():
            select = select.select(alias(col(column, "a"), name))
    for criterion in act.where:
        values = [lit(v) for v in criterion.values]
        select = select.where(
            exp.In(this=exp.cast(col(criterion.column, "a"), "TEXT"), expressions=values)
        )
    return select.where(exp.Not(this=exp.Is(this=col(act.user_id, "a"), expression=exp.Null())))


def first_activation(spec: Spec) -> exp.Select:
    """Return the SELECT of one row per activated user at the earliest activation."""
    act = spec.activation
    attrs = list(spec.user_attributes())
    if act.mode is ActivationMode.RESPONSE_STAGE:
        rows = stage_responses(spec)
        return (
            exp.select(col(USER, "r"), alias(exp.Min(this=col(RESP, "r")), ACT))
            .from_(rows.subquery("r", copy=False))
            .group_by(col(USER, "r"))
        )
    rows = (
        exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("v", quoted=True)))
        .from_(_activation_rows(spec).subquery("v", copy=False))
        .where(exp.Not(this=exp.Is(this=col(ACT, "v"), expression=exp.Null())))
    )
    if act.mode is ActivationMode.FIRST_EVENT:
        first = (
            exp.select(col(USER, "e"), alias(exp.Min(this=col(ACT, "e")), ACT))
            .from_(rows.subquery("e", copy=False))
            .group_by(col(USER, "e"))
        )
        if act.users is None:
            return first
        users = _ranked_users(spec)
        select = exp.select(col(USER, "f"), col(ACT, "f")).from_(first.subquery("f"))
        for name in attrs:
            select = select.select(col(name, "p"))
        return select.join(
            users.subquery("p"),
            on=exp.EQ(this=col(USER, "f"), expression=col(USER, "p")),
            join_type="left",
        )
    order: list[exp.Expr] = [col(ACT), *[col(a) for a in attrs]]
    return _keep_first(rows, [USER, ACT, *attrs], order)


def _keep_first(rows: exp.Select, names: list[str], order: list[exp.Expr]) -> exp.Select:
    """Keep the first row per user by ``order`` ascending, NULLs last."""
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(USER)],
        order=exp.Order(expressions=[exp.Ordered(this=o, nulls_first=False) for o in order]),
    )
    ranked = exp.select(*[col(n) for n in names], alias(window, "rn")).from_(
        rows.subquery("x", copy=False)
    )
    return (
        exp.select(*[col(n, "k") for n in names])
        .from_(ranked.subquery("k"))
        .where(exp.EQ(this=col("rn", "k"), expression=exp.Literal.number(1)))
    )


def _ranked_users(spec: Spec) -> exp.Select:
    users = spec.activation.users
    assert users is not None
    src = parse_source(users.source, spec.source_dialect).as_("u", quoted=True)
    select = exp.select(alias(col(users.user_id, "u"), USER)).from_(src)
    for name, column in users.attributes.items():
        select = select.select(alias(col(column, "u"), name))
    select = select.where(exp.Not(this=exp.Is(this=col(users.user_id, "u"), expression=exp.Null())))
    attrs = list(users.attributes)
    return _keep_first(select, [USER, *attrs], [col(a) for a in attrs])


def response_rows(spec: Spec) -> exp.Query:
    """The response columns the metric needs, renamed to their roles, with ``is_duplicate``.

    Ranking every response by id is a sort of the whole table; only rows whose id repeats can
    be duplicates, so those are found with a grouped count first and only they are ranked
    (the benchmark measured a quarter less work at 10M responses, same numbers).
    """
    cols = spec.responses
    ranked = _response_select(spec, rank=True)
    if not cols.response_id or not cols.user_id:
        # Without a user id the user key is a row number, which must come from one SELECT.
        return ranked
    rid = col(cols.response_id, "s")
    source = parse_source(cols.source, spec.source_dialect)
    repeated = (
        exp.select(col(cols.response_id, "d"))
        .from_(source.copy().as_("d", quoted=True))
        .where(exp.Not(this=exp.Is(this=col(cols.response_id, "d"), expression=exp.Null())))
        .group_by(col(cols.response_id, "d"))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )
    single = _response_select(spec, rank=False).where(
        exp.or_(
            exp.Is(this=rid.copy(), expression=exp.Null()),
            exp.Not(this=exp.In(this=rid.copy(), query=repeated.copy().subquery())),
        )
    )
    several = ranked.where(exp.In(this=rid.copy(), query=repeated.subquery()))
    return exp.union(single, several, distinct=False)


def _response_select(spec: Spec, rank: bool) -> exp.Select:
    """One SELECT of the response columns; ``rank`` computes ``is_duplicate`` (else 0)."""
    cols = spec.responses
    src = parse_source(cols.source, spec.source_dialect).as_("s", quoted=True)
    if cols.user_id:
        user: exp.Expr = col(cols.user_id, "s")
    else:
        user = exp.Window(
            this=exp.RowNumber(),
            order=exp.Order(
                expressions=[exp.Ordered(this=exp.cast(col(cols.responded_at, "s"), "TIMESTAMP"))]
            ),
        )
    rid = col(cols.response_id, "s") if cols.response_id else exp.Null()
    score = exp.cast(col(cols.score, "s") if cols.score else exp.Null(), "DOUBLE")
    label = (
        exp.Nullif(
            this=exp.Lower(this=exp.Trim(this=exp.cast(col(cols.label, "s"), "TEXT"))),
            expression=lit(""),
        )
        if cols.label
        else exp.Null()
    )
    select = exp.select(
        alias(rid, RID),
        alias(user, USER),
        alias(_ts(spec, "s", cols.responded_at), RESP),
        alias(score, "score"),
        alias(label, "label"),
    ).from_(src)
    for name, column in cols.attributes.items():
        select = select.select(alias(col(column, "s"), name))
    if cols.stage:
        select = select.select(alias(col(cols.stage, "s"), "stage"))
    duplicate = _duplicate_flag(spec, rid, score, label) if rank else exp.Literal.number(0)
    return select.select(alias(duplicate, "is_duplicate"))


def _duplicate_flag(spec: Spec, rid: exp.Expr, score: exp.Expr, label: exp.Expr) -> exp.Expr:
    """1 for every row after the first with the same (non-NULL) response id, else 0.

    The first is the earliest response, then the lowest score, label and attributes.
    """
    cols = spec.responses
    if not cols.response_id:
        return exp.Literal.number(0)
    order = [_ts(spec, "s", cols.responded_at), score.copy(), label.copy()]
    order += [col(c, "s") for c in cols.attributes.values()]
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[rid.copy()],
        order=exp.Order(expressions=[exp.Ordered(this=o, nulls_first=False) for o in order]),
    )
    duplicate = exp.and_(
        exp.Not(this=exp.Is(this=rid.copy(), expression=exp.Null())),
        exp.GT(this=rank, expression=exp.Literal.number(1)),
    )
    return flag(duplicate)


def _not_duplicate(table: str) -> exp.Expr:
    return exp.EQ(this=col("is_duplicate", table), expression=exp.Literal.number(0))


def stage_responses(spec: Spec) -> exp.Select:
    """Responses at a post-activation stage, with a user key and a timestamp."""
    rows = response_rows(spec).subquery("t", copy=False)
    stages = [lit(s) for s in spec.activation.stages]
    return (
        exp.select(exp.Star())
        .from_(rows)
        .where(exp.In(this=col("stage", "t"), expressions=stages))
        .where(exp.Not(this=exp.Is(this=col(RESP, "t"), expression=exp.Null())))
        .where(exp.Not(this=exp.Is(this=col(USER, "t"), expression=exp.Null())))
        .where(_not_duplicate("t"))
    )


def eligible(spec: Spec) -> exp.Select:
    """Eligible responses joined to their user's first activation and attributes."""
    if spec.activation.mode is ActivationMode.RESPONSE_STAGE and spec.responses.user_id is None:
        # Each anonymous response is its own respondent, activated when it answered: no join
        # (a synthetic row key would not be stable between two evaluations).
        return _dedupe(spec, _anonymous_stage_rows(spec))
    users = first_activation(spec).subquery("u")
    if spec.activation.mode is ActivationMode.RESPONSE_STAGE:
        rows = stage_responses(spec).subquery("r")
    else:
        rows = response_rows(spec).subquery("r")
    names = [RID, USER, RESP, "score", "label", *spec.responses.attributes]
    select = exp.select(*[col(n, "r") for n in names], col(ACT, "u"))
    select = select.select(*[col(a, "u") for a in spec.user_attributes()])
    select = select.from_(rows).join(
        users, on=exp.EQ(this=col(USER, "r"), expression=col(USER, "u")), join_type="inner"
    )
    if spec.activation.mode is not ActivationMode.RESPONSE_STAGE:
        select = select.where(_not_duplicate("r"))
        select = select.where(exp.LTE(this=col(ACT, "u"), expression=col(RESP, "r")))
        if spec.window_days is not None:
            end = exp.DateAdd(
                this=col(ACT, "u"),
                expression=exp.Literal.number(spec.window_days),
                unit=exp.var("DAY"),
            )
            select = select.where(exp.LT(this=col(RESP, "r"), expression=end))
    return _dedupe(spec, select)


def _anonymous_stage_rows(spec: Spec) -> exp.Select:
    names = [RID, USER, RESP, "score", "label", *spec.responses.attributes]
    return exp.select(*[col(n, "r") for n in names], alias(col(RESP, "r"), ACT)).from_(
        stage_responses(spec).subquery("r")
    )


def _dedupe(spec: Spec, select: exp.Select) -> exp.Select:
    """Keep one eligible response per user when the spec asks for it."""
    names = [RID, USER, RESP, "score", "label", *spec.responses.attributes]
    if spec.dedupe is Dedupe.ALL:
        return select
    direction = spec.dedupe is Dedupe.LATEST_PER_USER
    order = exp.Order(
        expressions=[
            exp.Ordered(this=col(RESP), desc=direction, nulls_first=False),
            exp.Ordered(this=col(RID), nulls_first=False),
        ]
    )
    window = exp.Window(this=exp.RowNumber(), partition_by=[col(USER)], order=order)
    all_names = [*names, ACT, *spec.user_attributes()]
    ranked = exp.select(*[col(n) for n in all_names], alias(window, "rn")).from_(
        select.subquery("d")
    )
    return (
        exp.select(*[col(n, "k") for n in all_names])
        .from_(ranked.subquery("k"))
        .where(exp.EQ(this=col("rn", "k"), expression=exp.Literal.number(1)))
    )


def _class_case(spec: Spec) -> exp.Expr:
    """The sentiment class of an eligible row, per the spec's source and mapping."""
    case = exp.Case()
    label = col("label")
    has_label = exp.Not(this=exp.Is(this=label, expression=exp.Null()))
    if spec.uses_label:
        assert spec.sentiment.labels is not None
        mapping = spec.sentiment.labels.mapping()
        for cls in ("positive", "neutral", "negative"):
            labels = sorted(k for k, v in mapping.items() if v == cls)
            if labels:
                case = case.when(null_safe_in(label, labels), lit(cls))
        case = case.when(has_label, exp.Null())
    if spec.uses_score_class:
        sent = spec.sentiment
        assert sent.positive_min is not None and sent.negative_max is not None
        valid = valid_score_condition(spec)
        score = col("score")
        case = case.when(
            exp.and_(valid, exp.GTE(this=score, expression=exp.Literal.number(sent.positive_min))),
            lit("positive"),
        )
        case = case.when(
            exp.and_(valid, exp.LTE(this=score, expression=exp.Literal.number(sent.negative_max))),
            lit("negative"),
        )
        case = case.when(valid, lit("neutral"))
    return case.else_(exp.Null())


def valid_score_condition(spec: Spec) -> exp.Expr:
    """True when the row's score is present and inside the declared scale."""
    score = col("score")
    return exp.and_(
        exp.Not(this=exp.Is(this=score, expression=exp.Null())),
        exp.GTE(this=score, expression=exp.Literal.number(spec.scale.low)),
        exp.LTE(this=score, expression=exp.Literal.number(spec.scale.high)),
    )


def classified(spec: Spec) -> exp.Select:
    """Eligible rows with score status, sentiment class and the 0/1 flags measures sum."""
    valid = valid_score_condition(spec)
    present = exp.Not(this=exp.Is(this=col("score"), expression=exp.Null()))
    cls = col("sentiment_class", "c")
    base = exp.select(exp.Star(), alias(_class_case(spec), "sentiment_class")).from_(
        eligible(spec).subquery("e")
    )
    unmapped: exp.Expr = exp.false()
    if spec.uses_label:
        assert spec.sentiment.labels is not None
        known = sorted(spec.sentiment.labels.mapping())
        unmapped = exp.and_(
            exp.Not(this=exp.Is(this=col("label", "c"), expression=exp.Null())),
            exp.Not(this=null_safe_in(col("label", "c"), known)),
        )
    flags = {
        "is_eligible": exp.true(),
        "is_scored": valid.transform(lambda n: _requalify(n, "c")),
        "is_unscored": exp.Is(this=col("score", "c"), expression=exp.Null()),
        "is_invalid_score": exp.and_(
            present.transform(lambda n: _requalify(n, "c")),
            exp.Not(this=exp.paren(valid.transform(lambda n: _requalify(n, "c")))),
        ),
        "is_classified": exp.Not(this=exp.Is(this=cls, expression=exp.Null())),
        "is_unmapped_label": unmapped,
        "is_positive": exp.EQ(this=cls, expression=lit("positive")),
        "is_neutral": exp.EQ(this=cls, expression=lit("neutral")),
        "is_negative": exp.EQ(this=cls, expression=lit("negative")),
    }
    assert tuple(flags) == FACT_FLAGS
    names = [RID, USER, RESP, ACT, *spec.user_attributes(), *spec.responses.attributes]
    select = exp.select(*[col(n, "c") for n in names])
    select = select.select(
        col("score", "c"),
        alias(exp.Case().when(flags["is_scored"], col("score", "c")), "valid_score"),
        col("label", "c"),
        col("sentiment_class", "c"),
        alias(exp.Literal.number(0), "is_user_row"),
    )
    for name, condition in flags.items():
        select = select.select(alias(flag(condition), name))
    return select.from_(base.subquery("c"))


def _requalify(node: exp.Expr, table: str) -> exp.Expr:
    if isinstance(node, exp.Column) and not node.table:
        return col(node.name, table)
    return node


def facts(spec: Spec) -> exp.Query:
    """Return the governed relation: user rows UNION ALL eligible response rows."""
    resp = classified(spec)
    users = first_activation(spec).subquery("u")
    out_names = [c.alias_or_name for c in resp.selects]
    user_cols = {USER, ACT, *spec.user_attributes()}
    user_select = exp.select(
        *[
            col(n, "u")
            if n in user_cols
            else alias(exp.Literal.number(1 if n == "is_user_row" else 0), n)
            if n == "is_user_row" or n in FACT_FLAGS
            else alias(_typed_null(n), n)
            for n in out_names
        ]
    ).from_(users)
    return exp.union(user_select, resp, distinct=False)


def _typed_null(name: str) -> exp.Expr:
    """NULL cast to the type the response rows have in column ``name``, when it is known."""
    # DataFusion types a UNION column from its first branch; SUM over an untyped NULL fails.
    kind = _NULL_TYPES.get(name)
    return exp.cast(exp.Null(), kind) if kind else exp.Null()


def label_values(spec: Spec) -> list[str]:
    """Return the normalized labels of the spec's mapping (for docs and Cube filters)."""
    if spec.sentiment.labels is None:
        return []
    return [normalize_label(v) for v in spec.sentiment.labels.mapping()]

"""Every query the benchmark times, for one grouping: generated, hand-written, floor, Cube.

The hand-written baseline is what an analyst who knows DuckDB would write for the same numbers:
first activations with ``QUALIFY``, duplicate response ids ranked only where an id repeats,
one join and one aggregation. The floor is the bare join of responses to first activations,
counted per group: no SELECT of the same numbers can do less work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from cfs_semantic.contract import OUTPUT_COLUMNS
from cfs_semantic.dialects import render
from cfs_semantic.reference import Grouping
from cfs_semantic.spec import Spec
from cfs_semantic.sql.aggregate import aggregate_query
from cfs_semantic.sql.facts import facts


@dataclass(frozen=True)
class View:
    """One grouping the benchmark measures, with the SQL expression of its key."""

    name: str
    grouping: Grouping
    key: str
    key_sql: str
    user_level: bool


VIEWS: tuple[View, ...] = (
    View("by persona", Grouping(("persona",)), "persona", "a.persona", True),
    View(
        "by month",
        Grouping((), "responded", "month"),
        "responded_month",
        "date_trunc('month', r.responded_at)",
        False,
    ),
)

_FIRST_ACTIVATION = """first_activation AS (
  SELECT user_id, activated_at, persona, channel
  FROM activations
  WHERE user_id IS NOT NULL AND activated_at IS NOT NULL
  QUALIFY row_number() OVER (
    PARTITION BY user_id ORDER BY activated_at, persona NULLS LAST, channel NULLS LAST) = 1
)"""

_RESPONSE_COLUMNS = """response_id, user_id, responded_at, score,
    nullif(lower(trim(sentiment)), '') AS label, journey_step"""

# Only ids that repeat need ranking: a hash aggregate finds them, the window sees ~2 % of rows.
_RESPONSES = f"""repeated AS (
  SELECT response_id FROM responses
  WHERE response_id IS NOT NULL
  GROUP BY response_id HAVING count(*) > 1
),
response AS (
  SELECT {_RESPONSE_COLUMNS} FROM responses ANTI JOIN repeated USING (response_id)
  UNION ALL
  SELECT {_RESPONSE_COLUMNS} FROM responses SEMI JOIN repeated USING (response_id)
  QUALIFY row_number() OVER (PARTITION BY response_id
    ORDER BY responded_at NULLS LAST, score NULLS LAST, label NULLS LAST,
             journey_step NULLS LAST) = 1
)"""

_WINDOW = """r.responded_at >= a.activated_at
    AND r.responded_at < a.activated_at + INTERVAL {days} DAY"""


def _quote(value: str) -> str:
    """A spec value as a DuckDB string literal (escaped by sqlglot, never pasted raw)."""
    return exp.Literal.string(value).sql("duckdb")


def _class_case(spec: Spec) -> str:
    sent, scale = spec.sentiment, spec.scale
    labels = sent.labels.mapping() if sent.labels else {}
    whens = [
        f"WHEN r.label = {_quote(label)} THEN {_quote(cls)}"
        for label, cls in sorted(labels.items())
        if cls != "excluded"
    ]
    return f"""CASE {" ".join(whens)}
      WHEN r.label IS NOT NULL THEN NULL
      WHEN r.score BETWEEN {sent.positive_min} AND {scale.high} THEN 'positive'
      WHEN r.score BETWEEN {scale.low} AND {sent.negative_max} THEN 'negative'
      WHEN r.score BETWEEN {scale.low} AND {scale.high} THEN 'neutral'
    END"""


def _counts(spec: Spec) -> str:
    valid = f"score BETWEEN {spec.scale.low} AND {spec.scale.high}"
    known = ", ".join(_quote(label) for label in sorted(spec.sentiment.labels.mapping()))
    return f"""count(DISTINCT user_id) AS responding_users,
    count(*) AS eligible_responses,
    count(*) FILTER ({valid}) AS scored_responses,
    count(*) FILTER (score IS NULL) AS unscored_responses,
    count(*) FILTER (NOT {valid}) AS invalid_score_responses,
    count(cls) AS classified_responses,
    count(*) FILTER (label NOT IN ({known})) AS unmapped_label_responses,
    count(*) FILTER (cls = 'positive') AS positive_responses,
    count(*) FILTER (cls = 'neutral') AS neutral_responses,
    count(*) FILTER (cls = 'negative') AS negative_responses,
    coalesce(sum(score) FILTER ({valid}), 0) AS score_sum"""


_RATIOS = """g.score_sum / nullif(g.scored_responses, 0) AS score,
  g.positive_responses / nullif(g.classified_responses, 0) AS positive_share,
  g.neutral_responses / nullif(g.classified_responses, 0) AS neutral_share,
  g.negative_responses / nullif(g.classified_responses, 0) AS negative_share,
  (g.positive_responses - g.negative_responses) / nullif(g.classified_responses, 0)
    AS net_sentiment,
  coalesce(g.responding_users, 0) / nullif(u.activated_users, 0) AS response_rate"""


def baseline_sql(spec: Spec, view: View) -> str:
    """The hand-written single-pass query for every counter and measure of ``view``."""
    assert spec.window_days is not None
    key = view.key
    counters = [c for c in OUTPUT_COLUMNS[: OUTPUT_COLUMNS.index("score_sum") + 1]]
    outer = ", ".join(f"coalesce(g.{c}, 0) AS {c}" for c in counters if c != "activated_users")
    if view.user_level:
        users = f"SELECT {key}, count(*) AS activated_users FROM first_activation GROUP BY ALL"
        source = f"users u LEFT JOIN agg g ON u.{key} IS NOT DISTINCT FROM g.{key}"
        key_out = f"u.{key}"
    else:
        users = "SELECT count(*) AS activated_users FROM first_activation"
        source = "agg g CROSS JOIN users u"
        key_out = f"g.{key}"
    return f"""WITH {_FIRST_ACTIVATION},
{_RESPONSES},
eligible AS (
  SELECT {view.key_sql} AS {key}, r.user_id, r.score, r.label, {_class_case(spec)} AS cls
  FROM response r JOIN first_activation a USING (user_id)
  WHERE {_WINDOW.format(days=spec.window_days)}
),
agg AS (SELECT {key}, {_counts(spec)} FROM eligible GROUP BY ALL),
users AS ({users})
SELECT {key_out} AS {key}, u.activated_users, {outer},
  {_RATIOS}
FROM {source}
ORDER BY 1 NULLS LAST"""


def floor_sql(spec: Spec, view: View, dedupe: bool = False) -> str:
    """The bare join of responses to first activations, counted per group.

    With ``dedupe`` the responses are first reduced to one row per response id, the way the
    baseline does it: the floor plus the one step the contract adds that a join cannot skip.
    """
    assert spec.window_days is not None
    ctes = f"{_FIRST_ACTIVATION},\n{_RESPONSES}" if dedupe else _FIRST_ACTIVATION
    source = "response" if dedupe else "responses"
    return f"""WITH {ctes}
SELECT {view.key_sql} AS {view.key}, count(*) AS eligible_responses
FROM {source} r JOIN first_activation a USING (user_id)
WHERE {_WINDOW.format(days=spec.window_days)}
GROUP BY ALL
ORDER BY 1 NULLS LAST"""


def generated_sql(spec: Spec, view: View) -> str:
    """The project's aggregate query for ``view``, rendered for DuckDB."""
    return render(aggregate_query(spec, view.grouping), "duckdb")


def cube_query(spec: Spec, view: View) -> dict[str, Any]:
    """The Cube REST query for ``view`` against the generated analyst view."""
    name = f"{spec.name}_customer_feedback"
    query: dict[str, Any] = {
        "measures": [f"{name}.{c}" for c in OUTPUT_COLUMNS],
        "timezone": "UTC",
    }
    if view.user_level:
        query["dimensions"] = [f"{name}.{view.key}"]
        query["order"] = [{"id": f"{name}.{view.key}", "desc": False}]
    else:
        member = f"{name}.responded_at"
        query["timeDimensions"] = [{"dimension": member, "granularity": "month"}]
        query["order"] = [{"id": member, "desc": False}]
    return query


def cube_columns(spec: Spec, view: View) -> dict[str, str]:
    """Map Cube's result column names to the contract's names."""
    prefix = f"{spec.name}_customer_feedback__"
    names = {f"{prefix}{c}": c for c in OUTPUT_COLUMNS}
    key = view.key if view.user_level else "responded_at_month"
    names[f"{prefix}{key}"] = view.key
    return names


def split_duplicate_ranking(
    tree: exp.Expression, response_id: str = "response_id"
) -> exp.Expression:
    """Return a copy of the generated query that ranks only the rows whose response id repeats.

    The generated facts rank every response with ``ROW_NUMBER() OVER (PARTITION BY
    response_id ORDER BY ...)``: a sort of all rows. This variant finds the repeated ids with
    a hash aggregate and ranks only their rows; the others get ``is_duplicate = 0``. The
    numbers are the same (the benchmark checks them); this is the change proposed for
    ``cfs_semantic/sql/facts.py``.
    """
    tree = tree.copy()
    for select in list(tree.find_all(exp.Select)):
        if not any(p.alias == "is_duplicate" for p in select.selects):
            continue
        source = select.args["from_"].this
        assert isinstance(source, exp.Table), "the benchmark spec reads a table"
        rid = exp.column(response_id, "s", quoted=True)
        repeated = (
            exp.select(exp.column(response_id, "d", quoted=True))
            .from_(exp.to_table(source.name, quoted=True).as_("d", quoted=True))
            .where(exp.column(response_id, "d", quoted=True).is_(exp.null()).not_())
            .group_by(exp.column(response_id, "d", quoted=True))
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
        )
        single = select.copy()
        for projection in single.selects:
            if projection.alias == "is_duplicate":
                projection.set("this", exp.Literal.number(0))
        single = single.where(
            exp.or_(
                rid.is_(exp.null()),
                exp.In(this=rid.copy(), query=repeated.copy().subquery()).not_(),
            )
        )
        several = select.copy().where(exp.In(this=rid.copy(), query=repeated.subquery()))
        select.replace(exp.union(single, several, distinct=False))
    return tree


def proposed_facts_view(spec: Spec) -> tuple[str, str]:
    """Return (name, CREATE TEMP VIEW statement) of the facts view with the proposed ranking."""
    name = f"{spec.name}_feedback_facts_proposed"
    create = exp.Create(
        this=exp.Table(this=exp.to_identifier(name, quoted=True)),
        kind="VIEW",
        expression=split_duplicate_ranking(facts(spec)),
        replace=True,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    return name, render(create, "duckdb")


def on_view(sql: str, spec: Spec, view_name: str) -> str:
    """Point Cube's SQL at another facts view."""
    return re.sub(rf"\b{spec.name}_feedback_facts\b", view_name, sql)


def proposed_sql(spec: Spec, view: View) -> str:
    """The generated query with the proposed duplicate ranking, rendered for DuckDB."""
    return render(split_duplicate_ranking(aggregate_query(spec, view.grouping)), "duckdb")

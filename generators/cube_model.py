"""Emit the Cube data model (YAML) for a spec.

The cube reads only the governed facts view (one row per activated user plus one row per
eligible response), so the post-activation rule cannot be bypassed from Cube. Leaf measures are
sums and filtered counts; ratios are ``type: number`` measures over them with a forced decimal
division and ``NULLIF``; only additive leaf measures go into the pre-aggregation.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cfs_semantic.cube_lint import MAX_ALIAS_LENGTH, longest_alias
from cfs_semantic.errors import Problem, SpecError
from cfs_semantic.spec import Spec

LEAF_SUMS: tuple[tuple[str, str, str], ...] = (
    ("activated_users", "is_user_row", "Activated users (first activation per user)"),
    ("eligible_responses", "is_eligible", "Responses given after activation (within the window)"),
    ("scored_responses", "is_scored", "Eligible responses with a valid score"),
    ("unscored_responses", "is_unscored", "Eligible responses without a score (non-answers)"),
    ("invalid_score_responses", "is_invalid_score", "Eligible responses scored outside the scale"),
    ("classified_responses", "is_classified", "Eligible responses with a sentiment class"),
    ("unmapped_label_responses", "is_unmapped_label", "Eligible responses with an unknown label"),
)
CLASS_TITLES = {"positive": "Positive", "neutral": "Neutral", "negative": "Negative"}
TENANT_CLAIM = "tenant_id"
"""The security-context key that holds the caller's tenant (access policies and cube.py)."""
ADMIN_GROUP = "admin"
ANALYST_GROUPS = ("analyst",)
ROW_IDS = ("user_id", "response_id")
"""Row-level ids: admins may drill down to them, analysts see aggregates only."""


def cube_name(spec: Spec) -> str:
    """Return the cube's name: the spec's ``cube.cube_name`` or ``<name>_feedback``."""
    return spec.cube.cube_name or f"{spec.name}_feedback"


def facts_table(spec: Spec) -> str:
    """Return the name of the governed facts view the cube reads."""
    return f"{spec.name}_feedback_facts"


def _ratio(numerator: str, denominator: str) -> str:
    return f"1.0 * {{{numerator}}} / NULLIF({{{denominator}}}, 0)"


def measures(spec: Spec) -> list[dict[str, Any]]:
    """Return the cube's measures: additive leaves first, then ratios."""
    out: list[dict[str, Any]] = []
    for name, column, description in LEAF_SUMS:
        out.append(
            {
                "name": name,
                "title": name.replace("_", " ").capitalize(),
                "description": description,
                "type": "sum",
                "sql": column,
            }
        )
    out.append(
        {
            "name": "responding_users",
            "title": "Responding users",
            "description": "Activated users with at least one eligible response",
            "type": "count_distinct",
            "sql": "user_id",
            "filters": [{"sql": "{CUBE}.is_eligible = 1"}],
        }
    )
    for cls, title in CLASS_TITLES.items():
        out.append(
            {
                "name": f"{cls}_responses",
                "title": f"{title} responses",
                "description": f"Eligible responses classified {cls}",
                "type": "count",
                "filters": [{"sql": f"{{CUBE}}.sentiment_class = '{cls}'"}],
            }
        )
    out.append(
        {
            "name": "score_sum",
            "title": "Sum of valid scores",
            "description": "Sum of valid scores (numerator of the score)",
            "type": "sum",
            # Cube's SUM over rows without a valid score is NULL; the contract reports 0.
            "sql": "COALESCE({CUBE}.valid_score, 0)",
        }
    )
    scale = f"{spec.scale.low:g}..{spec.scale.high:g}"
    out.append(
        {
            "name": "score",
            "title": spec.title,
            "description": f"Sum of valid scores / number of valid scores (scale {scale}), "
            "post-activation only; NULL without valid scores",
            "type": "number",
            "sql": _ratio("score_sum", "scored_responses"),
            "format": "number",
        }
    )
    for cls, title in CLASS_TITLES.items():
        out.append(
            {
                "name": f"{cls}_share",
                "title": f"{title} share",
                "description": f"{title} responses / classified responses (a fraction 0..1)",
                "type": "number",
                "sql": _ratio(f"{cls}_responses", "classified_responses"),
                "format": "percent",
            }
        )
    out.append(
        {
            "name": "net_sentiment",
            "title": "Net sentiment",
            "description": "Positive share minus negative share",
            "type": "number",
            "sql": "({positive_share}) - ({negative_share})",
            "format": "percent",
        }
    )
    out.append(
        {
            "name": "response_rate",
            "title": "Response rate",
            "description": "Users with an eligible response / activated users; meaningful by user "
            "attributes and activation time",
            "type": "number",
            "sql": _ratio("responding_users", "activated_users"),
            "format": "percent",
        }
    )
    return out


def dimensions(spec: Spec) -> list[dict[str, Any]]:
    """Return the cube's dimensions: ids, segments, times and the classification."""
    out: list[dict[str, Any]] = [
        {"name": "user_id", "sql": "user_id", "type": "string", "title": "User"},
        {"name": "response_id", "sql": "response_id", "type": "string", "title": "Response"},
    ]
    for name in spec.user_attributes():
        out.append(
            {
                "name": name,
                "sql": name,
                "type": "string",
                "title": name.replace("_", " ").capitalize(),
                "description": "User attribute, from the activation record",
            }
        )
    for name in spec.responses.attributes:
        out.append(
            {
                "name": name,
                "sql": name,
                "type": "string",
                "title": name.replace("_", " ").capitalize(),
                "description": "Response attribute; activated users are not split by it",
            }
        )
    out += [
        {
            "name": "activated_at",
            "sql": "activated_at",
            "type": "time",
            "title": "Activated at",
            "description": "First activation of the user (UTC)",
        },
        {
            "name": "responded_at",
            "sql": "responded_at",
            "type": "time",
            "title": "Responded at",
            "description": "Time of the response (UTC); NULL on user rows",
        },
        {
            "name": "sentiment_class",
            "sql": "sentiment_class",
            "type": "string",
            "title": "Sentiment class",
        },
        {"name": "is_user_row", "sql": "is_user_row", "type": "number", "public": False},
    ]
    return out


def pre_aggregation(spec: Spec) -> dict[str, Any]:
    """A rollup of additive leaf measures only; ratios are recomputed from it."""
    leaves = [name for name, _, _ in LEAF_SUMS]
    leaves += [f"{cls}_responses" for cls in CLASS_TITLES] + ["score_sum"]
    return {
        "name": "leaf_counts_by_day",
        "type": "rollup",
        "measures": leaves,
        "dimensions": list(spec.segments),
        "time_dimension": "responded_at",
        "granularity": "day",
    }


def sql_alias(name: str, members: list[dict[str, Any]]) -> str | None:
    """Return a short, stable ``sql_alias`` when Cube's column aliases for ``name`` are too long.

    Returns:
        None when every alias fits in PostgreSQL's 63 characters, else the name's first 20
        characters plus 8 hex digits of its SHA-256 (deterministic, unique per name).
    """
    if len(longest_alias({"name": name, "measures": members})) <= MAX_ALIAS_LENGTH:
        return None
    return f"{name[:20].rstrip('_')}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def tenant_column(spec: Spec) -> str | None:
    """Return the spec's tenant dimension, checking that the facts view carries it.

    Raises:
        SpecError: ``cube.tenant_column`` names no user or response attribute.
    """
    column = spec.cube.tenant_column
    known = [*spec.user_attributes(), *spec.responses.attributes]
    if column is not None and column not in known:
        raise SpecError(
            [
                Problem(
                    f"tenant column {column!r} is not an attribute of the facts view",
                    "name a user attribute (activation.attributes or activation.users."
                    f"attributes) or a response attribute (known: {', '.join(known) or 'none'})",
                    key="cube.tenant_column",
                )
            ]
        )
    return column


def access_policy(spec: Spec, members: list[str]) -> list[dict[str, Any]]:
    """Admins see every member, analysts no row ids; both only their tenant's rows."""
    column = tenant_column(spec)
    assert column is not None
    rows = {
        "filters": [
            {
                "member": column,
                "operator": "equals",
                "values": [f"{{ security_context.{TENANT_CLAIM} }}"],
            }
        ]
    }
    hidden = [m for m in ROW_IDS if m in members]
    return [
        {"group": ADMIN_GROUP, "member_level": {"includes": "*"}, "row_level": rows},
        {
            "groups": list(ANALYST_GROUPS),
            "member_level": {"includes": [m for m in members if m not in hidden]},
            "row_level": rows,
        },
    ]


def cube_model(spec: Spec, sql_table: str | None = None) -> dict[str, Any]:
    """Return the model for one spec: one cube over the facts view and one analyst view.

    Names long enough for Cube's column aliases to exceed 63 characters get a short
    ``sql_alias``; a spec with ``cube.tenant_column`` gets access policies on the view.
    """
    name = cube_name(spec)
    cube: dict[str, Any] = {"name": name}
    _add_alias(cube, measures(spec) + dimensions(spec))
    cube |= {
        "sql_table": sql_table or facts_table(spec),
        "title": spec.title,
        "description": (spec.description or spec.title).strip()
        + " Reads only the governed facts view, so only post-activation feedback counts.",
        "measures": measures(spec),
        "dimensions": dimensions(spec),
    }
    if spec.cube.pre_aggregation:
        cube["pre_aggregations"] = [pre_aggregation(spec)]
    public_dims = [d for d in dimensions(spec) if d.get("public", True)]
    includes = [m["name"] for m in measures(spec)] + [d["name"] for d in public_dims]
    view: dict[str, Any] = {"name": f"{spec.name}_customer_feedback"}
    _add_alias(view, measures(spec) + public_dims)
    view |= {
        "title": spec.title,
        "description": "Governed Customer Feedback Score (Post-activation) and sentiment split",
        "cubes": [{"join_path": name, "includes": includes}],
    }
    if spec.cube.tenant_column is not None:
        view["access_policy"] = access_policy(spec, includes)
    return {"cubes": [cube], "views": [view]}


def _add_alias(target: dict[str, Any], members: list[dict[str, Any]]) -> None:
    alias = sql_alias(target["name"], members)
    if alias is not None:
        target["sql_alias"] = alias

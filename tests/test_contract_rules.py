"""Contract rules the shared cases do not cover, each with a small hand-computed example."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pytest

from cfs_semantic.compare import compare, round_half_up
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import Grouping, SourceFrames, aggregate
from cfs_semantic.spec import Spec
from cfs_semantic.sql.aggregate import aggregate_query


def _ts(values: list[str | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(values), format="ISO8601").astype("datetime64[us]")


def _both(spec: Spec, tables: dict[str, pd.DataFrame], grouping: Grouping) -> pd.DataFrame:
    """Run reference and DuckDB SQL, assert they agree, return the reference result."""
    frames = SourceFrames(
        responses=tables["responses"],
        activations=tables.get("activations", tables.get("events")),
        users=tables.get("users"),
    )
    expected = aggregate(spec, frames, grouping)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, frame in tables.items():
        con.register(name, frame)
    actual = con.execute(aggregate_query(spec, grouping).sql("duckdb")).df()
    diffs = compare(expected, actual, grouping.columns())
    assert not diffs, "\n".join(d.render() for d in diffs)
    return expected


def _table_spec(**extra: Any) -> Spec:
    data: dict[str, Any] = {
        "name": "rules",
        "activation": {
            "mode": "table",
            "source": "activations",
            "user_id": "user_id",
            "activated_at": "activated_at",
        },
        "responses": {
            "source": "responses",
            "response_id": "response_id",
            "user_id": "user_id",
            "responded_at": "responded_at",
            "score": "score",
        },
        "scale": {"preset": "1-5"},
        "sentiment": {"source": "score"},
    }
    data.update(extra)
    return spec_from_dict(data)


RESPONSES = pd.DataFrame(
    {
        "response_id": ["r3", "r1", "r2", "r4"],
        "user_id": ["u1", "u1", "u1", "u2"],
        "responded_at": _ts(["2024-01-05", "2024-01-02", "2024-01-05", "2024-01-03"]),
        "score": [1.0, 5.0, 3.0, 4.0],
    }
)
ACTIVATIONS = pd.DataFrame(
    {"user_id": ["u1", "u2"], "activated_at": _ts(["2024-01-01", "2024-01-01"])}
)


@pytest.mark.parametrize(
    "dedupe,expected_score", [("all", 3.25), ("first_per_user", 4.5), ("latest_per_user", 3.5)]
)
def test_dedupe_keeps_one_response_per_user_with_ties_by_smallest_id(
    dedupe: str, expected_score: float
) -> None:
    """first: r1 (5) and r4 (4); latest: r2 and r3 tie on time, r2 wins (3), with r4 (4)."""
    result = _both(
        _table_spec(dedupe=dedupe), {"responses": RESPONSES, "activations": ACTIVATIONS}, Grouping()
    )
    assert result["score"].iloc[0] == expected_score


def test_first_event_mode_uses_the_first_qualifying_event_and_user_attributes() -> None:
    """Only 'project_created' events activate; attributes come from the users table."""
    events = pd.DataFrame(
        {
            "uid": ["u1", "u1", "u2", "u3"],
            "kind": ["login", "project_created", "project_created", "login"],
            "at": _ts(["2024-01-01", "2024-01-10", "2024-01-02", "2024-01-01"]),
        }
    )
    users = pd.DataFrame({"uid": ["u1", "u2", "u3"], "plan": ["pro", "free", "pro"]})
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3", "r4"],
            "user_id": ["u1", "u1", "u2", "u3"],
            "responded_at": _ts(["2024-01-05", "2024-01-11", "2024-01-03", "2024-01-05"]),
            "score": [1.0, 5.0, 4.0, 2.0],
        }
    )
    spec = _table_spec(
        activation={
            "mode": "first_event",
            "source": "events",
            "user_id": "uid",
            "occurred_at": "at",
            "where": [{"column": "kind", "in": ["project_created"]}],
            "users": {"source": "users", "user_id": "uid", "attributes": {"plan": "plan"}},
        },
        segments=["plan"],
    )
    tables = {"responses": responses, "events": events, "users": users}
    by_plan = _both(spec, tables, Grouping(("plan",))).set_index("plan")
    assert by_plan.loc["pro", "activated_users"] == 1  # u3 never created a project
    assert by_plan.loc["pro", "score"] == 5.0  # r1 predates u1's activation
    assert by_plan.loc["free", "score"] == 4.0


def test_response_stage_mode_counts_only_listed_stages() -> None:
    """Responses at post-activation stages count; an earlier stage does not."""
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3"],
            "user_id": ["u1", "u1", "u2"],
            "responded_at": _ts(["2024-01-01", "2024-02-01", "2024-01-05"]),
            "score": [2.0, 4.0, 5.0],
            "stage": ["Order", "First Payment", "Order"],
        }
    )
    spec = _table_spec(
        activation={"mode": "response_stage", "stages": ["First Payment"]},
        responses={
            "source": "responses",
            "response_id": "response_id",
            "user_id": "user_id",
            "responded_at": "responded_at",
            "score": "score",
            "stage": "stage",
        },
    )
    row = _both(spec, {"responses": responses}, Grouping()).iloc[0]
    assert (row["activated_users"], row["eligible_responses"], row["score"]) == (1, 1, 4.0)


def test_weeks_group_in_the_reporting_zone_across_a_dst_change() -> None:
    """New York: 2024-03-10 04:30 UTC is Saturday evening local, so it belongs to the week of
    March 4th; 2024-03-11 03:30 UTC is Sunday night local, also that week."""
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3"],
            "user_id": ["u1"] * 3,
            "responded_at": _ts(
                ["2024-03-10T04:30:00", "2024-03-11T03:30:00", "2024-03-11T05:30:00"]
            ),
            "score": [5.0, 3.0, 1.0],
        }
    )
    spec = _table_spec(reporting_timezone="America/New_York")
    result = _both(
        spec,
        {"responses": responses, "activations": ACTIVATIONS},
        Grouping((), "responded", "week"),
    )
    weeks = {
        str(k)[:10]: n
        for k, n in zip(result["responded_week"], result["eligible_responses"], strict=True)
    }
    assert weeks == {"2024-03-04": 2, "2024-03-11": 1}


def test_naive_timestamps_are_read_in_the_spec_zone_before_the_window() -> None:
    """In Europe/Berlin, activation 2024-01-01 00:30 local is 2023-12-31 23:30 UTC; a 1-day
    window ends at 2024-01-01 23:30 UTC = 2024-01-02 00:30 local."""
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2"],
            "user_id": ["u1", "u1"],
            "responded_at": _ts(["2024-01-02T00:29:59", "2024-01-02T00:30:00"]),
            "score": [5.0, 1.0],
        }
    )
    activations = pd.DataFrame({"user_id": ["u1"], "activated_at": _ts(["2024-01-01T00:30:00"])})
    spec = _table_spec(timezone="Europe/Berlin", window_days=1)
    row = _both(spec, {"responses": responses, "activations": activations}, Grouping()).iloc[0]
    assert (row["eligible_responses"], row["score"]) == (1, 5.0)


@pytest.mark.parametrize(
    "value,decimals,shown",
    [
        (0.125, 2, 0.13),
        (2.5, 0, 3.0),
        (0.6638, 2, 0.66),
        (-0.125, 2, -0.13),
        (None, 2, None),
    ],
)
def test_presentation_rounds_half_up_not_to_even(
    value: float | None, decimals: int, shown: float | None
) -> None:
    """0.125 -> 0.13 and 2.5 -> 3 (banker's rounding would give 0.12 and 2)."""
    assert round_half_up(value, decimals) == shown

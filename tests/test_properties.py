"""Random activations and responses give the reference numbers on every engine (hypothesis).

The data is built to hit the traps: NULL and NaN scores, scores outside the scale, duplicate
activations with different attributes, duplicate response ids, responses exactly at activation
and exactly at the end of the window (and a millisecond before), labels with odd case and
spaces, segment values that differ only in case or are empty or NULL, time zones on both sides
of midnight. Each example runs one grouping on all six engines; the examples are derandomized
so CI is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfs_semantic.cases import build_spec
from cfs_semantic.compare import compare
from cfs_semantic.dialects import RULES, render
from cfs_semantic.engines import ENGINE_NAMES
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import Grouping, SourceFrames, aggregate
from cfs_semantic.spec import Spec
from cfs_semantic.sql.aggregate import aggregate_query
from cfs_semantic.transforms import UnsupportedFeature
from tests.conftest import EngineFactory

T0 = datetime(2024, 1, 10, 21, 30)
USERS = ["u1", "U1", "u 2", "u3"]
PERSONAS = ["admin", "Admin", " admin", "Data Team", "", None]
CHANNELS = ["web", "Web ", "", None, "e-mail"]
LABELS = [" Positive", "NEGATIVE ", "neutral", "Mixed", "happy", "", "  ", None, "Ünknown"]
SCORES = [None, math.nan, -1.0, 0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]


@dataclass(frozen=True)
class Config:
    """Spec choices and a grouping; every config gets its own derandomized data."""

    grouping: Grouping
    dedupe: str = "all"
    source: str = "score"
    window: int | None = None
    zones: tuple[str, str] = ("UTC", "UTC")


CONFIGS = {
    "overall-window-1": Config(Grouping(), window=1),
    "persona-first-label": Config(Grouping(("persona",)), "first_per_user", "label"),
    "channel-latest-label-then-score-window-3": Config(
        Grouping(("channel",)), "latest_per_user", "label_then_score", 3
    ),
    "persona-channel-label-then-score": Config(
        Grouping(("persona", "channel")), source="label_then_score"
    ),
    "responded-day-in-kolkata-window-3": Config(
        Grouping((), "responded", "day"), window=3, zones=("UTC", "Asia/Kolkata")
    ),
    "activated-week-new-york-to-berlin": Config(
        Grouping((), "activated", "week"),
        "first_per_user",
        "label_then_score",
        1,
        ("America/New_York", "Europe/Berlin"),
    ),
    "channel-responded-month-new-york": Config(
        Grouping(("channel",), "responded", "month"),
        "latest_per_user",
        window=3,
        zones=("America/New_York", "America/New_York"),
    ),
}
ACT_TYPES = {"user_id": "string", "activated_at": "timestamp", "persona": "string"}
RESP_TYPES = {
    "response_id": "string",
    "user_id": "string",
    "responded_at": "timestamp",
    "score": "float",
    "sentiment": "string",
    "channel": "string",
}


@dataclass(frozen=True)
class Example:
    """One drawn data set with the spec it runs under."""

    spec: Spec
    activations: pd.DataFrame
    responses: pd.DataFrame


def _minutes(offset: int) -> datetime:
    return T0 + timedelta(minutes=offset)


activation_rows = st.lists(
    st.tuples(st.sampled_from(USERS), st.integers(0, 3 * 24 * 60), st.sampled_from(PERSONAS)),
    max_size=6,
)
# When: at activation, at the window end, a millisecond before either, or anywhere.
moments = st.one_of(
    st.tuples(st.sampled_from(["at", "end", "end-1ms", "at-1ms"]), st.just(0)),
    st.tuples(st.just("free"), st.integers(-24 * 60, 6 * 24 * 60)),
)
response_rows = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3", "r4", "r5", None]),
        st.sampled_from([*USERS, "ghost", None]),
        moments,
        st.sampled_from(SCORES),
        st.sampled_from(LABELS),
        st.sampled_from(CHANNELS),
    ),
    max_size=10,
)


def _responded_at(moment: tuple[str, int], activated: datetime | None, window: int | None) -> Any:
    kind, offset = moment
    start = activated or T0
    end = start + timedelta(days=window or 1)
    at = {"at": start, "at-1ms": start - timedelta(milliseconds=1), "end": end}
    at["end-1ms"] = end - timedelta(milliseconds=1)
    return at[kind] if kind in at else _minutes(offset)


def _spec(config: Config) -> Spec:
    zone, report_zone = config.zones
    sentiment: dict[str, Any] = {"source": config.source, "positive_min": 4, "negative_max": 2}
    if config.source != "score":
        sentiment["labels"] = {
            "positive": ["positive"],
            "neutral": ["neutral"],
            "negative": ["negative"],
            "excluded": ["mixed"],
        }
    partial: dict[str, Any] = {
        "scale": {"min": 1, "max": 5},
        "dedupe": config.dedupe,
        "sentiment": sentiment,
        "timezone": zone,
        "reporting_timezone": report_zone,
    }
    if config.window is not None:
        partial["window_days"] = config.window
    return spec_from_dict(build_spec("prop", partial, ["persona"], ["channel"]))


@st.composite
def examples(draw: st.DrawFn, config: Config) -> Example:
    """Draw activations and responses for ``config``; response times aim at the boundaries."""
    acts = [(u, _minutes(m), p) for u, m, p in draw(activation_rows)]
    first = {u: min(t for v, t, _ in acts if v == u) for u, _, _ in acts}
    rows = [
        (rid, u, _responded_at(when, first.get(u or ""), config.window), s, label, ch)
        for rid, u, when, s, label, ch in draw(response_rows)
    ]
    return Example(_spec(config), _activations(acts), _responses(rows))


def _activations(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(ACT_TYPES))
    frame["activated_at"] = pd.to_datetime(frame["activated_at"]).astype("datetime64[us]")
    return frame.astype({"user_id": object, "persona": object})


def _responses(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(RESP_TYPES))
    frame["responded_at"] = pd.to_datetime(frame["responded_at"]).astype("datetime64[us]")
    frame["score"] = pd.to_numeric(frame["score"]).astype("float64")
    for column in ("response_id", "user_id", "sentiment", "channel"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_data_gives_the_reference_on_every_engine(
    get_engine: EngineFactory, config: Config, data: st.DataObject
) -> None:
    """Reference and SQL agree on every counter and measure, on all six engines."""
    example = data.draw(examples(config))
    spec, grouping = example.spec, config.grouping
    frames = SourceFrames(responses=example.responses, activations=example.activations)
    expected = aggregate(spec, frames, grouping)
    problems = []
    for name in ENGINE_NAMES:
        engine = get_engine(name)
        try:
            sql = render(aggregate_query(spec, grouping), engine.dialect)
        except UnsupportedFeature:
            # A time zone conversion on a target without time zones: a clear error, by design.
            assert not RULES[engine.dialect].time_zones, name
            continue
        engine.load_table("activations", example.activations, ACT_TYPES)
        engine.load_table("responses", example.responses, RESP_TYPES)
        result = engine.query(sql)
        diffs = compare(expected, result, grouping.columns())
        problems += [f"{name}: {d.render()}" for d in diffs[:5]]
    assert not problems, "\n".join(problems)


def test_reference_groups_when_only_null_segment_users_respond() -> None:
    """Only the user with a NULL persona responds: both personas still get their counts."""
    spec = _spec(Config(Grouping(("persona",))))
    activations = _activations([("u1", T0, "admin"), ("u2", T0, None)])
    responses = _responses([("r1", "u2", T0 + timedelta(hours=1), 4.0, None, "web")])
    grouping = Grouping(("persona",))
    result = aggregate(spec, SourceFrames(responses, activations), grouping)
    records = result.to_dict("records")
    by_persona = {None if pd.isna(r["persona"]) else r["persona"]: r for r in records}
    assert by_persona["admin"]["activated_users"] == 1
    assert by_persona[None]["responding_users"] == 1

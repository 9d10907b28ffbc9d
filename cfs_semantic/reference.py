"""The pandas reference implementation, written straight from the metric contract.

It shares nothing with the SQL builder but the spec and the output names, so the two check
each other. Inputs are the rows of the spec's sources (activation, events, users, responses) as
DataFrames; outputs are one row per group with every counter and measure of the contract.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cfs_semantic.contract import CLASSES, COUNTERS, OUTPUT_COLUMNS, Grouping

__all__ = ["Grouping", "SourceFrames", "aggregate"]
from cfs_semantic.errors import DataError
from cfs_semantic.spec import ActivationMode, Dedupe, Spec, normalize_label

logger = logging.getLogger(__name__)

USER_KEY = "__user"
ACTIVATED = "__activated_at"
RESPONDED = "__responded_at"


@dataclass
class SourceFrames:
    """Rows of each source the spec names, keyed by role."""

    responses: pd.DataFrame
    activations: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)


def to_utc_naive(values: pd.Series, zone: str, what: str) -> pd.Series:
    """Parse timestamps; naive ones are read in ``zone``; return naive UTC datetimes."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        bad = values.notna() & parsed.isna() & (values.astype("string").str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{what}: value {values.iloc[row]!r} at row {row + 1} is not a timestamp; "
                "use ISO-8601 or set tables.<name>.timestamp_format"
            )
    if getattr(parsed.dt, "tz", None) is not None:
        return parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    if zone != "UTC":
        parsed = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def _first_rows(frame: pd.DataFrame, key: str, order: list[str]) -> pd.DataFrame:
    """Keep the first row per key by ``order`` ascending, NULLs last."""
    ranked = frame.sort_values([key, *order], na_position="last", kind="mergesort")
    return ranked.drop_duplicates(subset=[key], keep="first")


def first_activations(spec: Spec, src: SourceFrames) -> pd.DataFrame:
    """Return one row per activated user: user key, activation time and user attributes."""
    act = spec.activation
    attrs = spec.user_attributes()
    if act.mode is ActivationMode.RESPONSE_STAGE:
        eligible = _stage_rows(spec, src.responses)
        users = eligible.groupby(USER_KEY, dropna=False)[RESPONDED].min().reset_index()
        return users.rename(columns={RESPONDED: ACTIVATED})
    assert src.activations is not None and act.user_id is not None
    rows = src.activations
    if act.mode is ActivationMode.TABLE:
        assert act.activated_at is not None
        frame = pd.DataFrame({USER_KEY: rows[act.user_id]})
        frame[ACTIVATED] = to_utc_naive(rows[act.activated_at], spec.timezone, "activated_at")
        for name, column in attrs.items():
            frame[name] = rows[column]
        frame = frame[frame[USER_KEY].notna() & frame[ACTIVATED].notna()]
        return _first_rows(frame, USER_KEY, [ACTIVATED, *attrs]).reset_index(drop=True)
    assert act.occurred_at is not None
    keep = pd.Series(True, index=rows.index)
    for criterion in act.where:
        keep &= rows[criterion.column].astype("string").isin(criterion.values).fillna(False)
    events = pd.DataFrame({USER_KEY: rows[act.user_id]})
    events[ACTIVATED] = to_utc_naive(rows[act.occurred_at], spec.timezone, "occurred_at")
    events = events[keep & events[USER_KEY].notna() & events[ACTIVATED].notna()]
    first = events.groupby(USER_KEY)[ACTIVATED].min().reset_index()
    if act.users is not None and src.users is not None:
        users = pd.DataFrame({USER_KEY: src.users[act.users.user_id]})
        for name, column in attrs.items():
            users[name] = src.users[column]
        users = _first_rows(users[users[USER_KEY].notna()], USER_KEY, list(attrs))
        first = first.merge(users, on=USER_KEY, how="left")
    return first.reset_index(drop=True)


def _response_base(spec: Spec, responses: pd.DataFrame) -> pd.DataFrame:
    cols = spec.responses
    frame = pd.DataFrame(index=responses.index)
    frame["__rid"] = responses[cols.response_id] if cols.response_id else responses.index
    if cols.user_id:
        frame[USER_KEY] = responses[cols.user_id]
    else:
        frame[USER_KEY] = np.arange(len(responses))
    frame[RESPONDED] = to_utc_naive(responses[cols.responded_at], spec.timezone, "responded_at")
    frame["__score"] = (
        pd.to_numeric(responses[cols.score], errors="coerce").astype("float64")
        if cols.score
        else np.nan
    )
    frame["__label"] = responses[cols.label] if cols.label else None
    for name, column in cols.attributes.items():
        frame[name] = responses[column]
    if cols.stage:
        frame["__stage"] = responses[cols.stage]
    frame["__duplicate"] = _duplicates(frame, cols.response_id, list(cols.attributes))
    return frame


def _label_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Return a code per row and the normalized label per code ("" for none or non-text).

    Labels repeat a lot, so each distinct value is normalized once; code -1 (a missing value)
    picks the trailing "".
    """
    codes, uniques = pd.factorize(values)
    texts = [normalize_label(v) if isinstance(v, str) else "" for v in uniques]
    return codes, [*texts, ""]


def _duplicates(frame: pd.DataFrame, response_id: str | None, attrs: list[str]) -> pd.Series:
    """True for every row after the first with the same non-NULL response id."""
    flags = np.zeros(len(frame), dtype=bool)
    if response_id is None:
        return pd.Series(flags, index=frame.index)
    rid = frame["__rid"]
    # Only rows whose id repeats can be duplicates: rank just those (a stable sort keeps
    # their relative order, so the first per id is the same as when ranking every row).
    positions = np.flatnonzero((rid.notna() & rid.duplicated(keep=False)).to_numpy())
    if len(positions):
        subset = frame.iloc[positions].reset_index(drop=True)
        codes, texts = _label_codes(subset["__label"])
        keys = np.array([t or None for t in texts], dtype=object)[codes]
        ranked = subset.assign(__label_key=keys).sort_values(
            ["__rid", RESPONDED, "__score", "__label_key", *attrs],
            na_position="last",
            kind="mergesort",
        )
        later = ranked.duplicated(subset=["__rid"], keep="first").to_numpy()
        flags[positions[ranked.index.to_numpy()]] = later
    return pd.Series(flags, index=frame.index)


def _stage_rows(spec: Spec, responses: pd.DataFrame) -> pd.DataFrame:
    frame = _response_base(spec, responses)
    at_stage = frame["__stage"].isin(spec.activation.stages).fillna(False).astype(bool)
    keep = at_stage & frame[RESPONDED].notna() & frame[USER_KEY].notna() & ~frame["__duplicate"]
    return frame[keep]


def eligible_responses(spec: Spec, src: SourceFrames, users: pd.DataFrame) -> pd.DataFrame:
    """Return the eligible responses with their user's activation and attributes."""
    if spec.activation.mode is ActivationMode.RESPONSE_STAGE:
        rows = _stage_rows(spec, src.responses)
        rows = rows.merge(users, on=USER_KEY, how="inner")
    else:
        rows = _response_base(spec, src.responses)
        rows = rows[rows[USER_KEY].notna() & rows[RESPONDED].notna() & ~rows["__duplicate"]]
        rows = rows.merge(users, on=USER_KEY, how="inner")
        keep = rows[ACTIVATED] <= rows[RESPONDED]
        if spec.window_days is not None:
            keep &= rows[RESPONDED] < rows[ACTIVATED] + pd.Timedelta(days=spec.window_days)
        rows = rows[keep]
    if spec.dedupe is not Dedupe.ALL:
        ascending = spec.dedupe is Dedupe.FIRST_PER_USER
        rows = rows.sort_values(
            [USER_KEY, RESPONDED, "__rid"], ascending=[True, ascending, True], kind="mergesort"
        ).drop_duplicates(subset=[USER_KEY], keep="first")
    return classify(spec, rows.reset_index(drop=True))


def classify(spec: Spec, rows: pd.DataFrame) -> pd.DataFrame:
    """Add score status and sentiment class columns to eligible rows."""
    low, high = spec.scale.low, spec.scale.high
    score = rows["__score"]
    present = score.notna()
    valid = present & (score >= low) & (score <= high)
    rows = rows.assign(
        __valid=valid,
        __unscored=~present,
        __invalid=present & ~valid,
        __class=pd.Series([None] * len(rows), index=rows.index, dtype="object"),
        __unmapped=False,
    )
    decided = pd.Series(False, index=rows.index)
    if spec.uses_label:
        assert spec.sentiment.labels is not None
        mapping = spec.sentiment.labels.mapping()
        codes, texts = _label_codes(rows["__label"])
        mapped = [mapping.get(t) if t else None for t in texts]
        classes = np.array([m if m in CLASSES else None for m in mapped], dtype=object)
        unmapped = np.array([bool(t) and m is None for t, m in zip(texts, mapped, strict=True)])
        has_label = pd.Series(np.array([bool(t) for t in texts])[codes], index=rows.index)
        rows["__class"] = pd.Series(classes[codes], index=rows.index, dtype="object")
        rows["__unmapped"] = pd.Series(unmapped[codes], index=rows.index, dtype=bool)
        decided = has_label
    if spec.uses_score_class:
        sent = spec.sentiment
        assert sent.positive_min is not None and sent.negative_max is not None
        by_score = np.select(
            [score >= sent.positive_min, score <= sent.negative_max],
            ["positive", "negative"],
            default="neutral",
        )
        use = valid & ~decided
        rows.loc[use, "__class"] = by_score[use.to_numpy()]
    return rows


def add_time_column(frame: pd.DataFrame, source: str, grain: str, zone: str, name: str) -> None:
    """Add ``name``: ``source`` (naive UTC) truncated to ``grain`` in the reporting zone."""
    local = frame[source].dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None)
    if grain == "day":
        out = local.dt.floor("D")
    elif grain == "week":
        day = local.dt.floor("D")
        out = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    elif grain == "month":
        out = local.dt.to_period("M").dt.to_timestamp()
    else:
        raise ValueError(f"unknown grain {grain!r}")
    frame[name] = out


def _stats(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    flags = pd.DataFrame(
        {
            "eligible_responses": 1,
            "scored_responses": rows["__valid"].astype(int),
            "unscored_responses": rows["__unscored"].astype(int),
            "invalid_score_responses": rows["__invalid"].astype(int),
            "classified_responses": rows["__class"].notna().astype(int),
            "unmapped_label_responses": rows["__unmapped"].astype(int),
            "score_sum": rows["__score"].where(rows["__valid"], 0.0),
        },
        index=rows.index,
    )
    for cls in CLASSES:
        flags[f"{cls}_responses"] = (rows["__class"] == cls).astype(int)
    for key in keys:
        flags[key] = rows[key]
    flags[USER_KEY] = rows[USER_KEY]
    by = keys or ["__all"]
    if not keys:
        flags["__all"] = 0
    grouped = flags.groupby(by, dropna=False, sort=False)
    out = grouped.sum(numeric_only=True)
    out["responding_users"] = grouped[USER_KEY].nunique()
    out = out.reset_index().drop(columns=["__all"], errors="ignore")
    return _as_object_keys(out, keys)


def _as_object_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Give the group columns the types grouping by their values as objects would infer.

    Grouping by the columns' own types is much faster than converting every row to an object
    first; the conversion then runs once per group, with the same result.
    """
    if not keys:
        return frame
    labels = frame[keys].astype("object").groupby(keys, dropna=False, sort=False).size()
    assert len(labels) == len(frame), "bug: group keys collide once converted to objects"
    return pd.concat([labels.reset_index()[keys], frame.drop(columns=keys)], axis=1)


def aggregate(spec: Spec, src: SourceFrames, grouping: Grouping = Grouping()) -> pd.DataFrame:
    """Compute every counter and measure of the contract per group.

    Args:
        spec: the validated spec.
        src: the rows of its sources.
        grouping: segments and optional time dimension and grain.

    Returns:
        One row per group: the group columns, then ``OUTPUT_COLUMNS``.
    """
    users = first_activations(spec, src)
    rows = eligible_responses(spec, src, users)
    user_level = set(spec.user_attributes()) | {"activated"}
    keys = grouping.columns()
    if grouping.time_dim and grouping.grain:
        source = ACTIVATED if grouping.time_dim == "activated" else RESPONDED
        add_time_column(rows, source, grouping.grain, spec.report_zone, keys[-1])
        if grouping.time_dim == "activated":
            add_time_column(users, ACTIVATED, grouping.grain, spec.report_zone, keys[-1])
    levels = list(grouping.segments) + ([grouping.time_dim] if grouping.time_dim else [])
    user_keys = [k for k, lvl in zip(keys, levels, strict=True) if lvl in user_level]
    # Group keys as objects on both sides: an all-NULL key column would otherwise come back
    # as float64 and refuse to merge with a text column.
    stats = _keys_as_object(_stats(rows, keys), keys)
    activated = _keys_as_object(_count_users(users, user_keys), user_keys)
    if len(user_keys) == len(keys):
        out = activated.merge(stats, on=keys, how="left") if keys else activated.join(stats)
        if not keys and stats.empty:
            out = activated
    else:
        out = (
            stats.merge(activated, on=user_keys, how="left")
            if user_keys
            else stats.assign(activated_users=int(activated["activated_users"].iloc[0]))
        )
    return finish(out, keys)


def _keys_as_object(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.assign(**{k: frame[k].astype("object") for k in keys if k in frame})


def _count_users(users: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = users.assign(**{k: users[k].astype("object") for k in keys})
    if not keys:
        return pd.DataFrame({"activated_users": [len(frame)]})
    counts = frame.groupby(keys, dropna=False, sort=False).size()
    return counts.rename("activated_users").reset_index()


def finish(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Fill missing counters with 0, derive the ratios, order rows and columns."""
    out = frame.copy()
    for name in (*COUNTERS, "score_sum"):
        if name not in out:
            out[name] = 0
        out[name] = out[name].fillna(0)
    for name in COUNTERS:
        out[name] = out[name].astype("int64")
    out["score_sum"] = out["score_sum"].astype("float64")
    scored = out["scored_responses"].where(out["scored_responses"] > 0)
    classified = out["classified_responses"].where(out["classified_responses"] > 0)
    activated = out["activated_users"].where(out["activated_users"] > 0)
    out["score"] = out["score_sum"] / scored
    for cls in CLASSES:
        out[f"{cls}_share"] = out[f"{cls}_responses"] / classified
    out["net_sentiment"] = out["positive_share"] - out["negative_share"]
    out["response_rate"] = out["responding_users"] / activated
    out = out[[*keys, *OUTPUT_COLUMNS]]
    if keys:
        out = out.sort_values(keys, na_position="last", kind="mergesort")
    return out.reset_index(drop=True)

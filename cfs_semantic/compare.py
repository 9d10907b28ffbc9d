"""Normalize results from any engine and compare them value by value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from cfs_semantic.contract import COUNTERS, MEASURES, OUTPUT_COLUMNS

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Difference:
    """One value that differs between two results."""

    group: tuple[Any, ...]
    column: str
    expected: Any
    actual: Any

    def render(self) -> str:
        """Return the difference as one readable line."""
        where = ", ".join(map(str, self.group)) or "overall"
        return f"{where}: {self.column}: expected {self.expected!r}, got {self.actual!r}"


def _key_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def normalize(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return ``frame`` with group keys as text (or None) and numbers as float or None."""
    out = pd.DataFrame(index=range(len(frame)))
    for key in keys:
        out[key] = [_key_value(v) for v in frame[key].tolist()]
    for column in OUTPUT_COLUMNS:
        if column in frame:
            out[column] = [_number(v) for v in frame[column].tolist()]
    return out


def compare(
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    keys: list[str],
    tolerance: float = TOLERANCE,
    columns: tuple[str, ...] = OUTPUT_COLUMNS,
) -> list[Difference]:
    """Compare two results group by group; every counter and measure must agree.

    Counters must be equal; measures may differ by ``tolerance``; NULL equals only NULL.
    A group present on one side only is a difference too.
    """
    exp_rows = _by_group(normalize(expected, keys), keys)
    act_rows = _by_group(normalize(actual, keys), keys)
    diffs: list[Difference] = []
    for group in sorted(set(exp_rows) | set(act_rows), key=lambda g: tuple(map(str, g))):
        if group not in act_rows:
            diffs.append(Difference(group, "<group>", "present", "missing"))
            continue
        if group not in exp_rows:
            diffs.append(Difference(group, "<group>", "absent", "extra group"))
            continue
        for column in columns:
            want, got = _number(exp_rows[group].get(column)), _number(act_rows[group].get(column))
            if not _same(want, got, tolerance, exact=column in COUNTERS):
                diffs.append(Difference(group, column, want, got))
    return diffs


def _by_group(frame: pd.DataFrame, keys: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        group = tuple(record[k] for k in keys)
        if group in rows:
            raise AssertionError(f"group {group} appears twice")
        rows[group] = record
    return rows


def _same(want: Any, got: Any, tolerance: float, exact: bool) -> bool:
    want, got = _number(want), _number(got)
    if want is None or got is None:
        return want is None and got is None
    if exact:
        return bool(want == got)
    return abs(want - got) <= tolerance * max(1.0, abs(want))


def round_half_up(value: Any, decimals: int) -> Any:
    """Round for presentation, half away from zero on the decimal value (never half-to-even)."""
    number = _number(value)
    if number is None:
        return None
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(number)).quantize(quantum, rounding=ROUND_HALF_UP))


def present(frame: pd.DataFrame, keys: list[str], decimals: int) -> pd.DataFrame:
    """Return a copy for display: counters as integers, measures rounded half-up."""
    out = normalize(frame, keys)
    for column in COUNTERS:
        out[column] = [None if v is None else int(v) for v in out[column]]
        out[column] = out[column].astype("object")
    out["score_sum"] = [round_half_up(v, decimals) for v in out["score_sum"]]
    for column in MEASURES:
        out[column] = [round_half_up(v, decimals) for v in out[column]]
        out[column] = out[column].astype("object")
    return out

"""Shared helpers for tests: the hand-computed cases and the real-data examples."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from cfs_semantic.cases import Case, load_case
from cfs_semantic.reference import Grouping

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CASE_FILES = sorted((SHARED / "cases").glob("*.yaml"))
EXAMPLES = {
    "ravenstack": REPO / "examples/ravenstack/spec.yaml",
    "telecom_nps": REPO / "examples/telecom_nps/spec.yaml",
    "telecom_nps_score": REPO / "examples/telecom_nps/spec_score.yaml",
}
TOLERANCE = 1e-9


def cases() -> list[Case]:
    """Every case under shared/cases, loaded."""
    if not CASE_FILES:
        raise FileNotFoundError(f"no cases under {SHARED / 'cases'}: is ../shared beside the repo?")
    return [load_case(path) for path in CASE_FILES]


def expectations(case: Case) -> list[tuple[Grouping, tuple[Any, ...], dict[str, Any]]]:
    """Return (grouping, group key, expected values) for everything a case states."""
    out: list[tuple[Grouping, tuple[Any, ...], dict[str, Any]]] = []
    if "overall" in case.expect:
        out.append((Grouping(), (), case.expect["overall"]))
    for segment, groups in (case.expect.get("by") or {}).items():
        for value, expected in groups.items():
            out.append((Grouping((segment,)), (value,), expected))
    return out


def row_for(result: pd.DataFrame, grouping: Grouping, key: tuple[Any, ...]) -> dict[str, Any]:
    """Return the result row of one group (NULL keys match None), failing if it is absent."""
    records = result.to_dict("records")
    for record in records:
        values = tuple(_plain(record[c]) for c in grouping.columns())
        if values == tuple(None if k is None else str(k) for k in key):
            return record
    raise AssertionError(f"group {key} missing from result:\n{result}")


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def assert_expected(record: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Assert every expected value, NULL as NULL, numbers within the case tolerance."""
    for column, want in expected.items():
        got = record[column]
        got_null = got is None or got is pd.NA or (isinstance(got, float) and math.isnan(got))
        if want is None:
            assert got_null, f"{where}: {column} expected NULL, got {got!r}"
            continue
        assert not got_null, f"{where}: {column} expected {want!r}, got NULL"
        assert abs(float(got) - float(want)) <= TOLERANCE, (
            f"{where}: {column} expected {want!r}, got {got!r}"
        )

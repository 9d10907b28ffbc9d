"""Every hand-computed case in shared/cases holds on the pandas reference.

The generated SQL is checked against the same values, and against the reference on every
counter, on all six engines in ``test_engine_parity.py``.
"""

from __future__ import annotations

import pytest

from cfs_semantic.cases import Case
from cfs_semantic.reference import aggregate
from tests.kpi_cases import assert_expected, cases, expectations, row_for

CASES = cases()
CASE_IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reference_gives_the_hand_computed_values(case: Case) -> None:
    """The pandas reference reproduces every value the case states."""
    for grouping, key, expected in expectations(case):
        result = aggregate(case.spec, case.frames(), grouping)
        assert_expected(row_for(result, grouping, key), expected, f"{case.name} {key}")

"""Every input response lands in exactly one bucket, the same on the reference and in SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfs_semantic.cases import Case, build_spec
from cfs_semantic.dialects import render
from cfs_semantic.engines import ENGINE_NAMES
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reconcile import Reconciliation, reference_buckets
from cfs_semantic.reference import SourceFrames, aggregate
from cfs_semantic.sql.reconcile import BUCKETS, reconcile_query
from tests.conftest import EngineFactory
from tests.kpi_cases import cases

T0 = datetime(2024, 1, 1)
USERS = ["u1", "u2", "u3", None]


def _sql_buckets(result: pd.DataFrame) -> dict[str, int]:
    out = {name: 0 for name in BUCKETS}
    out.update({str(r["bucket"]): int(r["responses"]) for r in result.to_dict("records")})
    return out


@pytest.mark.parametrize("engine_name", ENGINE_NAMES)
@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_case_buckets_equal_the_reference_on_every_engine(
    get_engine: EngineFactory, engine_name: str, case: Case
) -> None:
    """On each shared case and engine, SQL buckets equal the reference and sum to the input."""
    engine = get_engine(engine_name)
    for name, frame in case.tables.items():
        engine.load_table(name, frame, case.types[name])
    expected = reference_buckets(case.spec, case.frames())
    got = _sql_buckets(engine.query(render(reconcile_query(case.spec), engine.dialect)))
    assert got == expected
    assert sum(got.values()) == len(case.tables["responses"])


rows = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.integers(-3, 40).map(lambda d: T0 + timedelta(days=d)),
        st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 3.0, 5.0, 6.0])),
        st.sampled_from(["r1", "r2", "r3", "r4", "r5", None]),
    ),
    max_size=12,
)
activations = st.lists(
    st.tuples(st.sampled_from(USERS[:3]), st.integers(-2, 5), st.sampled_from(["a", "b", None])),
    max_size=5,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    rows, activations, st.sampled_from([None, 10, 30]), st.sampled_from(["all", "first_per_user"])
)
def test_random_data_reconciles_exactly(response_rows, activation_rows, window, dedupe) -> None:  # type: ignore[no-untyped-def]
    """Buckets sum to the input, SQL equals the reference, and the eligible breakdown adds up."""
    partial = {
        "scale": {"min": 1, "max": 5},
        "dedupe": dedupe,
        "sentiment": {"source": "score", "positive_min": 4, "negative_max": 2},
    }
    if window:
        partial["window_days"] = window
    spec = spec_from_dict(build_spec("random", partial, ["persona"], []))
    acts = pd.DataFrame(
        [
            {"user_id": u, "activated_at": T0 + timedelta(days=d), "persona": p}
            for u, d, p in activation_rows
        ],
        columns=["user_id", "activated_at", "persona"],
    )
    acts["activated_at"] = acts["activated_at"].astype("datetime64[us]")
    resp = pd.DataFrame(
        [
            {"response_id": rid, "user_id": u, "responded_at": t, "score": s, "sentiment": None}
            for u, t, s, rid in response_rows
        ],
        columns=["response_id", "user_id", "responded_at", "score", "sentiment"],
    )
    resp["responded_at"] = resp["responded_at"].astype("datetime64[us]")
    resp["score"] = resp["score"].astype("float64")
    frames = SourceFrames(responses=resp, activations=acts)
    expected = reference_buckets(spec, frames)
    con = duckdb.connect()
    con.register("activations", acts)
    con.register("responses", resp)
    got = _sql_buckets(con.execute(render(reconcile_query(spec), "duckdb")).df())
    assert got == expected
    overall = aggregate(spec, frames).iloc[0]
    rec = Reconciliation(
        len(resp),
        got,
        {k: int(overall[k]) for k in overall.index if k.endswith(("_responses", "_users"))},
    )
    assert rec.problems() == []
    assert sum(got.values()) == len(resp)

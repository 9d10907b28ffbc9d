"""Hostile names and values round-trip as data: no second statement, the right numbers."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from cfs_semantic.compare import compare
from cfs_semantic.dialects import render, sqlglot_name
from cfs_semantic.errors import SpecError
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import Grouping, SourceFrames, aggregate
from cfs_semantic.spec import SUPPORTED_DIALECTS, Spec, normalize_label
from cfs_semantic.sql.aggregate import aggregate_query
from tests.conftest import EngineFactory

EVIL = [
    'O\'Brien; DROP TABLE "act ivations"; --',
    "back\\slash\\",
    "new\nline */ /* x",
    "ünïcødé ✓ 名前",
    '"double" `tick` [bracket]',
]
ACT_TABLE = "act ivations"
RESP_TABLE = "select; order"  # starts like a query: needs the explicit table form
COLS = {
    "user": "User Id",
    "time": "from",
    "persona": 'pers"ona',
    "label": "la'bel",
    "score": "Score;--",
    "rid": "group",
    "resp_time": "When",
    "step": "journey step",
}


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    users = [f"u{i}-{v}" for i, v in enumerate(EVIL)]
    activations = pd.DataFrame(
        {
            COLS["user"]: users,
            COLS["time"]: pd.to_datetime(["2024-01-01"] * len(users)).astype("datetime64[us]"),
            COLS["persona"]: EVIL,
        }
    )
    responses = pd.DataFrame(
        {
            COLS["rid"]: [f"r{i}'" for i in range(10)],
            COLS["user"]: users * 2,
            COLS["resp_time"]: pd.to_datetime(["2024-01-02"] * 10).astype("datetime64[us]"),
            COLS["score"]: [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 4.0, 3.0, None, 9.0],
            COLS["label"]: [f"  {EVIL[0].upper()} ", None, EVIL[3], "x", None] * 2,
            COLS["step"]: EVIL * 2,
        }
    )
    return activations, responses


def _spec() -> Spec:
    return spec_from_dict(
        {
            "name": "hostile",
            "activation": {
                "mode": "table",
                "source": ACT_TABLE,
                "user_id": COLS["user"],
                "activated_at": COLS["time"],
                "attributes": {"persona": COLS["persona"]},
            },
            "responses": {
                "source": {"table": RESP_TABLE},
                "response_id": COLS["rid"],
                "user_id": COLS["user"],
                "responded_at": COLS["resp_time"],
                "score": COLS["score"],
                "label": COLS["label"],
                "attributes": {"journey_step": COLS["step"]},
            },
            "scale": {"preset": "1-5"},
            "sentiment": {
                "source": "label_then_score",
                "labels": {"positive": [EVIL[0]], "negative": [EVIL[3]]},
            },
            "segments": ["persona", "journey_step"],
        }
    )


TYPES = {
    ACT_TABLE: {COLS["user"]: "string", COLS["time"]: "timestamp", COLS["persona"]: "string"},
    RESP_TABLE: {
        COLS["rid"]: "string",
        COLS["user"]: "string",
        COLS["resp_time"]: "timestamp",
        COLS["score"]: "float",
        COLS["label"]: "string",
        COLS["step"]: "string",
    },
}


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_hostile_sql_is_one_statement_in_every_dialect(dialect: str) -> None:
    """Quotes, semicolons and comment markers stay inside literals and identifiers."""
    sql = render(aggregate_query(_spec(), Grouping(("persona",))), dialect)
    statements = [s for s in sqlglot.parse(sql, read=sqlglot_name(dialect)) if s is not None]
    assert len(statements) == 1
    literals = {lit.this for lit in statements[0].find_all(exp.Literal) if lit.is_string}
    assert normalize_label(EVIL[0]) in literals, "the label arrives as one intact literal"
    assert not list(statements[0].find_all(exp.Drop))


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres"])
@pytest.mark.parametrize(
    "grouping",
    [Grouping(), Grouping(("persona",)), Grouping(("journey_step",))],
    ids=["overall", "by-persona", "by-journey-step"],
)
def test_hostile_values_give_the_reference_numbers(
    get_engine: EngineFactory, engine_name: str, grouping: Grouping
) -> None:
    """Executed on a real engine, every group matches the reference and no table is dropped."""
    engine = get_engine(engine_name)
    activations, responses = _frames()
    engine.load_table(ACT_TABLE, activations, TYPES[ACT_TABLE])
    engine.load_table(RESP_TABLE, responses, TYPES[RESP_TABLE])
    spec = _spec()
    result = engine.query(render(aggregate_query(spec, grouping), engine.dialect))
    expected = aggregate(spec, SourceFrames(responses=responses, activations=activations), grouping)
    diffs = compare(expected, result, grouping.columns())
    assert not diffs, "\n".join(d.render() for d in diffs)
    if grouping.segments == ("persona",):
        assert sorted(result["persona"]) == sorted(EVIL)
    count = exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(ACT_TABLE, quoted=True))
    assert int(engine.query(count.sql(engine.dialect)).iloc[0, 0]) == len(EVIL)


@pytest.mark.parametrize("bad", ["a\x00b", ""])
def test_a_label_that_cannot_be_represented_is_rejected(bad: str) -> None:
    """A NUL byte or an empty label in the mapping is a spec error, not SQL."""
    with pytest.raises(SpecError):
        spec_from_dict(
            {
                "name": "x",
                "activation": {"mode": "table", "source": "a", "user_id": "u", "activated_at": "t"},
                "responses": {"source": "r", "user_id": "u", "responded_at": "t", "label": "l"},
                "scale": {"preset": "1-5"},
                "sentiment": {"source": "label", "labels": {"positive": [bad]}},
            }
        )

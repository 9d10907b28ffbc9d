"""A deterministic synthetic dataset inside DuckDB, and the spec that reads it.

The data has the traps the metric contract handles: users with several activation rows (some
earlier than the first one generated, some with other attributes), activation rows without a
time, responses before activation and after the 90-day window, responses of users who never
activated or without a user, NULL and out-of-range scores, labels in mixed case with padding,
blank, excluded and unknown labels, duplicate response ids with different content, and NULL
personas, channels and journey steps.

Every value is a pure integer function of the row number (no random generator), so the same
size gives the same rows on any machine and any DuckDB version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from cfs_semantic.cases import build_spec
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.spec import Spec

DATA_VERSION = 1
"""Bump when the generator changes, so that kept data files are not reused by mistake."""

SPEC_NAME = "bench"
LABELS = {
    "positive": ["promoter"],
    "neutral": ["passive"],
    "negative": ["detractor"],
    "excluded": ["n/a"],
}

# uniform(row, salt) in [0, 1): two multiply-xorshift rounds on 32 bits; BIGINT never overflows.
_MACROS = """
CREATE OR REPLACE MACRO mix(i, salt) AS ((i * 2654435761 + salt * 97531 + 12345) % 4294967296);
CREATE OR REPLACE MACRO shift(x) AS (xor(x, x >> 15));
CREATE OR REPLACE MACRO lcg(x) AS ((x * 1103515245 + 12345) % 4294967296);
CREATE OR REPLACE MACRO uniform(i, salt) AS (shift(lcg(shift(mix(i, salt)))) / 4294967296.0);
CREATE OR REPLACE MACRO pick(list, i, salt) AS
  (list[1 + (uniform(i, salt) * len(list))::INT % len(list)]);
CREATE OR REPLACE MACRO days(x) AS (to_microseconds((x * 86400e6)::BIGINT));
CREATE OR REPLACE MACRO user_key(u) AS ('u' || lpad(u::VARCHAR, 9, '0'));
CREATE OR REPLACE MACRO first_time(u) AS (TIMESTAMP '2024-01-01' + days(uniform(u, 1) * 730));
"""

_ACTIVATIONS = """
CREATE OR REPLACE TABLE activations AS
WITH users AS (SELECT range AS u FROM range({users}))
SELECT user_key(u) AS user_id,
  CASE WHEN uniform(u, 10) < 0.002 THEN NULL ELSE first_time(u) END AS activated_at,
  CASE WHEN uniform(u, 2) < 0.05 THEN NULL
       ELSE pick(['Admin', 'Developer', 'Analyst', 'Manager', 'Executive'], u, 3) END AS persona,
  CASE WHEN uniform(u, 4) < 0.08 THEN NULL
       ELSE pick(['web', 'mobile', 'email', 'partner'], u, 5) END AS channel
FROM users
UNION ALL
-- a second activation row for 6 % of users, from 10 days earlier to 30 days later
SELECT user_key(u), first_time(u) + days(uniform(u, 7) * 40 - 10),
  pick(['Admin', 'Developer', 'Analyst', 'Manager', 'Executive'], u, 8),
  pick(['web', 'mobile', 'email', 'partner'], u, 9)
FROM users WHERE uniform(u, 6) < 0.06
"""

_RESPONSES = """
CREATE OR REPLACE TABLE responses AS
WITH rows AS (
  SELECT range AS i, (uniform(range, 11) * {users} * 1.03)::BIGINT AS u FROM range({responses})
)
SELECT
  CASE WHEN uniform(i, 12) < 0.01 AND i > 0 THEN i - 1 ELSE i END AS response_id,
  CASE WHEN uniform(i, 13) < 0.005 THEN NULL ELSE user_key(u) END AS user_id,
  first_time(u) + days(uniform(i, 14) * 130 - 20) AS responded_at,
  CASE WHEN uniform(i, 15) < 0.08 THEN NULL
       WHEN uniform(i, 16) < 0.01 THEN pick([11.0, -1.0, 99.0, 10.5], i, 17)
       ELSE floor(uniform(i, 18) * 11) END AS score,
  CASE WHEN uniform(i, 19) < 0.45 THEN NULL
       ELSE pick(['Promoter', ' promoter ', 'PROMOTER', 'Passive', 'passive  ', 'Detractor',
                  ' DETRACTOR', 'n/a', 'N/A ', 'mixed', '', '  '], i, 20) END AS sentiment,
  CASE WHEN uniform(i, 21) < 0.04 THEN NULL
       ELSE pick(['onboarding', 'billing', 'support', 'renewal'], i, 22) END AS journey_step
FROM rows
"""


@dataclass(frozen=True)
class Size:
    """How many activated users and responses a dataset has."""

    users: int
    responses: int

    @property
    def label(self) -> str:
        """Short name such as ``10M`` or ``300k``."""
        return format_count(self.responses)


def format_count(value: int) -> str:
    """Return ``10M``, ``3M``, ``250k`` or the plain number."""
    for unit, factor in (("M", 1_000_000), ("k", 1_000)):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


def parse_count(text: str) -> int:
    """Parse ``10M``, ``250k`` or ``1000`` into a number of rows."""
    text = text.strip().lower().replace("_", "")
    factor = {"m": 1_000_000, "k": 1_000}.get(text[-1:], 1)
    number = text[:-1] if factor > 1 else text
    value = int(float(number) * factor)
    if value <= 0:
        raise ValueError(f"a size must be positive: {text!r}")
    return value


def bench_spec() -> Spec:
    """The spec the benchmark measures: table mode, 0..10 scale, labels then score, 90 days."""
    partial = {
        "scale": {"preset": "0-10"},
        "window_days": 90,
        "sentiment": {"source": "label_then_score", "labels": LABELS},
        "segments": ["persona", "channel", "journey_step"],
    }
    data = build_spec(SPEC_NAME, partial, ["persona", "channel"], ["journey_step"])
    return spec_from_dict(data, file="benchmarks/dataset.py")


def data_file(directory: Path, size: Size) -> Path:
    """The DuckDB file holding one size of the dataset."""
    return directory / f"cfs_bench_v{DATA_VERSION}_{size.users}u_{size.responses}r.duckdb"


def generate(path: Path, size: Size, facts_view_sql: str) -> None:
    """Create the tables (and the governed facts view Cube reads) in a new DuckDB file."""
    path.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        con.execute(_MACROS)
        con.execute(_ACTIVATIONS.format(users=size.users))
        con.execute(_RESPONSES.format(users=size.users, responses=size.responses))
        con.execute(facts_view_sql)
        con.execute("CHECKPOINT")
    tmp.rename(path)


def describe(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Count the traps in the data, to show what the benchmark exercises."""
    row = con.execute(
        """
        SELECT
          (SELECT count(*) FROM activations),
          (SELECT count(DISTINCT user_id) FROM activations),
          (SELECT count(*) FROM responses),
          (SELECT count(*) - count(DISTINCT response_id) FROM responses),
          (SELECT count(*) FILTER (score IS NULL) FROM responses),
          (SELECT count(*) FILTER (score NOT BETWEEN 0 AND 10) FROM responses),
          (SELECT count(sentiment) FROM responses)
        """
    ).fetchone()
    assert row is not None
    names = (
        "activation_rows",
        "users_with_activation_rows",
        "responses",
        "duplicate_response_ids",
        "null_scores",
        "out_of_range_scores",
        "labelled_responses",
    )
    return dict(zip(names, (int(v) for v in row), strict=True))

"""Dirty exports either compute per the contract or fail naming file, row and column (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import run_cli

ACTIVATIONS = "user_id,activated_at,persona\nu1,2024-01-01T00:00:00,admin\nu2,2024-01-01,analyst\n"


def _project(
    tmp_path: Path, responses: str, activations: str = ACTIVATIONS, **spec_extra: object
) -> Path:
    """Write two CSV files and a spec reading them; return the spec path."""
    (tmp_path / "activations.csv").write_text(activations, encoding="utf-8")
    (tmp_path / "responses.csv").write_text(responses, encoding="utf-8")
    spec = {
        "name": "dirty",
        "tables": {
            "activations": {"path": "activations.csv"},
            "responses": {"path": "responses.csv"},
        },
        "activation": {
            "mode": "table",
            "source": "activations",
            "user_id": "user_id",
            "activated_at": "activated_at",
            "attributes": {"persona": "persona"},
        },
        "responses": {
            "source": "responses",
            "response_id": "response_id",
            "user_id": "user_id",
            "responded_at": "responded_at",
            "score": "score",
            "label": "label",
        },
        "scale": {"preset": "1-5"},
        "sentiment": {
            "source": "label_then_score",
            "labels": {"positive": ["Good"], "negative": ["bad"], "excluded": ["n/a"]},
        },
        "segments": ["persona"],
        **spec_extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _overall(spec: Path) -> dict[str, object]:
    done = run_cli("compute", str(spec), "--format", "json", "--decimals", "6")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    verify = run_cli("verify", str(spec))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return row


def test_text_scores_that_are_numbers_count_and_words_fail_with_row(tmp_path: Path) -> None:
    """'5' in a text column is a score; 'five' stops the run at its file line and column."""
    ok = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        'r1,u1,2024-01-02,"5",\nr2,u1,2024-01-03,"4.5",\n',
    )
    assert _overall(ok)["score"] == 4.75
    bad = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u1,2024-01-02,5,\nr2,u1,2024-01-03,five,\n",
    )
    done = run_cli("compute", str(bad))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "'five' is not a number" in done.stderr
    assert "column 'score'" in done.stderr and "line 3 of the file" in done.stderr


def test_empty_scores_are_non_answers_and_floats_on_an_integer_scale_are_valid(
    tmp_path: Path,
) -> None:
    """An empty score is unscored; 4.5 on a 1..5 scale is a valid score."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u1,2024-01-02,,\nr2,u1,2024-01-03,4.5,\nr3,u2,2024-01-03,2,\n",
    )
    row = _overall(spec)
    assert (row["unscored_responses"], row["scored_responses"], row["score"]) == (1, 2, 3.25)


def test_unparseable_timestamp_names_file_row_and_column(tmp_path: Path) -> None:
    """'yesterday' as a response time fails with its position, not a traceback."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\nr1,u1,2024-01-02,5,\nr2,u1,yesterday,4,\n",
    )
    done = run_cli("compute", str(spec))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "'yesterday' is not a timestamp" in done.stderr
    assert "responses.responded_at" in done.stderr and "row 2" in done.stderr


def test_offsets_are_honoured_and_mixed_offsets_are_rejected(tmp_path: Path) -> None:
    """+02:00 is converted to UTC before the window; a column mixing styles is an error."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u1,2024-01-01T01:00:00+02:00,5,\n"
        "r2,u1,2024-01-01T03:00:00+02:00,3,\n",
    )
    row = _overall(spec)  # r1 is 23:00 UTC the day before activation: pre-activation
    assert (row["eligible_responses"], row["score"]) == (1, 3.0)
    mixed = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u1,2024-01-02T01:00:00+02:00,5,\nr2,u1,2024-01-03,3,\n",
    )
    data = yaml.safe_load(mixed.read_text())
    data["tables"]["responses"]["types"] = {"responded_at": "string"}
    mixed.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_cli("compute", str(mixed))
    assert done.returncode == 1, done.stdout
    assert "has no UTC offset while other rows have one" in done.stderr


def test_padded_mixed_case_labels_and_duplicate_activations(tmp_path: Path) -> None:
    """' GOOD ' maps to positive; a user's earliest activation row wins with its persona."""
    activations = ACTIVATIONS + "u1,2023-12-01T00:00:00,owner\n"
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        'r1,u1,2024-01-02,1," GOOD "\nr2,u1,2024-01-02,,N/A\n'
        "r3,u2,2024-01-02,,meh\n",
        activations=activations,
    )
    done = run_cli("compute", str(spec), "--by", "persona", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {r["persona"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {"owner", "analyst"}
    assert rows["owner"]["positive_responses"] == 1 and rows["owner"]["classified_responses"] == 1
    assert rows["analyst"]["unmapped_label_responses"] == 1


def test_duplicate_response_ids_count_once(tmp_path: Path) -> None:
    """A response exported twice is reconciled as a duplicate and counted once."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u1,2024-01-02,5,\nr1,u1,2024-01-02,5,\nr2,u1,2024-01-03,3,\n",
    )
    row = _overall(spec)
    assert (row["eligible_responses"], row["score"]) == (2, 4.0)
    done = run_cli("compute", str(spec), "--reconcile", "--format", "json")
    assert json.loads(done.stdout)["duplicate_response_id"] == 1


@pytest.mark.parametrize(
    "responses",
    [
        "response_id,user_id,responded_at,score,label\n",
        "response_id,user_id,responded_at,score,label\nr1,u9,2024-01-02,5,\n",
    ],
    ids=["header-only file", "no eligible response"],
)
def test_no_feedback_gives_null_score_and_zero_rate(tmp_path: Path, responses: str) -> None:
    """Activated users without feedback: score and shares NULL, response rate 0."""
    row = _overall(_project(tmp_path, responses))
    assert row["activated_users"] == 2 and row["response_rate"] == 0.0
    assert row["score"] is None and row["positive_share"] is None


def test_day_first_dates_need_their_format(tmp_path: Path) -> None:
    """With timestamp_format '%d/%m/%Y', 02/01/2024 is the 2nd of January, not February 1st."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\nr1,u1,02/01/2024,5,\nr2,u1,13/01/2024,3,\n",
        window_days=10,
    )
    data = yaml.safe_load(spec.read_text())
    data["tables"]["responses"]["timestamp_format"] = "%d/%m/%Y"
    data["tables"]["responses"]["types"] = {"responded_at": "timestamp"}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    row = _overall(spec)
    assert (row["eligible_responses"], row["score"]) == (1, 5.0)


def test_offsets_are_honoured_when_the_spec_zone_is_not_utc(tmp_path: Path) -> None:
    """New York activation at midnight is 05:00Z; a 04:30Z response is before it."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u2,2024-01-02T04:30:00Z,5,\nr2,u2,2024-01-02T05:30:00Z,3,\n",
        activations="user_id,activated_at,persona\nu2,2024-01-02T00:00:00,analyst\n",
        timezone="America/New_York",
    )
    row = _overall(spec)
    assert (row["eligible_responses"], row["score"]) == (1, 3.0)


def test_a_value_the_declared_type_cannot_hold_names_line_and_column(tmp_path: Path) -> None:
    """With types: {score: float}, DuckDB's reader fails; the message keeps line and column."""
    spec = _project(
        tmp_path,
        "response_id,user_id,responded_at,score,label\n"
        "r1,u1,2024-01-02,5,\nr2,u1,2024-01-03,five,\n",
    )
    data = yaml.safe_load(spec.read_text())
    data["tables"]["responses"]["types"] = {"score": "float"}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_cli("compute", str(spec))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "responses.csv" in done.stderr and "Line: 3" in done.stderr
    assert 'column "score"' in done.stderr and "sample_size" not in done.stderr

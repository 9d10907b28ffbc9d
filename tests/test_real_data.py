"""The real-data examples give the independently computed values through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_cli
from tests.kpi_cases import EXAMPLES


def test_compute_on_ravenstack_gives_the_published_values() -> None:
    """shared/data/README.md: 1,160 scored, score 3.9810, shares 0.6638 / 0.3362 / 0.0000."""
    done = run_cli("compute", str(EXAMPLES["ravenstack"]), "--format", "json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["scored_responses"] == 1160
    assert row["score"] == 3.981
    assert (row["positive_share"], row["neutral_share"], row["negative_share"]) == (
        0.6638,
        0.3362,
        0.0,
    )
    assert row["activated_users"] == 500


def test_compute_table_output_rounds_half_up_to_two_decimals() -> None:
    """The people's table shows 3.98 and 0.66 / 0.34 / 0.0 at two decimals."""
    done = run_cli("compute", str(EXAMPLES["ravenstack"]), "--decimals", "2")
    assert done.returncode == 0, done.stderr
    kpi_block = done.stdout.split("\n\n")[0].splitlines()[1:]
    lines = {line.split()[0]: line.split()[-1] for line in kpi_block}
    assert lines["scored_responses"] == "1160"
    assert lines["score"] == "3.98"
    assert (lines["positive_share"], lines["neutral_share"]) == ("0.66", "0.34")


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_verify_passes_on_every_grouping(example: str) -> None:
    """verify compares SQL and reference on every grouping and exits 0."""
    done = run_cli("verify", str(EXAMPLES[example]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout


def test_telecom_label_and_score_paths_give_the_same_split() -> None:
    """Labels and 0..10 scores agree on every scored row, so the splits are identical."""
    by_label = run_cli(
        "compute", str(EXAMPLES["telecom_nps"]), "--by", "journey_step", "--format", "json"
    )
    by_score = run_cli(
        "compute", str(EXAMPLES["telecom_nps_score"]), "--by", "journey_step", "--format", "json"
    )
    assert by_label.returncode == 0 and by_score.returncode == 0, by_label.stderr + by_score.stderr
    label_rows, score_rows = json.loads(by_label.stdout), json.loads(by_score.stdout)
    assert [r["journey_step"] for r in label_rows] == ["First Payment", "Service in Use"]
    keys = ("classified_responses", "positive_share", "neutral_share", "negative_share")
    assert [[r[k] for k in keys] for r in label_rows] == [[r[k] for k in keys] for r in score_rows]
    assert sum(r["eligible_responses"] for r in label_rows) == 1180


def test_demo_prints_a_verified_report() -> None:
    """The main job runs end to end and says it verified every number."""
    done = run_cli("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: every counter and measure equals the reference" in done.stdout
    assert "1160" in done.stdout

"""Bad specs end in a clear message naming the spot, exit code 1, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import run_cli
from tests.kpi_cases import EXAMPLES


def _spec_with(tmp_path: Path, edit: dict[str, object]) -> Path:
    """Write a copy of the RavenStack spec with some keys replaced (dotted paths)."""
    data = yaml.safe_load(EXAMPLES["ravenstack"].read_text())
    for dotted, value in edit.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    for table in data["tables"].values():
        table["path"] = str((EXAMPLES["ravenstack"].parent / table["path"]).resolve())
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BAD = {
    "unknown column": (
        {"responses.score": "satisfacton_score"},
        ["satisfacton_score", "did you mean 'satisfaction_score'"],
    ),
    "scale min above max": ({"scale": {"min": 5, "max": 1}}, ["scale", "must be below max"]),
    "overlapping thresholds": (
        {"sentiment": {"source": "score", "positive_min": 3, "negative_max": 3}},
        ["sentiment", "thresholds overlap"],
    ),
    "unknown activation mode": (
        {"activation.mode": "first_login"},
        ["activation.mode", "first_event"],
    ),
    "unknown segment": ({"segments": ["industy"]}, ["segments[0]", "did you mean 'industry'"]),
    "unknown key": ({"window_dayz": 30}, ["window_dayz", "did you mean 'window_days'"]),
    "missing data file": (
        {"tables.accounts": {"path": "/nonexistent/accounts.csv"}},
        ["tables.accounts", "file not found"],
    ),
}

# Inputs a hostile tester tried.
MORE_BAD = {
    "threshold above the scale": (
        {"sentiment": {"source": "score", "positive_min": 9}},
        ["sentiment.positive_min", "outside the scale"],
    ),
    "threshold below the scale": (
        {"sentiment": {"source": "score", "negative_max": -1}},
        ["sentiment.negative_max", "outside the scale"],
    ),
    "NaN in the scale": ({"scale": {"min": 1, "max": float("nan")}}, ["scale.max", "finite"]),
    "boolean window": ({"window_days": True}, ["window_days", "boolean"]),
    "scale as a list": ({"scale": [1, 5]}, ["scale", "expected a mapping"]),
    "two statements in a source": (
        {"responses.source": "SELECT * FROM support_tickets; DROP TABLE accounts"},
        ["responses.source", "one SELECT statement"],
    ),
    "unparseable source query": (
        {"responses.source": "SELECT * FROM (support_tickets"},
        ["responses.source", "does not parse"],
    ),
    "unknown source dialect": ({"source_dialect": "oracel"}, ["source_dialect", "unknown SQL"]),
    "no dialects": ({"dialects": []}, ["dialects", "at least 1"]),
    "quote in a table name": (
        {"tables.it's": {"path": "/nonexistent.csv"}},
        ["tables.it's", "file not found"],
    ),
}


@pytest.mark.parametrize("edit,needles", [*BAD.values(), *MORE_BAD.values()], ids=[*BAD, *MORE_BAD])
def test_bad_spec_fails_with_a_located_message(
    tmp_path: Path, edit: dict[str, object], needles: list[str]
) -> None:
    """The message names the key (and line where the spec has one) and a fix; exit 1."""
    done = run_cli("compute", str(_spec_with(tmp_path, edit)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_spec_errors_carry_the_file_and_line(tmp_path: Path) -> None:
    """A pydantic error is reported at file:line of the offending key."""
    path = _spec_with(tmp_path, {"scale": {"min": 5, "max": 1}})
    done = run_cli("compute", str(path))
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("scale")
    )
    assert f"{path}:{line}: scale" in done.stderr, done.stderr


def test_missing_spec_file_exits_1(tmp_path: Path) -> None:
    """A spec path that does not exist is a spec error, not a crash."""
    done = run_cli("compute", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1
    assert "spec file not found" in done.stderr


def test_unknown_option_is_a_usage_error() -> None:
    """Bad usage exits 2."""
    assert run_cli("compute", "--no-such-option").returncode == 2
    assert run_cli("compute", str(EXAMPLES["ravenstack"]), "--by", "nope").returncode == 2


def test_a_duplicate_yaml_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    """window_days written twice is reported at its second line."""
    path = _spec_with(tmp_path, {})
    path.write_text(path.read_text() + "window_days: 30\nwindow_days: 1\n")
    done = run_cli("compute", str(path))
    assert done.returncode == 1 and "'window_days' appears twice" in done.stderr


def test_two_specs_with_one_name_are_refused(tmp_path: Path) -> None:
    """generate would write both into one folder; it refuses instead."""
    spec = _spec_with(tmp_path, {})
    done = run_cli("generate", str(spec), str(spec), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "two specs are named" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_segment_listed_twice_on_the_command_line_is_a_usage_error() -> None:
    """--by plan_tier,plan_tier exits 2."""
    done = run_cli("compute", str(EXAMPLES["ravenstack"]), "--by", "plan_tier,plan_tier")
    assert done.returncode == 2 and "twice" in done.stderr


def test_a_statement_that_is_not_a_select_is_explained(tmp_path: Path) -> None:
    """'DELETE FROM x' is read as a table name; the message says how queries are recognised."""
    done = run_cli("compute", str(_spec_with(tmp_path, {"responses.source": "DELETE FROM x"})))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "starts with SELECT or WITH" in done.stderr

"""Generated files are deterministic, committed, and drift fails the check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, run_cli


def test_committed_semantic_models_match_the_generator() -> None:
    """``generate --check`` finds no drift in semantic_models/ (the golden files)."""
    done = run_cli("generate", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout


def test_check_reports_drift_with_a_diff_and_writes_nothing(tmp_path: Path) -> None:
    """An edited generated file makes --check exit 1 with a diff and leaves it as it was."""
    out = tmp_path / "models"
    shutil.copytree(REPO / "semantic_models", out)
    target = out / "ravenstack/model/cubes/ravenstack.yml"
    target.write_text(target.read_text() + "# hand edit\n")
    before = target.read_text()
    done = run_cli("generate", "--check", "--out", str(out))
    assert done.returncode == 1
    assert "+++" in done.stdout and "hand edit" in done.stdout
    assert target.read_text() == before


def test_generation_is_deterministic(tmp_path: Path) -> None:
    """Two runs write byte-identical files."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert run_cli("generate", "--out", str(first)).returncode == 0
    assert run_cli("generate", "--out", str(second)).returncode == 0
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_generate_refuses_to_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    """A user's own file at a target path survives; --force overwrites it."""
    mine = tmp_path / "ravenstack/model/cubes/ravenstack.yml"
    mine.parent.mkdir(parents=True)
    mine.write_text("# my own cube\n")
    done = run_cli("generate", str(REPO / "examples/ravenstack/spec.yaml"), "--out", str(tmp_path))
    assert done.returncode == 1
    assert "was not written by cfs-semantic" in done.stderr
    assert mine.read_text() == "# my own cube\n"
    assert not (tmp_path / "ravenstack/sql").exists(), "nothing is written when one file is unsafe"
    forced = run_cli(
        "generate", str(REPO / "examples/ravenstack/spec.yaml"), "--out", str(tmp_path), "--force"
    )
    assert forced.returncode == 0 and mine.read_text() != "# my own cube\n"


def test_generate_refuses_to_overwrite_a_hand_edited_generated_file(tmp_path: Path) -> None:
    """A generated file edited by hand is not silently replaced."""
    spec = str(REPO / "examples/ravenstack/spec.yaml")
    assert run_cli("generate", spec, "--out", str(tmp_path)).returncode == 0
    target = tmp_path / "ravenstack/sql/duckdb/ravenstack_overall.sql"
    target.write_text(target.read_text() + "-- tuned by hand\n")
    done = run_cli("generate", spec, "--out", str(tmp_path))
    assert done.returncode == 1 and "edited since it was generated" in done.stderr
    assert target.read_text().endswith("-- tuned by hand\n")


def test_an_interrupted_write_leaves_the_previous_files_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a rename fails midway, no file is half-written and the manifest is the old one."""
    from generators import safe_write

    old = {"a.sql": "select 1;\n", "b.sql": "select 2;\n"}
    safe_write.write_files(old, tmp_path)
    calls = {"n": 0}
    real_replace = Path.replace

    def flaky_replace(self: Path, target: Path) -> Path:  # type: ignore[override]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", flaky_replace)
    with pytest.raises(OSError):
        safe_write.write_files({"a.sql": "select 10;\n", "b.sql": "select 20;\n"}, tmp_path)
    for name, content in (("a.sql", "select 10;\n"), ("b.sql", "select 2;\n")):
        assert (tmp_path / name).read_text() in (content, old[name])
    assert (tmp_path / "b.sql").read_text() == "select 2;\n"


def test_emitted_view_and_overall_query_run_as_deployed() -> None:
    """The committed DuckDB files: create the view, run the overall query over it, get the
    reference numbers (the overall query reads the view, so the rule lives in one place)."""
    from cfs_semantic.compare import compare
    from cfs_semantic.runner import LocalRun

    run = LocalRun.open(REPO / "examples/ravenstack/spec.yaml")
    sql_dir = REPO / "semantic_models/ravenstack/sql/duckdb"
    overall = (sql_dir / "ravenstack_overall.sql").read_text()
    assert "WITH" not in overall.split("SELECT", 1)[0], "the overall query reads the view"
    run.con.execute((sql_dir / "ravenstack_feedback_facts.sql").read_text())
    result = run.con.execute(overall).df()
    diffs = compare(run.reference(), result, [])
    assert not diffs, "\n".join(d.render() for d in diffs)

"""Generated files are deterministic, committed, and drift fails the check."""

from __future__ import annotations

import shutil
from pathlib import Path

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

"""Run the installed ``cfs-semantic`` command as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run ``cfs-semantic ARGS`` in a fresh process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "cfs_semantic.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

"""Measure wall time, CPU time and peak memory: in process (DuckDB) and of child processes."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from sqlglot import exp


@dataclass
class Sample:
    """One timed run."""

    wall: float
    cpu: float


@dataclass
class Measurement:
    """Several runs of one thing, plus its peak memory when known."""

    name: str
    samples: list[Sample] = field(default_factory=list)
    peak_bytes: int | None = None
    note: str = ""

    @property
    def wall(self) -> float:
        """Median wall time in seconds."""
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        """Median CPU time (user + system, all threads) in seconds."""
        return statistics.median(s.cpu for s in self.samples)

    @property
    def spread(self) -> tuple[float, float]:
        """Fastest and slowest wall time."""
        walls = [s.wall for s in self.samples]
        return min(walls), max(walls)


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(action: Callable[[], Any]) -> tuple[Any, Sample]:
    """Run ``action`` and return its result with wall and CPU time of this process."""
    cpu = _cpu_self()
    start = time.perf_counter()
    result = action()
    wall = time.perf_counter() - start
    return result, Sample(wall, _cpu_self() - cpu)


def profiled_run(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> tuple[pd.DataFrame, int | None]:
    """Run a query once with DuckDB's profiler on; return the rows and peak buffer memory."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "profile.json"
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = {exp.Literal.string(str(output)).sql('duckdb')}")
        try:
            frame = con.execute(sql, list(params)).df()
        finally:
            con.execute("PRAGMA disable_profiling")
        try:
            system = json.loads(output.read_text()).get("system", {})
            peak = system.get("peak_buffer_memory") if isinstance(system, dict) else None
        except (OSError, ValueError):
            peak = None
    return frame, int(peak) if peak is not None else None


def run_query(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Sample:
    """Run a query and fetch every row; return its wall and CPU time."""
    _, sample = timed(lambda: con.execute(sql, list(params)).fetchall())
    return sample


@dataclass
class ProcessResult:
    """A finished child process: exit code, output and its own resource use."""

    returncode: int
    stdout: str
    stderr: str
    sample: Sample
    peak_bytes: int


# A small launcher forks the measured command: a child forked from the benchmark itself would
# report the benchmark's own peak memory (Linux keeps the pre-exec high-water mark).
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024], out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_process(
    args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> ProcessResult:
    """Run a command in a child process; return its wall time, CPU time and peak RSS.

    The peak is that of the command (at least the launcher's ~10 MiB), from ``wait4``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        usage = Path(tmp) / "usage.json"
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(usage), *args]
        done = subprocess.run(launcher, cwd=cwd, env=env, capture_output=True, text=True)
        wall, cpu, peak = json.loads(usage.read_text()) if usage.is_file() else (0.0, 0.0, 0)
    return ProcessResult(done.returncode, done.stdout, done.stderr, Sample(wall, cpu), int(peak))


def python() -> str:
    """The interpreter running the benchmark (the project's venv when started from it)."""
    return sys.executable

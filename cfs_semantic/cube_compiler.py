"""Run Cube's own schema compiler (from npm) on a Cube data model, offline.

The Node project in ``tests/cube_harness`` pins ``@cubejs-backend/schema-compiler`` and the
driver packages that carry query classes; its ``compile.js`` compiles a folder of model files
once and answers many queries with the SQL and parameters Cube generates for each dialect. This
module installs that project from its lockfile when needed and runs it as a subprocess.

Typical use::

    errors = compile_model(model_dir)  # [] when the model compiles
    [result] = generate_sql(model_dir, [{"dialect": "duckdb", "query": cube_query}])
    connection.execute(result.sql, result.params)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HARNESS_DIR_ENV = "CFS_CUBE_HARNESS_DIR"
"""Environment variable that points at another copy of the harness project."""

DIALECTS: tuple[str, ...] = (
    "postgres",
    "duckdb",
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "trino",
    "mysql",
    "mssql",
)
"""Dialects the harness is tested with; any dbType Cube's schema compiler knows also works."""

DEFAULT_TIMEOUT_S = 300.0
_NPM_CI = ("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
_INSTALL_MARKER = Path("node_modules") / ".package-lock.json"
_STDERR_TAIL = 4000


class CubeHarnessError(RuntimeError):
    """The harness could not run: Node/npm missing, install failed or the harness crashed."""


class CubeCompileError(CubeHarnessError):
    """The Cube model did not compile.

    Attributes:
        errors: Cube's compile error messages, one per error.
    """

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("Cube model does not compile:\n" + "\n".join(self.errors))


@dataclass(frozen=True)
class CubeSql:
    """The SQL Cube generated for one query, or why it could not.

    Attributes:
        dialect: The dialect asked for (``duckdb``, ``postgres``, ...).
        sql: The generated SQL, or None when generation failed.
        params: Values for the SQL's placeholders, in order (``?``, ``$1``, ``@_1``, ...).
        error: Cube's error message when generation failed, else None.
        query_class: Name of the Cube query class that generated the SQL.
        pre_aggregations: Rollups the query reads, each with ``id``, ``table_name``,
            ``external``, ``load_sql`` and ``load_params`` (empty unless asked to use them).
    """

    dialect: str
    sql: str | None
    params: list[Any] = field(default_factory=list)
    error: str | None = None
    query_class: str | None = None
    pre_aggregations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class CubeCompilation:
    """Everything one harness run reports.

    Attributes:
        errors: Cube's compile error messages (empty when the model compiles).
        compile_error: Cube's full compile error text, as its server prints it, or None.
        warnings: Cube's compile warnings.
        compile_ms: Time Cube took to compile the model, in milliseconds.
        results: One entry per query, in request order.
    """

    errors: list[str]
    compile_error: str | None
    warnings: list[str]
    compile_ms: int
    results: list[CubeSql]


def harness_dir() -> Path:
    """Return the folder of the Node harness project.

    Returns:
        ``tests/cube_harness`` of this repository, or the folder named by the
        ``CFS_CUBE_HARNESS_DIR`` environment variable when set.
    """
    override = os.environ.get(HARNESS_DIR_ENV)
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent / "tests" / "cube_harness"


def _which(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise CubeHarnessError(
            f"'{program}' is not on PATH; the Cube harness needs Node.js 20+ and npm"
        )
    return path


def _needs_install(directory: Path) -> bool:
    marker = directory / _INSTALL_MARKER
    if not marker.is_file():
        return True
    return marker.stat().st_mtime < (directory / "package-lock.json").stat().st_mtime


@contextmanager
def _install_lock(directory: Path) -> Iterator[None]:
    """Serialise installs of one harness folder across processes (e.g. pytest-xdist)."""
    key = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"cfs-cube-harness-{key}.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_error_summary(output: str, max_lines: int = 30) -> str:
    """Keep npm's error lines (its reason comes first), without the warnings before them."""
    lines = [line for line in output.splitlines() if not line.startswith("npm warn")]
    return "\n".join(lines[:max_lines])


def ensure_installed(timeout_s: float = 900.0) -> Path:
    """Install the harness's npm packages from its lockfile when they are missing or stale.

    Runs ``npm ci --ignore-scripts`` in the harness folder when ``node_modules`` is missing or
    older than ``package-lock.json``. Install scripts stay off: they download binaries from
    outside the npm registry, and the harness does not need them.

    Args:
        timeout_s: Longest time the install may take, in seconds.

    Returns:
        The harness folder.

    Raises:
        CubeHarnessError: The harness folder is incomplete, npm is missing or the install
            failed (the message carries the end of npm's output).
    """
    directory = harness_dir()
    for name in ("package.json", "package-lock.json", "compile.js"):
        if not (directory / name).is_file():
            raise CubeHarnessError(f"Cube harness file missing: {directory / name}")
    if not _needs_install(directory):
        return directory
    npm = _which("npm")
    with _install_lock(directory):
        if not _needs_install(directory):
            return directory
        logger.info("installing the Cube harness packages in %s (npm ci)", directory)
        try:
            completed = subprocess.run(
                [npm, *_NPM_CI[1:]],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CubeHarnessError(
                f"npm ci in {directory} did not finish within {timeout_s:.0f} s"
            ) from exc
        if completed.returncode != 0:
            output = _npm_error_summary(completed.stderr or completed.stdout)
            raise CubeHarnessError(
                f"npm ci --ignore-scripts failed in {directory} "
                f"(exit {completed.returncode}):\n{output}"
            )
    return directory


def _to_cube_sql(item: Mapping[str, Any]) -> CubeSql:
    return CubeSql(
        dialect=str(item.get("dialect")),
        sql=item.get("sql"),
        params=list(item.get("params") or []),
        error=item.get("error"),
        query_class=item.get("query_class"),
        pre_aggregations=list(item.get("pre_aggregations") or []),
    )


def run_harness(
    model_dir: Path | str,
    queries: Sequence[Mapping[str, Any]] = (),
    *,
    compile_only: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> CubeCompilation:
    """Compile a Cube model with Cube's compiler and generate SQL for queries.

    Args:
        model_dir: Folder of Cube model files (YAML; JavaScript models work too).
        queries: Items ``{"dialect": ..., "query": {...}}`` where the query is a Cube REST
            query (``measures``, ``dimensions``, ``timeDimensions``, ``filters``, ``timezone``,
            ``order`` as a list of ``{"id", "desc"}``, ...). An item may add
            ``"pre_aggregations": "use"`` to let Cube answer from a matching rollup.
        compile_only: Only compile; ``queries`` are ignored.
        timeout_s: Longest time the harness may run, in seconds.

    Returns:
        What the harness reported: compile errors, warnings, time and per-query results.

    Raises:
        CubeHarnessError: The harness could not run or crashed.
    """
    directory = ensure_installed()
    node = _which("node")
    request: dict[str, Any] = {
        "model_dir": str(Path(model_dir).resolve()),
        "mode": "compile_only" if compile_only else "sql",
        "queries": [dict(query) for query in queries],
    }
    env = dict(os.environ, CUBEJS_TESSERACT_SQL_PLANNER="false")
    try:
        completed = subprocess.run(
            [node, str(directory / "compile.js")],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=directory,
            env=env,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CubeHarnessError(f"the Cube harness did not finish within {timeout_s:.0f} s") from exc
    if completed.returncode != 0:
        raise CubeHarnessError(
            f"the Cube harness failed (exit {completed.returncode}):\n"
            f"{completed.stderr[-_STDERR_TAIL:]}"
        )
    try:
        answer = json.loads(completed.stdout)
    except json.JSONDecodeError as exc:
        raise CubeHarnessError(
            f"the Cube harness wrote no JSON answer: {completed.stdout[:500]!r}"
        ) from exc
    for line in completed.stderr.splitlines():
        if line.strip():
            logger.debug("cube harness: %s", line)
    return CubeCompilation(
        errors=[str(message) for message in answer.get("errors", [])],
        compile_error=answer.get("compile_error"),
        warnings=[str(message) for message in answer.get("warnings", [])],
        compile_ms=int(answer.get("compile_ms", 0)),
        results=[_to_cube_sql(item) for item in answer.get("results", [])],
    )


def compile_model(model_dir: Path | str) -> list[str]:
    """Compile a Cube model and return Cube's compile error messages.

    Args:
        model_dir: Folder of Cube model files.

    Returns:
        Cube's error messages; empty when the model compiles.

    Raises:
        CubeHarnessError: The harness could not run or crashed.
    """
    compilation = run_harness(model_dir, compile_only=True)
    logger.info(
        "Cube compiled %s in %d ms with %d error(s)",
        model_dir,
        compilation.compile_ms,
        len(compilation.errors),
    )
    return compilation.errors


def generate_sql(model_dir: Path | str, queries: Sequence[Mapping[str, Any]]) -> list[CubeSql]:
    """Generate Cube's SQL for each query, compiling the model once.

    Args:
        model_dir: Folder of Cube model files.
        queries: Items ``{"dialect": ..., "query": {...}}``; see :func:`run_harness`.

    Returns:
        One result per query, in order. A query Cube rejects has ``error`` set and no SQL.

    Raises:
        CubeCompileError: The model does not compile (the errors are Cube's messages).
        CubeHarnessError: The harness could not run or crashed.
    """
    compilation = run_harness(model_dir, queries)
    if compilation.errors or compilation.compile_error:
        raise CubeCompileError(compilation.errors or [str(compilation.compile_error)])
    return compilation.results

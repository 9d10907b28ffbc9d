"""PostgreSQL on a throwaway local server (initdb + pg_ctl), queried through psycopg 3.

The server lives in a fresh temporary directory, listens on 127.0.0.1 only (a free TCP port,
its Unix socket inside the temporary directory), uses trust authentication, ``fsync=off`` and
``TimeZone='UTC'``; :meth:`PostgresEngine.close` stops it and deletes the directory.

initdb and pg_ctl refuse to run as root. When this process runs as root they run as an
unprivileged OS user (``postgres`` unless told otherwise) through ``runuser -u USER --``, and the
temporary directory is handed to that user. The user is never created by this module: create it
first (for example ``useradd --system --no-create-home postgres``) or pass ``os_user``.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from cfs_semantic.engines.base import (
    Engine,
    EngineStartError,
    Params,
    create_table_sql,
    drop_table_sql,
    quoted_table,
    rows_to_frame,
)

logger = logging.getLogger(__name__)

_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "TimeZone": "UTC",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "20",
    "shared_buffers": "32MB",
}


def find_pg_bin_dir(bin_dir: str | None = None) -> Path:
    """Locate the directory holding ``initdb`` and ``pg_ctl``.

    Args:
        bin_dir: Explicit directory; otherwise ``PATH``, then ``/usr/lib/postgresql/*/bin``.

    Returns:
        The directory.

    Raises:
        EngineStartError: When no directory has both programs.
    """
    candidates: list[Path] = []
    if bin_dir is not None:
        candidates.append(Path(bin_dir))
    else:
        found = shutil.which("initdb")
        if found:
            candidates.append(Path(found).parent)
        candidates += [
            Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        ]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise EngineStartError(f"PostgreSQL initdb/pg_ctl not found (looked in {candidates})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class _Server:
    """A throwaway PostgreSQL cluster; stopped and deleted by ``stop`` or at garbage collection."""

    def __init__(self, bin_dir: Path, os_user: str, timeout: float) -> None:
        self.bin_dir = bin_dir
        self.timeout = timeout
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(os_user)
            except KeyError:
                raise EngineStartError(
                    f"running as root, PostgreSQL needs the unprivileged OS user {os_user!r}, "
                    "which does not exist; create it (useradd --system postgres) or pass os_user"
                ) from None
            self.prefix = ["runuser", "-u", os_user, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="cfs-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._finalizer = weakref.finalize(self, _stop_cluster, self._stop_args(), self.root)
        if self.prefix:
            shutil.chown(self.root, user=os_user, group=pwd.getpwnam(os_user).pw_gid)

    def _stop_args(self) -> list[str]:
        return [*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data)]

    def _run(self, args: Sequence[str], what: str) -> None:
        try:
            done = subprocess.run(
                [*self.prefix, *args],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise EngineStartError(f"PostgreSQL {what} failed: {err}") from err
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EngineStartError(
                f"PostgreSQL {what} failed (exit {done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{tail}"
            )

    def start(self) -> None:
        """initdb, configure and start the server on a free port (three attempts)."""
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )
        settings = {**_SETTINGS, "unix_socket_directories": str(self.root)}
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# cfs-semantic throwaway server\n")
            conf.writelines(f"{key} = {_conf_value(value)}\n" for key, value in settings.items())
        last: EngineStartError | None = None
        for _ in range(3):
            self.port = _free_port()
            command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-w"]
            command += ["-t", str(int(self.timeout)), "-l", str(self.root / "server.log")]
            command += ["-o", f"-p {self.port}", "start"]
            try:
                self._run(command, "start")
                return
            except EngineStartError as err:
                logger.warning("PostgreSQL did not start on port %d: %s", self.port, err)
                last = err
        assert last is not None
        raise last

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        self._finalizer()


def _stop_cluster(pg_ctl: list[str], root: Path) -> None:
    if (root / "data" / "postmaster.pid").exists():
        for mode in ("fast", "immediate"):
            done = subprocess.run(
                [*pg_ctl, "-m", mode, "-w", "-t", "30", "stop"],
                cwd=root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                break
            logger.warning("pg_ctl stop -m %s failed: %s", mode, done.stderr.strip())
    shutil.rmtree(root, ignore_errors=True)
    logger.debug("PostgreSQL server in %s removed", root)


class PostgresEngine(Engine):
    """PostgreSQL 15 on a private throwaway server, session time zone UTC, autocommit.

    ``integer / integer`` is integer division; NUMERIC results are loaded as Python floats
    (float64). ``TIMESTAMP`` columns are ``TIMESTAMP WITHOUT TIME ZONE`` and come back naive;
    ``TIMESTAMPTZ`` values come back as UTC-aware timestamps. With params, a literal ``%`` in
    the SQL must be written ``%%`` (psycopg placeholder syntax).
    """

    name = "postgres"
    dialect = "postgres"
    paramstyle = "'%s' (list) or '%(name)s' (mapping)"

    _TYPES = {
        "string": "TEXT",
        "float": "DOUBLE PRECISION",
        "integer": "BIGINT",
        "timestamp": "TIMESTAMP",
        "boolean": "BOOLEAN",
    }

    def __init__(
        self, bin_dir: str | None = None, os_user: str = "postgres", timeout: float = 60.0
    ) -> None:
        """Create, start and connect to a throwaway server.

        Args:
            bin_dir: Directory of initdb/pg_ctl (default: found on PATH or the Debian layout).
            os_user: Unprivileged OS user that runs the server when this process is root.
            timeout: Seconds allowed for each of initdb, start-up and connecting.

        Raises:
            EngineStartError: When the server cannot be created, started or reached.
        """
        import psycopg
        from psycopg.types.numeric import FloatLoader

        self._server = _Server(find_pg_bin_dir(bin_dir), os_user, timeout)
        try:
            self._server.start()
            self._con: Any = psycopg.connect(
                host="127.0.0.1",
                port=self._server.port,
                user="postgres",
                dbname="postgres",
                sslmode="disable",
                connect_timeout=int(timeout),
                options="-c TimeZone=UTC",
                autocommit=True,
            )
        except BaseException as err:
            self._server.stop()
            if isinstance(err, EngineStartError):
                raise
            raise EngineStartError(f"could not connect to PostgreSQL: {err}") from err
        # Runs before the server's finalizer at exit (finalizers run newest first).
        self._close_connection = weakref.finalize(self, self._con.close)
        self._con.adapters.register_loader("numeric", FloatLoader)
        logger.info("PostgreSQL server on 127.0.0.1:%d in %s", self._server.port, self._server.root)

    @property
    def port(self) -> int:
        """TCP port of the server on 127.0.0.1."""
        return self._server.port

    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        target = exp.Schema(
            this=quoted_table(name),
            expressions=[exp.to_identifier(col, quoted=True) for col in columns],
        )
        copy_sql = exp.Copy(this=target, kind=True, files=[exp.to_identifier("STDIN")])
        with self._con.transaction(), self._con.cursor() as cursor:
            cursor.execute(drop_table_sql(name, self.dialect))
            cursor.execute(create_table_sql(name, columns, self._TYPES, self.dialect))
            with cursor.copy(copy_sql.sql(dialect=self.dialect)) as copy:
                for row in table.to_pylist():
                    copy.write_row(tuple(row.values()))

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows (see :meth:`Engine.query`)."""
        with self._con.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description is None:
                return pd.DataFrame()
            names = [column.name for column in cursor.description]
            return rows_to_frame(names, cursor.fetchall())

    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects."""
        with self._con.cursor() as cursor:
            cursor.execute(sql)

    def close(self) -> None:
        """Close the connection, stop the server and delete its directory."""
        try:
            self._close_connection()
        finally:
            self._server.stop()

"""ClickHouse, embedded in this process through chdb, on a temporary database directory.

chdb runs one embedded server per process: only one :class:`ClickHouseEngine` can be open at a
time (opening a second raises :class:`EngineStartError`); close it before opening another.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from cfs_semantic.engines.base import (
    Engine,
    EngineError,
    EngineStartError,
    Params,
    arrow_to_frame,
    create_table_sql,
    quoted_table,
)

logger = logging.getLogger(__name__)

_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Settings applied to every session; ``settings`` passed by the caller are applied after them.
DEFAULT_SETTINGS: dict[str, str | int | float | bool] = {"session_timezone": "UTC"}


class ClickHouseEngine(Engine):
    """ClickHouse (chdb, in-process) with ``Memory`` tables of ``Nullable`` columns.

    Quirks callers must know:

    * ``join_use_nulls`` is 0 by default in ClickHouse: unmatched rows of an outer join get the
      type's default (0, '') instead of NULL. SQL that relies on standard outer-join NULLs needs
      ``settings={"join_use_nulls": 1}`` (or a ``SETTINGS`` clause in the query).
    * The session time zone is UTC. ``DateTime64`` values without an explicit time zone come
      back naive; other time zones are kept.
    * ``/`` is always floating-point division (``7/2 = 3.5``); ``intDiv`` is integer division.
      Decimal results are converted to float64.
    * Query parameters use ClickHouse syntax ``{name:Type}``; a list binds ``p1``, ``p2``, ...
      Strings are escaped for ClickHouse's parameter format and None is sent as ``\\N`` (so it
      needs a ``Nullable(...)`` placeholder type).
    """

    name = "clickhouse"
    dialect = "clickhouse"
    paramstyle = "'{p1:Type}', '{p2:Type}', ... (list) or '{name:Type}' (mapping)"

    _TYPES = {
        "string": "Nullable(String)",
        "float": "Nullable(Float64)",
        "integer": "Nullable(Int64)",
        "timestamp": "Nullable(DateTime64(6))",
        "boolean": "Nullable(Bool)",
    }

    def __init__(self, settings: Mapping[str, str | int | float | bool] | None = None) -> None:
        """Start an embedded ClickHouse session on a new temporary directory.

        Args:
            settings: ClickHouse session settings (``SET name = value``), for example
                ``{"join_use_nulls": 1}``. Applied after :data:`DEFAULT_SETTINGS`.

        Raises:
            EngineStartError: When chdb cannot start (for example another session is open).
            ValueError: When a setting name is not a plain identifier.
        """
        from chdb import session as chdb_session

        self._dir = Path(tempfile.mkdtemp(prefix="cfs-chdb-"))
        # The finalizer holds the session (not the engine): it closes it and removes the
        # directory on close(), garbage collection or interpreter exit, whichever comes first.
        self._state: dict[str, Any] = {}
        self._finalizer = weakref.finalize(self, _cleanup, self._state, self._dir)
        try:
            self._state["session"] = chdb_session.Session(str(self._dir / "db"))
            for key, value in {**DEFAULT_SETTINGS, **(settings or {})}.items():
                self.execute(set_statement(key, value))
        except Exception as err:
            self.close()
            if isinstance(err, ValueError):
                raise
            raise EngineStartError(f"chdb (ClickHouse) could not start: {err}") from err

    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        # chdb has no parameter binding for bulk rows: go through a Parquet file it reads natively.
        path = self._dir / f"load-{uuid.uuid4().hex}.parquet"
        pq.write_table(table, path)
        engine = exp.EngineProperty(this=exp.var("Memory"))
        create = create_table_sql(
            name, columns, self._TYPES, self.dialect, replace=True, properties=[engine]
        )
        source = exp.Anonymous(
            this="file",
            expressions=[
                exp.Placeholder(this=exp.var("path"), kind=exp.DataType.build("String")),
                exp.column("Parquet"),
            ],
        )
        select = exp.select(exp.Star()).from_(exp.Table(this=source))
        insert = exp.Insert(this=quoted_table(name), expression=select).sql(dialect=self.dialect)
        try:
            self._check_open().query(create)
            self._check_open().query(insert, params={"path": str(path)})
        finally:
            path.unlink(missing_ok=True)

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows (see :meth:`Engine.query`)."""
        result = self._check_open().query(sql, "ArrowTable", params=_named(params))
        return arrow_to_frame(result, utc_as_naive=True)

    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects."""
        self._check_open().query(sql)

    def _check_open(self) -> Any:
        session = self._state.get("session")
        if session is None:
            raise EngineError("the ClickHouse engine is closed")
        return session

    def close(self) -> None:
        """Close the chdb session and delete its directory."""
        self._finalizer()


def _cleanup(state: dict[str, Any], directory: Path) -> None:
    session = state.pop("session", None)
    if session is not None:
        session.close()
    shutil.rmtree(directory, ignore_errors=True)
    logger.debug("chdb session in %s closed", directory)


def set_statement(name: str, value: str | int | float | bool) -> str:
    """Build ``SET name = value`` for a ClickHouse setting.

    Raises:
        ValueError: When ``name`` is not a plain identifier.
    """
    if not _SETTING_NAME.fullmatch(name):
        raise ValueError(f"invalid ClickHouse setting name {name!r}")
    literal = exp.convert(int(value) if isinstance(value, bool) else value)
    item = exp.SetItem(this=exp.EQ(this=exp.var(name), expression=literal))
    return exp.Set(expressions=[item]).sql(dialect="clickhouse")


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _param_value(value: Any) -> Any:
    """ClickHouse parses text parameters in its escaped (TSV) format; NULL is ``\\N``."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    return value


def _named(params: Params) -> dict[str, Any] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {key: _param_value(value) for key, value in params.items()}
    if isinstance(params, str | bytes):
        raise EngineError("params must be a list or a mapping, not a string")
    return {f"p{position}": _param_value(value) for position, value in enumerate(params, start=1)}

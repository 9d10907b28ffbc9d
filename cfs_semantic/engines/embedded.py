"""In-process engines: DuckDB, SQLite (stdlib) and Apache DataFusion."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from cfs_semantic.engines.base import (
    Engine,
    EngineError,
    EngineStartError,
    Params,
    arrow_to_frame,
    create_table_sql,
    drop_table_sql,
    insert_select_sql,
    insert_values_sql,
    quoted_name,
    rows_to_frame,
)

logger = logging.getLogger(__name__)


class DuckDBEngine(Engine):
    """An in-memory DuckDB database with the session time zone set to UTC.

    Tables are loaded by registering the Arrow table and ``INSERT ... SELECT``. Results come
    from Arrow; ``/`` is always fractional (``7/2 = 3.5``, ``//`` is integer division) and
    DECIMAL arithmetic results are converted to float64.
    """

    name = "duckdb"
    dialect = "duckdb"
    paramstyle = "'?' (list) or '$name' (mapping)"

    _TYPES = {
        "string": "VARCHAR",
        "float": "DOUBLE",
        "integer": "BIGINT",
        "timestamp": "TIMESTAMP",
        "boolean": "BOOLEAN",
    }

    def __init__(self) -> None:
        """Open a new in-memory database."""
        import duckdb

        try:
            self._con: Any = duckdb.connect(":memory:")
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as err:
            raise EngineStartError(f"duckdb could not start: {err}") from err

    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        source = f"__cfs_load_{uuid.uuid4().hex}"
        self._con.execute(create_table_sql(name, columns, self._TYPES, self.dialect, replace=True))
        self._con.register(source, table)
        try:
            self._con.execute(insert_select_sql(name, source, self.dialect))
        finally:
            self._con.unregister(source)

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows (see :meth:`Engine.query`)."""
        relation = self._con.sql(sql, params=params)
        if relation is None:
            return pd.DataFrame()
        return arrow_to_frame(relation.to_arrow_table())

    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects."""
        self._con.execute(sql)

    def close(self) -> None:
        """Close the connection (the in-memory database is discarded)."""
        self._con.close()


class SQLiteEngine(Engine):
    """An in-memory SQLite database (Python's ``sqlite3``), in autocommit mode.

    SQLite has no timestamp or boolean storage type: timestamps are stored as ISO text
    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (TEXT affinity) and come back as strings, booleans are
    stored as 0/1 and come back as integers. ``integer / integer`` is integer division.
    """

    name = "sqlite"
    dialect = "sqlite"
    paramstyle = "'?' (list) or ':name' (mapping)"

    _TYPES = {
        "string": "TEXT",
        "float": "REAL",
        "integer": "INTEGER",
        "timestamp": "TEXT",
        "boolean": "INTEGER",
    }

    def __init__(self) -> None:
        """Open a new in-memory database."""
        try:
            self._con = sqlite3.connect(":memory:", isolation_level=None)
        except sqlite3.Error as err:
            raise EngineStartError(f"sqlite could not start: {err}") from err

    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        rows = [tuple(_sqlite_value(value) for value in row.values()) for row in table.to_pylist()]
        self._con.execute("BEGIN")
        try:
            self._con.execute(drop_table_sql(name, self.dialect))
            self._con.execute(create_table_sql(name, columns, self._TYPES, self.dialect))
            self._con.executemany(insert_values_sql(name, list(columns), self.dialect), rows)
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows (see :meth:`Engine.query`)."""
        cursor = self._con.execute(sql, () if params is None else params)
        try:
            if cursor.description is None:
                return pd.DataFrame()
            names = [str(item[0]) for item in cursor.description]
            return rows_to_frame(names, cursor.fetchall())
        finally:
            cursor.close()

    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects."""
        self._con.execute(sql).close()

    def close(self) -> None:
        """Close the connection (the in-memory database is discarded)."""
        self._con.close()


def _sqlite_value(value: Any) -> Any:
    """Bind timestamps as ISO text; every other Arrow value binds as is."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


class DataFusionEngine(Engine):
    """An Apache DataFusion ``SessionContext``; tables are in-memory Arrow record batches.

    sqlglot has no DataFusion dialect; DataFusion's SQL frontend follows PostgreSQL (double
    quoted identifiers folded to lower case when unquoted, ``::`` casts, ``integer / integer``
    is integer division), so ``dialect`` is ``"postgres"``. SQL ``TIMESTAMP`` literals and casts
    are nanosecond timestamps; loaded columns are microsecond timestamps (compared fine).
    Decimal division yields DECIMAL, converted to float64 in results.
    """

    name = "datafusion"
    dialect = "postgres"
    paramstyle = "'$1', '$2', ... (list) or '$name' (mapping)"

    def __init__(self) -> None:
        """Create a new session context."""
        try:
            from datafusion import SessionContext

            self._ctx: Any = SessionContext()
        except Exception as err:
            raise EngineStartError(f"datafusion could not start: {err}") from err

    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        # The name is parsed as a table reference: quote it so it is used verbatim.
        ref = quoted_name(name, self.dialect)
        batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
        if self._ctx.table_exist(ref):
            self._ctx.deregister_table(ref)
        self._ctx.register_record_batches(ref, [batches])

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows (see :meth:`Engine.query`)."""
        return arrow_to_frame(self._run(sql, params).to_arrow_table())

    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects."""
        self._run(sql, None).collect()

    def _run(self, sql: str, params: Params) -> Any:
        values: dict[str, Any] | None
        if params is None:
            values = None
        elif isinstance(params, Mapping):
            values = dict(params)
        elif isinstance(params, str | bytes):
            raise EngineError("params must be a list or a mapping, not a string")
        else:
            values = {str(position): value for position, value in enumerate(params, start=1)}
        if self._ctx is None:
            raise EngineError("the DataFusion engine is closed")
        return self._ctx.sql(sql, param_values=values)

    def close(self) -> None:
        """Release the session context and its in-memory tables."""
        self._ctx = None

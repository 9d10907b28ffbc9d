"""One small, uniform interface to the SQL engines the project runs generated SQL on.

Example::

    from cfs_semantic.engines import open_engine

    with open_engine("duckdb") as engine:
        engine.load_table("t", frame, {"user id": "string", "score": "float"})
        result = engine.query('SELECT AVG("score") AS s FROM "t"')

Engines (``ENGINE_NAMES``) and the sqlglot dialect to generate SQL for each
(``engine.dialect``):

============  ==========  ====================================================================
name          dialect     what runs
============  ==========  ====================================================================
duckdb        duckdb      in-memory DuckDB
sqlite        sqlite      in-memory SQLite (stdlib ``sqlite3``)
postgres      postgres    a throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl)
datafusion    postgres    Apache DataFusion ``SessionContext`` (sqlglot has no DataFusion
                          dialect; its SQL frontend follows PostgreSQL)
clickhouse    clickhouse  ClickHouse embedded via chdb (one per process)
spark         spark       PySpark ``local[1]``, one SparkSession per process, temp views
============  ==========  ====================================================================

Only the engine modules' own dependencies are imported when an engine is opened, so importing
this package is cheap. See :mod:`cfs_semantic.engines.base` for the result type conventions.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cfs_semantic.engines.base import (
    LOGICAL_TYPES,
    Engine,
    EngineError,
    EngineStartError,
    LogicalType,
    Params,
)

logger = logging.getLogger(__name__)

ENGINE_NAMES: tuple[str, ...] = (
    "duckdb",
    "sqlite",
    "postgres",
    "datafusion",
    "clickhouse",
    "spark",
)

__all__ = [
    "ENGINE_NAMES",
    "LOGICAL_TYPES",
    "Engine",
    "EngineError",
    "EngineStartError",
    "LogicalType",
    "Params",
    "engine_class",
    "open_engine",
]


def engine_class(name: str) -> type[Engine]:
    """Return the adapter class for an engine name (importing its module).

    Args:
        name: One of ``ENGINE_NAMES``.

    Returns:
        The :class:`Engine` subclass.

    Raises:
        ValueError: When the name is unknown.
    """
    if name == "duckdb":
        from cfs_semantic.engines.embedded import DuckDBEngine

        return DuckDBEngine
    if name == "sqlite":
        from cfs_semantic.engines.embedded import SQLiteEngine

        return SQLiteEngine
    if name == "datafusion":
        from cfs_semantic.engines.embedded import DataFusionEngine

        return DataFusionEngine
    if name == "postgres":
        from cfs_semantic.engines.postgres import PostgresEngine

        return PostgresEngine
    if name == "clickhouse":
        from cfs_semantic.engines.clickhouse import ClickHouseEngine

        return ClickHouseEngine
    if name == "spark":
        from cfs_semantic.engines.spark import SparkEngine

        return SparkEngine
    raise ValueError(f"unknown engine {name!r}; expected one of {ENGINE_NAMES}")


def open_engine(name: str, **options: Any) -> Engine:
    """Start an engine and return it; close it with ``close()`` or a ``with`` block.

    Args:
        name: One of ``ENGINE_NAMES``.
        **options: Engine-specific keyword arguments: ``postgres``: ``bin_dir``, ``os_user``,
            ``timeout``; ``clickhouse``: ``settings`` (e.g. ``{"join_use_nulls": 1}``);
            ``spark``: ``driver_memory``, ``conf``. The other engines take none.

    Returns:
        The started engine.

    Raises:
        ValueError: When the name is unknown.
        EngineStartError: When the engine cannot start.
    """
    cls = engine_class(name)
    started = time.perf_counter()
    engine = cls(**options)
    logger.info("engine %s ready in %.2f s", name, time.perf_counter() - started)
    return engine

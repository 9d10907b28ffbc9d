"""Apache Spark (PySpark, ``local[1]``) with tables as temporary views.

One SparkSession is started per process (start-up takes seconds) and shared by every
:class:`SparkEngine`; it is stopped by :func:`stop_spark_session` or at interpreter exit.
The driver binds to 127.0.0.1 only, the UI is disabled, the catalog is in-memory (no Hive, no
``spark-warehouse`` or Derby files in the working directory) and logging is at ERROR level.
Because PySpark launches the JVM with the parent's environment, ``SPARK_LOCAL_IP`` is set to
127.0.0.1 in ``os.environ`` when it is not already set.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from cfs_semantic.engines.base import (
    Engine,
    EngineError,
    EngineStartError,
    Params,
    arrow_to_frame,
    quoted_name,
)

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"session": None, "dir": None}

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""


def _base_conf(workdir: Path, driver_memory: str) -> dict[str, str]:
    log_config = workdir / "log4j2.properties"
    log_config.write_text(_LOG4J2, encoding="utf-8")
    return {
        "spark.master": "local[1]",
        "spark.app.name": "cfs-semantic",
        "spark.driver.memory": driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{log_config}",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "1",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(workdir / "warehouse"),
        "spark.local.dir": str(workdir / "local"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }


def spark_session(driver_memory: str = "768m", conf: Mapping[str, str] | None = None) -> Any:
    """Return the process-wide SparkSession, starting it on first use.

    Args:
        driver_memory: JVM heap of the driver (only used when the session starts).
        conf: Extra Spark settings (only used when the session starts).

    Returns:
        The ``pyspark.sql.SparkSession``.

    Raises:
        EngineStartError: When the JVM or the session cannot start.
    """
    with _LOCK:
        if _STATE["session"] is not None:
            if conf:
                logger.debug("Spark is already running; ignoring conf %r", dict(conf))
            return _STATE["session"]
        started = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(prefix="cfs-spark-"))
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            from pyspark.sql import SparkSession

            builder: Any = SparkSession.builder
            for key, value in {**_base_conf(workdir, driver_memory), **(conf or {})}.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
        except Exception as err:
            shutil.rmtree(workdir, ignore_errors=True)
            raise EngineStartError(f"Spark could not start: {err}") from err
        _STATE.update(session=session, dir=workdir)
        atexit.register(stop_spark_session)
        logger.info("Spark session started in %.1f s", time.perf_counter() - started)
        return session


def stop_spark_session() -> None:
    """Stop the process-wide SparkSession (if running) and delete its work directory."""
    with _LOCK:
        session, workdir = _STATE["session"], _STATE["dir"]
        _STATE.update(session=None, dir=None)
    if session is not None:
        session.stop()
        logger.info("Spark session stopped")
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def _spark_type(logical: str) -> Any:
    from pyspark.sql import types

    return {
        "string": types.StringType(),
        "float": types.DoubleType(),
        "integer": types.LongType(),
        "timestamp": types.TimestampNTZType(),
        "boolean": types.BooleanType(),
    }[logical]


class SparkEngine(Engine):
    """Spark SQL on the shared local SparkSession; tables are temporary views.

    Quirks callers must know:

    * Timestamps are loaded as ``TIMESTAMP_NTZ``; a plain ``TIMESTAMP`` in Spark SQL is
      ``TIMESTAMP_LTZ`` (session time zone UTC) and comes back UTC-aware.
    * ``/`` is always fractional (DOUBLE or DECIMAL); ``div`` is integer division. ANSI mode
      is on (Spark 4 default): bad casts and overflows raise. Decimals come back as float64.
    * View and column names are case-insensitive (``spark.sql.caseSensitive=false``): two
      tables or columns differing only in case collide.
    * :meth:`close` drops this engine's views but keeps the shared session running.
    """

    name = "spark"
    dialect = "spark"
    paramstyle = "'?' (list) or ':name' (mapping)"

    def __init__(self, driver_memory: str = "768m", conf: Mapping[str, str] | None = None) -> None:
        """Attach to (or start) the process-wide SparkSession.

        Args:
            driver_memory: JVM heap of the driver, used if the session is started here.
            conf: Extra Spark settings, used if the session is started here.

        Raises:
            EngineStartError: When Spark cannot start.
        """
        self._spark: Any = spark_session(driver_memory, conf)
        self._views: set[str] = set()

    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        from pyspark.sql import types

        schema = types.StructType(
            [types.StructField(col, _spark_type(logical)) for col, logical in columns.items()]
        )
        frame = self._check_open().createDataFrame(table, schema=schema)
        frame.createOrReplaceTempView(quoted_name(name, self.dialect))
        self._views.add(name)

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows (see :meth:`Engine.query`)."""
        args = _args(params)
        result = self._check_open().sql(sql, args=args)
        return arrow_to_frame(result.toArrow())

    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects."""
        self._check_open().sql(sql).collect()

    def _check_open(self) -> Any:
        if self._spark is None:
            raise EngineError("the Spark engine is closed")
        return self._spark

    def close(self) -> None:
        """Drop the views this engine created; the shared SparkSession keeps running."""
        if self._spark is None:
            return
        for view in sorted(self._views):
            self._spark.catalog.dropTempView(view)
        self._views.clear()
        self._spark = None


def _args(params: Params) -> Any:
    if params is None or isinstance(params, Mapping):
        return None if params is None else dict(params)
    if isinstance(params, str | bytes):
        raise EngineError("params must be a list or a mapping, not a string")
    return list(params)

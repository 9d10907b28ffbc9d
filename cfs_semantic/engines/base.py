"""Shared pieces of the engine adapters: the base class, errors, typing and conversions.

Every adapter turns the caller's pandas frame into a typed :class:`pyarrow.Table` first
(:func:`frame_to_arrow`), so NULL handling and type checks are identical on all engines, and
turns every result back into pandas through :func:`arrow_to_frame` or :func:`rows_to_frame`.

Result conventions (all engines):

* column names and order exactly as the engine returns them (duplicates kept);
* every SQL NULL is missing in pandas (``pd.isna`` is true): NaN in float and string columns,
  NaT in timestamp columns, None in object columns (booleans with NULLs, all-NULL columns);
* DECIMAL/NUMERIC columns are converted to float64;
* integer columns are int64-like without NULLs and float64 with NULLs (pyarrow's default);
* timestamps come back as ``datetime64`` (naive unless the engine returns a time zone).
"""

from __future__ import annotations

import abc
import decimal
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeAlias, get_args

import pandas as pd
import pyarrow as pa
from sqlglot import exp

logger = logging.getLogger(__name__)

LogicalType = Literal["string", "float", "integer", "timestamp", "boolean"]
LOGICAL_TYPES: tuple[str, ...] = get_args(LogicalType)

#: Positional values (a list) or named values (a mapping); see each engine's ``paramstyle``.
Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "float": pa.float64(),
    "integer": pa.int64(),
    "timestamp": pa.timestamp("us"),
    "boolean": pa.bool_(),
}


class EngineError(RuntimeError):
    """Base class of the errors raised by the engine adapters."""


class EngineStartError(EngineError):
    """The engine (server, JVM, embedded database) could not be started."""


class Engine(abc.ABC):
    """One SQL engine with a uniform load/query interface.

    Attributes:
        name: Engine name, one of ``ENGINE_NAMES``.
        dialect: sqlglot dialect to generate SQL for this engine.
        paramstyle: How ``query`` parameters are referenced in the SQL text.
    """

    name: ClassVar[str]
    dialect: ClassVar[str]
    paramstyle: ClassVar[str]

    def load_table(self, name: str, frame: pd.DataFrame, columns: Mapping[str, str]) -> None:
        """Create or replace table ``name`` and insert the rows of ``frame``.

        Args:
            name: Table name, used verbatim (quoted); it may contain any character.
            frame: Rows to insert; its index is ignored. None, NaN and NaT become NULL.
            columns: Column name -> logical type (``string``, ``float``, ``integer``,
                ``timestamp``, ``boolean``), in table order. It must name exactly the frame's
                columns. Timestamps must be naive; they are stored without a time zone.

        Raises:
            ValueError: The columns do not match the frame, a type is unknown, or a value
                cannot be converted to its column's type.
        """
        table = frame_to_arrow(frame, columns)
        logger.debug("%s: loading table %r (%d rows)", self.name, name, table.num_rows)
        self._load_arrow(name, table, dict(columns))

    @abc.abstractmethod
    def _load_arrow(self, name: str, table: pa.Table, columns: dict[str, str]) -> None:
        """Create or replace ``name`` from an already validated Arrow table."""

    @abc.abstractmethod
    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Execute one statement and return its rows.

        Args:
            sql: A single SQL statement in this engine's dialect.
            params: Values bound to the placeholders described by ``paramstyle``.

        Returns:
            The result set (see the module docstring for the type conventions).
        """

    @abc.abstractmethod
    def execute(self, sql: str) -> None:
        """Execute one statement for its side effects (setup, DDL); any rows are discarded.

        Args:
            sql: A single SQL statement in this engine's dialect.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the engine's resources. Calling it twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} dialect={self.dialect!r}>"


def check_columns(frame: pd.DataFrame, columns: Mapping[str, str]) -> None:
    """Check that ``columns`` names exactly the frame's columns with known logical types.

    Raises:
        ValueError: On an unknown type, a duplicate, a missing or an extra column.
    """
    frame_names = list(frame.columns)
    if len(set(frame_names)) != len(frame_names):
        raise ValueError(f"frame has duplicate column names: {frame_names!r}")
    unknown = {col: typ for col, typ in columns.items() if typ not in _ARROW_TYPES}
    if unknown:
        raise ValueError(f"unknown logical types {unknown!r}; expected one of {LOGICAL_TYPES}")
    missing = [col for col in columns if col not in frame_names]
    extra = [col for col in frame_names if col not in columns]
    if missing or extra:
        raise ValueError(f"columns do not match the frame: missing {missing!r}, extra {extra!r}")


def frame_to_arrow(frame: pd.DataFrame, columns: Mapping[str, str]) -> pa.Table:
    """Convert ``frame`` into an Arrow table typed by ``columns`` (None/NaN/NaT -> null).

    Args:
        frame: Source rows; the index is ignored.
        columns: Column name -> logical type, in the order of the resulting table.

    Returns:
        A table with string, float64, int64, timestamp[us] (naive) and bool columns.

    Raises:
        ValueError: When ``columns`` does not match the frame or a value does not convert.
    """
    check_columns(frame, columns)
    arrays: list[pa.Array] = []
    for col, logical in columns.items():
        series = frame[col].reset_index(drop=True)
        if logical == "timestamp":
            series = _naive_timestamps(col, series)
        try:
            arrays.append(pa.array(series, type=_ARROW_TYPES[logical], from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
            raise ValueError(f"column {col!r} cannot be loaded as {logical}: {err}") from err
    fields = [pa.field(col, _ARROW_TYPES[logical]) for col, logical in columns.items()]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _naive_timestamps(col: str, series: pd.Series) -> pd.Series:
    """Parse a timestamp column with pandas and reject time-zone-aware values."""
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        try:
            series = pd.to_datetime(series)
        except (TypeError, ValueError) as err:
            raise ValueError(f"column {col!r} cannot be loaded as timestamp: {err}") from err
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"column {col!r} has time-zone-aware values; pass naive timestamps")
    return series


def arrow_to_frame(table: pa.Table, *, utc_as_naive: bool = False) -> pd.DataFrame:
    """Convert an engine's Arrow result to pandas, keeping names (and duplicates) as returned.

    Args:
        table: The result set.
        utc_as_naive: Turn timestamp columns in UTC into naive ones (used for ClickHouse,
            whose time-zone-less DateTime64 values are reported in the session time zone).

    Returns:
        The result as a DataFrame; decimals are converted to float64.
    """
    series: list[pd.Series] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_decimal(field.type):
            column = column.cast(pa.float64(), safe=False)
        elif (
            utc_as_naive
            and pa.types.is_timestamp(field.type)
            and field.type.tz in {"UTC", "Etc/UTC", "+00:00"}
        ):
            column = column.cast(pa.timestamp(field.type.unit))
        series.append(column.to_pandas())
    return _assemble(table.column_names, series, table.num_rows)


def rows_to_frame(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Convert DB-API rows to pandas with the same conventions as :func:`arrow_to_frame`.

    Each column's Arrow type is inferred from its values; a column whose values have no common
    type (possible in SQLite) stays an object column.
    """
    series: list[pd.Series] = []
    for index in range(len(names)):
        values = [row[index] for row in rows]
        if any(isinstance(value, decimal.Decimal) for value in values):
            values = [None if value is None else float(value) for value in values]
        try:
            series.append(pa.chunked_array([pa.array(values)]).to_pandas())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            series.append(pd.Series(values, dtype=object))
    return _assemble(list(names), series, len(rows))


def _assemble(names: list[str], series: list[pd.Series], num_rows: int) -> pd.DataFrame:
    frame = pd.DataFrame(dict(enumerate(series)), index=pd.RangeIndex(num_rows))
    frame.columns = pd.Index(names, dtype=object)
    return frame


def quoted_table(name: str) -> exp.Table:
    """A sqlglot table whose name is always quoted (never split on dots)."""
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def quoted_name(name: str, dialect: str) -> str:
    """Render ``name`` as one quoted identifier in ``dialect``."""
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def create_table_sql(
    name: str,
    columns: Mapping[str, str],
    type_names: Mapping[str, str],
    dialect: str,
    *,
    replace: bool = False,
    properties: list[exp.Expression] | None = None,
) -> str:
    """Build ``CREATE [OR REPLACE] TABLE`` with every identifier quoted.

    Args:
        name: Table name.
        columns: Column name -> logical type.
        type_names: Logical type -> the engine's column type, parsed in ``dialect``.
        dialect: sqlglot dialect.
        replace: Emit ``CREATE OR REPLACE``.
        properties: Extra table properties (for example a ClickHouse ``ENGINE``).

    Returns:
        The statement text.
    """
    defs = [
        exp.ColumnDef(
            this=exp.to_identifier(col, quoted=True),
            kind=exp.DataType.build(type_names[logical], dialect=dialect),
        )
        for col, logical in columns.items()
    ]
    create = exp.Create(
        this=exp.Schema(this=quoted_table(name), expressions=defs),
        kind="TABLE",
        replace=replace,
        properties=exp.Properties(expressions=properties) if properties else None,
    )
    return create.sql(dialect=dialect)


def drop_table_sql(name: str, dialect: str) -> str:
    """Build ``DROP TABLE IF EXISTS`` for a quoted table name."""
    return exp.Drop(tables=[quoted_table(name)], kind="TABLE", exists=True).sql(dialect=dialect)


def insert_values_sql(name: str, columns: Sequence[str], dialect: str) -> str:
    """Build ``INSERT INTO t (cols) VALUES (<placeholders>)`` for ``executemany``."""
    target = exp.Schema(
        this=quoted_table(name),
        expressions=[exp.to_identifier(col, quoted=True) for col in columns],
    )
    row = exp.Tuple(expressions=[exp.Placeholder() for _ in columns])
    return exp.Insert(this=target, expression=exp.Values(expressions=[row])).sql(dialect=dialect)


def insert_select_sql(name: str, source: str, dialect: str) -> str:
    """Build ``INSERT INTO t SELECT * FROM source`` with both names quoted."""
    select = exp.select(exp.Star()).from_(quoted_table(source))
    return exp.Insert(this=quoted_table(name), expression=select).sql(dialect=dialect)

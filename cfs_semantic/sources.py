"""The local runner's inputs: CSV/Parquet files registered as DuckDB tables.

The same spec runs on files here and on warehouse tables elsewhere: a spec source is a table
name or a SELECT over tables, and this module only makes the tables exist.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pandas as pd
from sqlglot import exp

from cfs_semantic.errors import DataError
from cfs_semantic.loader import suggest
from cfs_semantic.reference import SourceFrames
from cfs_semantic.spec import ActivationMode, SourceRef, Spec, TableFile
from cfs_semantic.sql.common import is_query, parse_source

logger = logging.getLogger(__name__)

_DUCK_TYPES = {
    "string": "VARCHAR",
    "float": "DOUBLE",
    "integer": "BIGINT",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def _read_expr(table: TableFile, path: Path) -> exp.Expression:
    """Build ``read_csv(...)`` / ``read_parquet(...)`` with every value as a literal."""
    fmt = table.format or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
    if fmt == "parquet":
        return exp.Anonymous(this="read_parquet", expressions=[exp.Literal.string(str(path))])
    args: list[exp.Expression] = [exp.Literal.string(str(path))]

    def kw(name: str, value: exp.Expression) -> exp.Expression:
        return exp.Kwarg(this=exp.var(name), expression=value)

    args.append(kw("header", exp.true()))
    args.append(kw("auto_detect", exp.true()))
    if table.timestamp_format:
        args.append(kw("timestampformat", exp.Literal.string(table.timestamp_format)))
    if table.types:
        types = exp.Struct(
            expressions=[
                exp.PropertyEQ(
                    this=exp.Literal.string(name), expression=exp.Literal.string(_DUCK_TYPES[t])
                )
                for name, t in sorted(table.types.items())
            ]
        )
        args.append(kw("types", types))
    return exp.Anonymous(this="read_csv", expressions=args)


def register_tables(
    spec: Spec, base_dir: Path, con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """Create one DuckDB table per ``tables`` entry of the spec, read from its file.

    Args:
        spec: the validated spec.
        base_dir: the folder relative paths are read from (the spec file's folder).
        con: an open connection, or None for a new in-memory database.

    Raises:
        DataError: a file is missing or cannot be read as a table.
    """
    con = con or duckdb.connect()
    # A value with an offset (TIMESTAMPTZ) becomes naive local time of the spec's time zone when
    # the SQL casts it to TIMESTAMP; the SQL then reads naive times in that zone, as the
    # contract says. Warehouses need the same session time zone (README, "Time zones").
    zone = exp.EQ(this=exp.column("TimeZone"), expression=exp.Literal.string(spec.timezone))
    con.execute(exp.Set(expressions=[exp.SetItem(this=zone)]).sql("duckdb"))
    for name, table in spec.tables.items():
        path = (base_dir / table.path).resolve()
        if path.is_file() and path.stat().st_size == 0:
            raise DataError(
                f"tables.{name}: {path} is empty (0 bytes); a CSV needs at least a header line"
            )
        if not path.is_file():
            raise DataError(
                f"tables.{name}: file not found: {path}; fix tables.{name}.path "
                f"(relative paths start at {base_dir})"
            )
        query = exp.select(exp.Star()).from_(exp.Table(this=_read_expr(table, path)))
        create = exp.Create(
            this=exp.Table(this=exp.to_identifier(name, quoted=True)),
            kind="TABLE",
            expression=query,
            replace=True,
        )
        try:
            con.execute(create.sql("duckdb"))
        except duckdb.Error as err:
            # DuckDB's CSV errors name the line, the row and the column first, then list the
            # sniffer's settings; the first paragraph is what a user needs.
            detail = str(err).strip().split("\n\n")[0].replace("\n", "; ")
            raise DataError(f"tables.{name}: cannot read {path}: {detail}") from None
        _nan_to_null(con, name)
        count = exp.select(exp.Count(this=exp.Star())).from_(
            exp.Table(this=exp.to_identifier(name, quoted=True))
        )
        row = con.execute(count.sql("duckdb")).fetchall()[0]
        logger.info("registered table %s from %s (%s rows)", name, path, row[0] if row else 0)
    return con


def _nan_to_null(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Store NaN in floating columns as NULL: the contract reads NaN as a missing score."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND data_type IN ('DOUBLE', 'FLOAT', 'REAL')",
        [name],
    ).fetchall()
    for (column,) in rows:
        target = exp.column(column, quoted=True)
        update = exp.Update(
            this=exp.Table(this=exp.to_identifier(name, quoted=True)),
            expressions=[exp.EQ(this=target, expression=exp.Null())],
            where=exp.Where(this=exp.Anonymous(this="isnan", expressions=[target.copy()])),
        )
        con.execute(update.sql("duckdb"))


def _frame(
    spec: Spec, con: duckdb.DuckDBPyConnection, source: SourceRef, role: str
) -> pd.DataFrame:
    select = exp.select(exp.Star()).from_(parse_source(source, spec.source_dialect).as_("s"))
    try:
        return con.execute(select.sql("duckdb")).df()
    except duckdb.CatalogException as err:
        known = [
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        ]
        hints = [suggest(source.table, known)] if source.table is not None else []
        if source.table is not None and " " in source.table.strip():
            hints.append(
                "a source is read as a query only when it starts with SELECT or WITH; "
                "anything else is a table name"
            )
        first_line = str(err).splitlines()[0]
        raise DataError("; ".join([f"{role}: {first_line}", *[h for h in hints if h]])) from None
    except duckdb.Error as err:
        raise DataError(f"{role}: {err}") from None


def check_columns(spec: Spec, frames: SourceFrames) -> None:
    """Fail with a suggestion when a column the spec maps is missing from its source."""
    checks: list[tuple[str, pd.DataFrame | None, dict[str, str | None]]] = []
    act = spec.activation
    cols = spec.responses
    checks.append(
        (
            "responses",
            frames.responses,
            {
                "response_id": cols.response_id,
                "user_id": cols.user_id,
                "responded_at": cols.responded_at,
                "score": cols.score,
                "label": cols.label,
                "stage": cols.stage,
                **{f"attributes.{k}": v for k, v in cols.attributes.items()},
            },
        )
    )
    if act.mode is not ActivationMode.RESPONSE_STAGE:
        mapping: dict[str, str | None] = {
            "user_id": act.user_id,
            "activated_at": act.activated_at,
            "occurred_at": act.occurred_at,
            **{f"attributes.{k}": v for k, v in act.attributes.items()},
            **{f"where[{i}].column": c.column for i, c in enumerate(act.where)},
        }
        checks.append(("activation", frames.activations, mapping))
        if act.users is not None:
            checks.append(
                (
                    "activation.users",
                    frames.users,
                    {
                        "user_id": act.users.user_id,
                        **{f"attributes.{k}": v for k, v in act.users.attributes.items()},
                    },
                )
            )
    for role, frame, mapping in checks:
        if frame is None:
            continue
        for key, column in mapping.items():
            if column is not None and column not in frame.columns:
                hint = suggest(column, [str(c) for c in frame.columns])
                raise DataError(
                    f"{role}.{key}: unknown column {column!r}"
                    + (f"; {hint}" if hint else "")
                    + f" (columns: {', '.join(map(str, frame.columns))})"
                )


def source_frames(spec: Spec, con: duckdb.DuckDBPyConnection) -> SourceFrames:
    """Read the rows of every source the spec names, for the pandas reference."""
    act = spec.activation
    frames = SourceFrames(responses=_frame(spec, con, spec.responses.source, "responses.source"))
    if act.source is not None:
        frames.activations = _frame(spec, con, act.source, "activation.source")
    if act.users is not None:
        frames.users = _frame(spec, con, act.users.source, "activation.users.source")
    check_columns(spec, frames)
    check_values(spec, frames)
    return frames


def _where(spec: Spec, source: SourceRef) -> str:
    table = spec.tables.get(source.table or "")
    if table is not None:
        return f"table {source.table!r} (file {table.path})"
    return f"table {source.table!r}" if not is_query(source) else "the source query"


def _bad_row(mask: pd.Series) -> int | None:
    hits = mask.to_numpy().nonzero()[0]
    return int(hits[0]) if len(hits) else None


def _value_error(
    spec: Spec,
    source: SourceRef,
    key: str,
    column: str,
    row: int,
    value: object,
    what: str,
    fix: str,
) -> DataError:
    where = _where(spec, source)
    line = f", line {row + 2} of the file" if (source.table or "") in spec.tables else ""
    return DataError(
        f"{key}: column {column!r} of {where}, row {row + 1}{line}: {value!r} {what}; {fix}"
    )


def check_values(spec: Spec, frames: SourceFrames) -> None:
    """Fail naming the file, row and column of the first value the KPI cannot read.

    Scores must be numbers or empty; timestamps must parse (ISO-8601, or the table's
    ``timestamp_format`` when read from a file) and a column must not mix values with and
    without a UTC offset.
    """
    cols = spec.responses
    checks: list[tuple[pd.DataFrame | None, SourceRef, str, str | None, str]] = [
        (frames.responses, cols.source, "responses.score", cols.score, "number"),
        (frames.responses, cols.source, "responses.responded_at", cols.responded_at, "time"),
    ]
    act = spec.activation
    if act.source is not None:
        time_col = act.activated_at or act.occurred_at
        key = "activation.activated_at" if act.activated_at else "activation.occurred_at"
        checks.append((frames.activations, act.source, key, time_col, "time"))
    for frame, source, key, column, kind in checks:
        if frame is None or column is None:
            continue
        values = frame[column]
        if kind == "number":
            _check_numbers(spec, source, key, column, values)
        else:
            _check_times(spec, source, key, column, values)


def _check_numbers(spec: Spec, source: SourceRef, key: str, column: str, values: pd.Series) -> None:
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    parsed = pd.to_numeric(values, errors="coerce")
    row = _bad_row(values.notna() & parsed.isna())
    if row is not None:
        raise _value_error(
            spec,
            source,
            key,
            column,
            row,
            values.iloc[row],
            "is not a number",
            "fix the value, leave it empty for a non-answer, or map another column",
        )


def _check_times(spec: Spec, source: SourceRef, key: str, column: str, values: pd.Series) -> None:
    if pd.api.types.is_datetime64_any_dtype(values):
        return
    text = values.astype("string")
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    row = _bad_row(values.notna() & parsed.isna())
    if row is not None:
        raise _value_error(
            spec,
            source,
            key,
            column,
            row,
            values.iloc[row],
            "is not a timestamp",
            "use ISO-8601 or set tables.<name>.timestamp_format",
        )
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    if has_offset.any() and not has_offset[values.notna()].all():
        row = _bad_row(values.notna() & ~has_offset)
        assert row is not None
        raise _value_error(
            spec,
            source,
            key,
            column,
            row,
            values.iloc[row],
            "has no UTC offset while other rows have one",
            "give every timestamp an offset, or none",
        )

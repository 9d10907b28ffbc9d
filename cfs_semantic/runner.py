"""Run the KPI locally: files -> DuckDB tables -> generated SQL, and the pandas reference."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from cfs_semantic.compare import Difference, compare
from cfs_semantic.contract import COUNTERS, TIME_DIMENSIONS, Grouping
from cfs_semantic.dialects import render
from cfs_semantic.errors import DataError, UsageError
from cfs_semantic.loader import load_spec, suggest
from cfs_semantic.reconcile import Reconciliation, reference_buckets
from cfs_semantic.reference import SourceFrames, aggregate
from cfs_semantic.sources import register_tables, source_frames
from cfs_semantic.spec import Grain, Spec
from cfs_semantic.sql.aggregate import aggregate_query
from cfs_semantic.sql.reconcile import BUCKETS, reconcile_query

logger = logging.getLogger(__name__)


def make_grouping(spec: Spec, by: list[str], grain: str | None, time_dim: str | None) -> Grouping:
    """Validate command-line grouping choices against the spec.

    Raises:
        UsageError: an unknown segment, grain or time dimension.
    """
    known = list(spec.user_attributes()) + list(spec.responses.attributes)
    for name in by:
        if name not in known:
            hint = suggest(name, known)
            raise UsageError(
                f"unknown segment {name!r}"
                + (f"; {hint}" if hint else "")
                + f" (known: {', '.join(known) or 'none'})"
            )
    if grain is not None and grain not in {g.value for g in Grain}:
        raise UsageError(f"unknown grain {grain!r}; use day, week or month")
    if time_dim is not None and time_dim not in TIME_DIMENSIONS:
        raise UsageError(f"unknown time dimension {time_dim!r}; use responded or activated")
    return Grouping(tuple(by), (time_dim or "responded") if grain else None, grain)


@dataclass
class LocalRun:
    """A spec with its files registered in an in-memory DuckDB database."""

    spec: Spec
    base_dir: Path
    con: duckdb.DuckDBPyConnection
    timings: dict[str, float] = field(default_factory=dict)
    _frames: SourceFrames | None = None

    @classmethod
    def open(cls, spec_path: str | Path) -> LocalRun:
        """Load the spec and register its tables."""
        path = Path(spec_path)
        spec = load_spec(path)
        started = time.perf_counter()
        con = register_tables(spec, path.parent)
        run = cls(spec, path.parent, con)
        run.timings["load"] = time.perf_counter() - started
        return run

    def frames(self) -> SourceFrames:
        """Return the source rows (read once)."""
        if self._frames is None:
            self._frames = source_frames(self.spec, self.con)
        return self._frames

    def sql(self, grouping: Grouping = Grouping()) -> pd.DataFrame:
        """Run the generated aggregate query on DuckDB."""
        self.frames()  # checks every mapped column exists, with suggestions
        query = render(aggregate_query(self.spec, grouping), "duckdb")
        started = time.perf_counter()
        try:
            result = self.con.execute(query).df()
        except duckdb.ConversionException as err:
            raise DataError(f"a value cannot be converted: {err}") from None
        self.timings["sql"] = time.perf_counter() - started
        logger.info("DuckDB query: %d groups in %.3f s", len(result), self.timings["sql"])
        return result

    def reference(self, grouping: Grouping = Grouping()) -> pd.DataFrame:
        """Run the pandas reference."""
        started = time.perf_counter()
        result = aggregate(self.spec, self.frames(), grouping)
        self.timings["reference"] = time.perf_counter() - started
        return result

    def reconcile(self) -> Reconciliation:
        """Count where every input response went, with SQL on DuckDB."""
        rows = self.con.execute(render(reconcile_query(self.spec), "duckdb")).fetchall()
        buckets = {name: 0 for name in BUCKETS}
        buckets.update({str(name): int(count) for name, count in rows})
        overall = self.sql().iloc[0]
        counters = {name: int(overall[name]) for name in COUNTERS}
        return Reconciliation(len(self.frames().responses), buckets, counters)

    def verify_reconciliation(self) -> list[str]:
        """Compare the SQL buckets with the reference's and check that they add up."""
        sql = self.reconcile()
        ref = reference_buckets(self.spec, self.frames())
        found = [
            f"bucket {name}: reference {ref[name]}, SQL {sql.buckets[name]}"
            for name in BUCKETS
            if ref[name] != sql.buckets[name]
        ]
        return found + sql.problems()

    def verify(self, grouping: Grouping) -> list[Difference]:
        """Compare the DuckDB result with the reference for one grouping."""
        return compare(self.reference(grouping), self.sql(grouping), grouping.columns())


def all_groupings(spec: Spec) -> list[Grouping]:
    """Return the groupings ``verify`` checks: overall, each segment, each time grain."""
    out = [Grouping()]
    out += [Grouping((segment,)) for segment in spec.segments]
    for time_dim in TIME_DIMENSIONS:
        out += [Grouping((), time_dim, grain.value) for grain in Grain]
    if len(spec.segments) > 1:
        out.append(Grouping(tuple(spec.segments[:2])))
    if spec.segments:
        out.append(Grouping((spec.segments[0],), "responded", "month"))
    return out

"""Run the pandas reference on a benchmark dataset in a process of its own.

Started by ``run.py`` so that the peak memory the parent reads for this process (``wait4``)
is the reference's own: loading the two tables into pandas plus computing the aggregate.

Usage: ``python benchmarks/reference_worker.py DATA_FILE VIEW_INDEX RUNS RESULT.pkl``; prints
one JSON object on stdout.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import duckdb
import pandas as pd
from dataset import bench_spec
from queries import VIEWS
from timing import timed

from cfs_semantic.reference import SourceFrames, aggregate


def _load(path: str) -> SourceFrames:
    with duckdb.connect(path, read_only=True) as con:
        responses = con.table("responses").to_arrow_table().to_pandas()
        activations = con.table("activations").to_arrow_table().to_pandas()
    return SourceFrames(responses=responses, activations=activations)


def main(argv: list[str]) -> int:
    """Load, run the reference ``runs`` times, write the last result, report the times."""
    path, view_index, runs, result_path = argv[0], int(argv[1]), int(argv[2]), argv[3]
    spec = bench_spec()
    view = VIEWS[view_index]
    frames, load = timed(lambda: _load(path))
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    samples = []
    result = pd.DataFrame()
    for _ in range(runs):
        result, sample = timed(lambda: aggregate(spec, frames, view.grouping))
        samples.append({"wall": sample.wall, "cpu": sample.cpu})
    result.to_pickle(Path(result_path))
    report = {
        "load": {"wall": load.wall, "cpu": load.cpu},
        "runs": samples,
        "peak_after_load": after_load,
        "responses": len(frames.responses),
    }
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

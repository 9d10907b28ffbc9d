"""Benchmark cfs-semantic on a synthetic dataset at 1M-10M responses (issue 6).

Times, several runs each: the generated SQL on DuckDB by persona and by month, a hand-written
single-pass query for the same numbers (the baseline; the numbers are checked equal), the bare
join of responses to first activations (the floor), Cube's SQL for the same query through the
Cube harness, the pandas reference (in a child process, for its peak memory) and
``cfs-semantic generate`` + check for all dialects of a bundled spec as whole processes.

Results go to stdout, progress to stderr, and a Markdown section to docs/benchmarks.md.

    python benchmarks/run.py                      # 1M users, 10M responses
    python benchmarks/run.py --sizes 1M,3M,10M    # scaling table
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
from cube_sql import generate as generate_cube_sql
from cube_sql import harness_ready
from dataset import Size, bench_spec, data_file, describe, format_count, generate, parse_count
from measure import measure_cli, measure_size
from report import SizeResult
from summary import environment, render_markdown, render_text, targets

from cfs_semantic.cube_compiler import CubeSql
from cfs_semantic.dialects import render
from cfs_semantic.spec import Spec
from cfs_semantic.sql.aggregate import facts_view
from generators.cube_model import facts_table

REPO = Path(__file__).resolve().parent.parent


class Progress:
    """Progress lines on stderr, each with the time since the start."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--responses", default="10M", help="responses (default 10M)")
    parser.add_argument(
        "--users", default=None, help="activated users, also for every --sizes (default 1/10)"
    )
    parser.add_argument("--sizes", default=None, help="several response counts, e.g. 1M,3M,10M")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep and reuse datasets here (default: temp)"
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="do not update --output")
    parser.add_argument(
        "--reference-max",
        default=None,
        help="largest size the pandas reference runs at (default: every size)",
    )
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-cube", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def sizes_from(args: argparse.Namespace) -> list[Size]:
    """The dataset sizes to measure, smallest first."""
    if args.sizes:
        counts = sorted({parse_count(part) for part in args.sizes.split(",") if part.strip()})
        fixed = parse_count(args.users) if args.users else None
        return [Size(fixed or max(1, count // 10), count) for count in counts]
    responses = parse_count(args.responses)
    users = parse_count(args.users) if args.users else max(1, responses // 10)
    return [Size(users, responses)]


def ensure_data(spec: Spec, size: Size, directory: Path, progress: Progress) -> tuple[Path, float]:
    """Return the dataset file for ``size``, generating it unless a kept copy exists."""
    path = data_file(directory, size)
    if path.is_file():
        progress(f"{size.label}: reusing {path}")
        return path, 0.0
    progress(
        f"{size.label}: generating {format_count(size.users)} users, "
        f"{format_count(size.responses)} responses in DuckDB"
    )
    view = render(facts_view(spec, facts_table(spec)), "duckdb", pretty=False)
    start = time.perf_counter()
    generate(path, size, view)
    return path, time.perf_counter() - start


def cube_statements(spec: Spec, args: argparse.Namespace, progress: Progress) -> list[CubeSql]:
    """Cube's SQL for each grouping, or [] when skipped or the harness is missing."""
    if args.skip_cube:
        return []
    reason = harness_ready()
    if reason:
        progress(f"skipping Cube: {reason}")
        return []
    progress("Cube: compiling the generated model and generating SQL (Node harness)")
    return generate_cube_sql(spec)


def run(args: argparse.Namespace, data_dir: Path, progress: Progress) -> int:
    """Measure every size, then the CLI; print and write the results."""
    spec = bench_spec()
    sizes = sizes_from(args)
    load_before = environment()
    cube = cube_statements(spec, args, progress)
    reference_max = parse_count(args.reference_max) if args.reference_max else None
    results: list[SizeResult] = []
    for size in sizes:
        path, seconds = ensure_data(spec, size, data_dir, progress)
        with duckdb.connect(str(path), read_only=True) as con:
            facts = describe(con)
        result = SizeResult(size, seconds, facts)
        with_reference = not args.skip_reference and (
            reference_max is None or size.responses <= reference_max
        )
        measure_size(spec, path, cube, args.runs, with_reference, result, progress)
        results.append(result)
    cli = [] if args.skip_cli else measure_cli(REPO, args.runs, progress)
    found = targets(results, cli)
    env = environment(load_before)
    print(render_text(results, cli, found, env))
    if not args.no_write:
        render_markdown(args.output, results, cli, found, env)
        progress(f"wrote {args.output}")
    failed = [line for r in results for line in r.checks if not line.startswith("ok")]
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 when every check passed, 1 when numbers differ."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pd.set_option("display.width", 200)
    progress = Progress()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        return run(args, args.data_dir, progress)
    with tempfile.TemporaryDirectory(prefix="cfs-bench-") as tmp:
        return run(args, Path(tmp), progress)


if __name__ == "__main__":
    sys.exit(main())

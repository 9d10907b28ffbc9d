"""The ``cfs-semantic`` command line.

Results go to stdout, diagnostics to stderr. Exit codes: 0 success, 1 the spec or the data is
invalid (or verification found a difference), 2 bad usage. Tracebacks only with ``--verbose``
or for bugs, which say they are bugs.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cfs_semantic.errors import CfsError, UsageError
from cfs_semantic.spec import SUPPORTED_DIALECTS

if TYPE_CHECKING:  # pandas loads lazily: generate and check never need it
    import pandas as pd

logger = logging.getLogger("cfs_semantic")
REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SPECS = (
    "examples/ravenstack/spec.yaml",
    "examples/telecom_nps/spec.yaml",
    "examples/telecom_nps/spec_score.yaml",
)


def _fail(err: BaseException, verbose: bool) -> NoReturn:
    # DuckDB turns Ctrl-C during a query into RuntimeError("Query interrupted").
    if isinstance(err, KeyboardInterrupt) or (
        isinstance(err, RuntimeError) and "Query interrupted" in str(err)
    ):
        click.echo("interrupted", err=True)
        sys.exit(130)
    if isinstance(err, BrokenPipeError):
        # The reader (e.g. ``head``) closed stdout early; that is not an error of ours.
        sys.stderr.close()
        sys.exit(0)
    if isinstance(err, CfsError):
        if verbose:
            traceback.print_exc(file=sys.stderr)
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    traceback.print_exc(file=sys.stderr)
    click.echo(
        "internal error: this is a bug in cfs-semantic; please report it with the traceback above",
        err=True,
    )
    sys.exit(1)


class _Group(click.Group):
    """Maps the project's errors to exit codes; click's own usage errors exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the CLI boundary
            _fail(err, bool(ctx.obj and ctx.obj.get("verbose")))


@click.group(cls=_Group)
@click.option("--verbose", "-v", is_flag=True, help="Log progress and show tracebacks.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Customer Feedback Score (Post-activation): governed Cube and SQL definitions."""
    ctx.obj = {"verbose": verbose}
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _split(values: tuple[str, ...]) -> list[str]:
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    twice = sorted({p for p in parts if parts.count(p) > 1})
    if twice:
        raise UsageError(f"--by lists {twice[0]!r} twice; list each segment once")
    return parts


def _emit(frame: pd.DataFrame, keys: list[str], fmt: str, decimals: int, title: str) -> None:
    from cfs_semantic.compare import present

    shown = present(frame, keys, decimals)
    if fmt == "json":
        click.echo(json.dumps(shown.to_dict("records"), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(shown.to_csv(index=False, lineterminator="\n"), nl=False)
    else:
        click.echo(title)
        click.echo(_table(shown, keys))


def _table(frame: pd.DataFrame, keys: list[str]) -> str:
    """A transposed table for people: one column per group, one row per counter or measure."""
    labels = (
        [
            " / ".join("(null)" if v is None else str(v) for v in row) or "all"
            for row in frame[keys].itertuples(index=False)
        ]
        if keys
        else ["all"] * len(frame)
    )
    body = frame.drop(columns=keys).T
    body.columns = labels
    return body.to_string(na_rep="NULL")


@main.command()
@click.argument("spec_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", multiple=True, help="Segments to group by (repeat or comma-separate).")
@click.option("--grain", type=click.Choice(["day", "week", "month"]), default=None)
@click.option(
    "--time",
    "time_dim",
    type=click.Choice(["responded", "activated"]),
    default=None,
    help="Which time the grain applies to (default responded).",
)
@click.option("--decimals", type=click.IntRange(0, 12), default=4, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option(
    "--reconcile", is_flag=True, help="Print where every input response went instead of the KPI."
)
def compute(
    spec_path: Path,
    by: tuple[str, ...],
    grain: str | None,
    time_dim: str | None,
    decimals: int,
    fmt: str,
    reconcile: bool,
) -> None:
    """Run the KPI on the spec's local files with DuckDB and print the result."""
    from cfs_semantic.runner import LocalRun, make_grouping

    run = LocalRun.open(spec_path)
    if time_dim and not grain:
        raise UsageError("--time needs --grain")
    grouping = make_grouping(run.spec, _split(by), grain, time_dim)
    if reconcile:
        _emit_reconciliation(run, fmt)
        return
    result = run.sql(grouping)
    title = f"{run.spec.title} [{run.spec.name}, DuckDB]"
    _emit(result, grouping.columns(), fmt, decimals, title)
    if fmt == "table":
        click.echo("")
        _emit_reconciliation(run, fmt)


def _emit_reconciliation(run: Any, fmt: str) -> None:
    rec = run.reconcile()
    if fmt == "json":
        payload = {"input_responses": rec.input_responses, **rec.buckets}
        click.echo(json.dumps({**payload, "problems": rec.problems()}, indent=2))
        return
    if fmt == "csv":
        click.echo("bucket,responses")
        for name, count in rec.buckets.items():
            click.echo(f"{name},{count}")
        return
    click.echo("-- where every input response went")
    width = max(len(label) for label, _ in rec.lines())
    for label, count in rec.lines():
        click.echo(f"{label.ljust(width)}  {count:>9}")
    for problem in rec.problems():
        click.echo(f"warning: {problem}", err=True)


@main.command()
@click.argument("spec_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", multiple=True, help="Check only this grouping (default: all).")
@click.option("--grain", type=click.Choice(["day", "week", "month"]), default=None)
@click.option("--time", "time_dim", type=click.Choice(["responded", "activated"]), default=None)
def verify(spec_path: Path, by: tuple[str, ...], grain: str | None, time_dim: str | None) -> None:
    """Compare the SQL result with the pandas reference, every counter, every group."""
    from cfs_semantic.runner import LocalRun, all_groupings, make_grouping

    run = LocalRun.open(spec_path)
    if by or grain:
        groupings = [make_grouping(run.spec, _split(by), grain, time_dim)]
    else:
        groupings = all_groupings(run.spec)
    failed = _verify_all(run, groupings)
    if failed:
        sys.exit(1)


def _verify_all(run: Any, groupings: list[Any]) -> int:
    failed = 0
    problems = run.verify_reconciliation()
    if problems:
        failed += 1
        click.echo("FAIL reconciliation: " + "; ".join(problems))
    else:
        responses = len(run.frames().responses)
        click.echo(f"ok   reconciliation: {responses} input responses, buckets equal, adding up")
    for grouping in groupings:
        diffs = run.verify(grouping)
        label = ", ".join(grouping.columns()) or "overall"
        groups = len(run.reference(grouping))
        if diffs:
            failed += 1
            click.echo(f"FAIL {label}: {len(diffs)} differences", err=False)
            for diff in diffs[:20]:
                click.echo(f"  {diff.render()}")
        else:
            click.echo(f"ok   {label}: {groups} groups, every counter and measure equal")
    click.echo(f"{len(groupings) + 1 - failed} passed, {failed} failed")
    return failed


@main.command()
@click.argument("spec_paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("semantic_models"),
    show_default=True,
)
@click.option("--check", is_flag=True, help="Exit 1 with a diff when files drift; write nothing.")
@click.option("--force", is_flag=True, help="Overwrite files cfs-semantic did not write.")
def generate(spec_paths: tuple[Path, ...], out_dir: Path, check: bool, force: bool) -> None:
    """Write the Cube model and the SQL per dialect for each spec."""
    from cfs_semantic.loader import load_spec
    from generators.emit import artifacts, write_artifacts
    from generators.safe_write import MANIFEST, manifest_text

    paths = spec_paths or tuple(REPO_ROOT / p for p in BUNDLED_SPECS)
    drift = 0
    specs = [(path, load_spec(path)) for path in paths]
    names = [spec.name for _, spec in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(
            f"two specs are named {twice[0]!r}; their files would overwrite each other. "
            "Give each spec its own name"
        )
    for path, spec in specs:
        files = artifacts(spec, _display_path(path))
        target = out_dir / spec.name
        if check:
            drift += _report_drift({**files, MANIFEST: manifest_text(files)}, target)
        else:
            written = write_artifacts(files, target, force=force)
            click.echo(f"{spec.name}: wrote {len(written)} files under {target}")
    if check:
        if drift:
            click.echo(
                f"{drift} generated files drifted; run 'cfs-semantic generate' (a hand-edited "
                "file must be moved away first, or overwritten with --force)",
                err=True,
            )
            sys.exit(1)
        click.echo("generated files are up to date")


def _display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _report_drift(files: dict[str, str], target: Path) -> int:
    drift = 0
    for relative, content in sorted(files.items()):
        current_path = target / relative
        current = current_path.read_text(encoding="utf-8") if current_path.is_file() else ""
        if current != content:
            drift += 1
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                content.splitlines(keepends=True),
                fromfile=str(current_path),
                tofile=f"{current_path} (generated)",
            )
            click.echo("".join(diff), nl=False)
    return drift


@main.command(name="check")
@click.argument("spec_paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dialect",
    "dialects",
    multiple=True,
    type=click.Choice(SUPPORTED_DIALECTS),
    help="Check only this dialect (repeat; default: each spec's dialects).",
)
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Worker processes.")
def check_command(
    spec_paths: tuple[Path, ...], dialects: tuple[str, ...], jobs: int | None
) -> None:
    """Parse, lint, type-check and column-check every statement for each target dialect."""
    from cfs_semantic.check import check_specs, declared_schema
    from cfs_semantic.loader import load_spec

    paths = spec_paths or tuple(REPO_ROOT / p for p in BUNDLED_SPECS)
    specs = [
        (spec, declared_schema(spec, path.parent)) for path in paths for spec in [load_spec(path)]
    ]
    reports = check_specs(specs, list(dialects) or None, jobs or min(4, os.cpu_count() or 1))
    for report in reports.values():
        click.echo(report.summary())
        for finding in report.findings:
            click.echo(f"  {finding.render()}")
    bad = [r.dialect for r in reports.values() if r.findings]
    click.echo(f"{len(reports) - len(bad)} dialects passed, {len(bad)} failed")
    if bad:
        sys.exit(1)


@main.command()
@click.option("--decimals", type=click.IntRange(0, 12), default=4, show_default=True)
def demo(decimals: int) -> None:
    """The main job: generate, compute and verify the bundled RavenStack example."""
    from cfs_semantic.runner import LocalRun, all_groupings
    from generators.emit import artifacts

    spec_path = REPO_ROOT / BUNDLED_SPECS[0]
    run = LocalRun.open(spec_path)
    files = artifacts(run.spec, _display_path(spec_path))
    click.echo(f"== {run.spec.title}")
    click.echo(
        f"spec: {_display_path(spec_path)}; generated {len(files)} artifacts "
        f"({len(run.spec.dialects)} SQL dialects, Cube model and view)"
    )
    frames = run.frames()
    click.echo(
        f"input: {len(frames.responses)} responses, "
        f"{0 if frames.activations is None else len(frames.activations)} activation events"
    )
    click.echo("")
    _emit(run.sql(), [], "table", decimals, "-- overall (DuckDB)")
    click.echo("")
    segment = run.spec.segments[0]
    from cfs_semantic.contract import Grouping

    _emit(run.sql(Grouping((segment,))), [segment], "table", decimals, f"-- by {segment} (DuckDB)")
    click.echo("")
    click.echo("-- verify: DuckDB SQL against the pandas reference")
    failed = _verify_all(run, all_groupings(run.spec))
    if failed:
        sys.exit(1)
    click.echo("verified: every counter and measure equals the reference")


if __name__ == "__main__":
    main()

"""Write generated files without ever losing a file the generator does not own.

A manifest in each output folder lists the files the generator wrote and their hashes. A run
refuses (before writing anything) to overwrite a file it did not create, or one edited by hand
since it was generated, unless forced. Every file is first written to a temporary file; the
renames happen only after all of them were written, so an interrupted run leaves the previous
files intact (at worst some stray temporary files, which the next run removes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from cfs_semantic.errors import CfsError

logger = logging.getLogger(__name__)

MANIFEST = ".cfs-semantic-manifest.json"


class UnsafeWriteError(CfsError):
    """Writing would overwrite or delete a file the generator does not own."""


def digest(content: str) -> str:
    """Return the sha256 of text as written (UTF-8)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def manifest_text(files: dict[str, str]) -> str:
    """Return the manifest for ``files`` (deterministic)."""
    entries = {path: digest(content) for path, content in sorted(files.items())}
    return json.dumps({"generator": "cfs-semantic", "files": entries}, indent=2) + "\n"


def read_manifest(out_dir: Path) -> dict[str, str]:
    """Return relative path -> sha256 of the files a previous run wrote (empty if none)."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UnsafeWriteError(
            f"{path}: the manifest is unreadable ({err}); restore it from git or pass --force"
        ) from None


def _current_digest(path: Path) -> str | None:
    return digest(path.read_text(encoding="utf-8")) if path.is_file() else None


def plan(files: dict[str, str], out_dir: Path, force: bool) -> tuple[list[str], list[str]]:
    """Check every target first; return (files to write, owned files to delete).

    Raises:
        UnsafeWriteError: a target exists that the manifest does not list, or a listed file
            was edited since it was generated (and ``force`` is false).
    """
    owned = read_manifest(out_dir)
    problems = []
    for relative in sorted(files):
        current = _current_digest(out_dir / relative)
        if current is None or force or current == digest(files[relative]):
            continue  # nothing there, forced, or already exactly what would be written
        if relative not in owned:
            problems.append(f"{out_dir / relative}: exists and was not written by cfs-semantic")
        elif owned[relative] != current:
            problems.append(f"{out_dir / relative}: edited since it was generated")
    stale = sorted(set(owned) - set(files))
    for relative in stale:
        current = _current_digest(out_dir / relative)
        if current is not None and current != owned[relative] and not force:
            problems.append(f"{out_dir / relative}: no longer generated but edited by hand")
    if problems:
        raise UnsafeWriteError(
            "refusing to overwrite files cfs-semantic does not own:\n  "
            + "\n  ".join(problems)
            + "\nMove them away, or pass --force to overwrite them."
        )
    return sorted(files), stale


def write_files(files: dict[str, str], out_dir: Path, force: bool = False) -> list[Path]:
    """Write ``files`` (relative path -> text) under ``out_dir`` safely; return written paths."""
    to_write, stale = plan(files, out_dir, force)
    all_files = {**files, MANIFEST: manifest_text(files)}
    temps: list[tuple[Path, Path]] = []
    for relative in [*to_write, MANIFEST]:
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.cfs-tmp")
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(all_files[relative])
            handle.flush()
            os.fsync(handle.fileno())
        temps.append((tmp, target))
    for tmp, target in temps:
        tmp.replace(target)
        logger.info("wrote %s", target)
    for relative in stale:
        (out_dir / relative).unlink(missing_ok=True)
        logger.info("removed %s (no longer generated)", out_dir / relative)
    return [target for _, target in temps if target.name != MANIFEST]

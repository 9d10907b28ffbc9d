"""Lint a Cube data model for mistakes Cube's own compiler lets through.

Cube 1.7's compiler rejects unknown members, duplicate names, invalid formats and ``role`` in
access policies by itself. These checks cover what it accepts but gets wrong at query time:

- ``filters`` on a ``type: number`` measure: Cube wraps the whole ratio in ``CASE WHEN``, which
  is invalid SQL without that column in ``GROUP BY``; put filters on the leaf measures.
- A ``type: number`` measure in a rollup: a stored ratio is summed when re-aggregated.
- Result column aliases longer than PostgreSQL's 63 characters: PostgreSQL silently cuts
  them, so Cube no longer finds its columns; set a shorter ``sql_alias``.
- ``role`` in an access policy (Cube 1.7 takes ``group``/``groups``), reported here too so a
  model is checked without Node.

Typical use::

    problems = lint_model(yaml.safe_load(path.read_text()))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from cfs_semantic.errors import Problem

logger = logging.getLogger(__name__)

MAX_ALIAS_LENGTH = 63
"""PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1)."""
LONGEST_GRANULARITY = "quarter"
"""The longest granularity name Cube appends to a time dimension's alias."""


def _items(model: Mapping[str, Any], kind: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, item in enumerate(model.get(kind) or []):
        if isinstance(item, Mapping):
            yield f"{kind}[{index}]", item


def _number_measures(cube: Mapping[str, Any]) -> set[str]:
    return {
        str(m.get("name"))
        for m in cube.get("measures") or []
        if isinstance(m, Mapping) and m.get("type") == "number"
    }


def _filtered_numbers(key: str, cube: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for index, measure in enumerate(cube.get("measures") or []):
        if measure.get("type") == "number" and measure.get("filters"):
            problems.append(
                Problem(
                    f"measure {measure.get('name')!r} is type number and has filters; Cube "
                    "compiles it but wraps the ratio in CASE WHEN, which the database rejects",
                    "move the filters to the count/sum measures the ratio references",
                    key=f"{key}.measures[{index}].filters",
                )
            )
    return problems


def _ratios_in_rollups(key: str, cube: Mapping[str, Any]) -> list[Problem]:
    numbers = _number_measures(cube)
    problems = []
    for index, rollup in enumerate(cube.get("pre_aggregations") or []):
        if rollup.get("type", "rollup") != "rollup":
            continue
        for name in rollup.get("measures") or []:
            if str(name).split(".")[-1] in numbers:
                problems.append(
                    Problem(
                        f"rollup {rollup.get('name')!r} stores the ratio {name!r}; a stored "
                        "ratio is summed when Cube re-aggregates it at a coarser grain",
                        "store only additive leaf measures (sums, counts); Cube recomputes "
                        "the ratio from them",
                        key=f"{key}.pre_aggregations[{index}].measures",
                    )
                )
    return problems


def _member_aliases(item: Mapping[str, Any]) -> Iterator[str]:
    alias = item.get("sql_alias") or item.get("name")
    for kind in ("measures", "dimensions"):
        for member in item.get(kind) or []:
            suffix = f"_{LONGEST_GRANULARITY}" if member.get("type") == "time" else ""
            yield f"{alias}__{member.get('name')}{suffix}"
    for group in item.get("cubes") or []:
        includes = group.get("includes")
        if isinstance(includes, list):
            for name in includes:
                yield f"{alias}__{name if isinstance(name, str) else name.get('name')}"


def longest_alias(item: Mapping[str, Any]) -> str:
    """Return the longest result column alias Cube builds for a cube's or view's members.

    Cube names a column ``<sql_alias or name>__<member>``; a time dimension gets
    ``_<granularity>`` appended (counted here with the longest, ``quarter``). A view's
    members are the names it includes.
    """
    return max(_member_aliases(item), key=len, default="")


def _long_aliases(key: str, item: Mapping[str, Any]) -> list[Problem]:
    longest = longest_alias(item)
    if len(longest) <= MAX_ALIAS_LENGTH:
        return []
    alias = str(item.get("sql_alias") or item.get("name"))
    room = MAX_ALIAS_LENGTH - (len(longest) - len(alias))
    return [
        Problem(
            f"Cube names a result column {longest!r} ({len(longest)} characters); PostgreSQL "
            f"keeps only {MAX_ALIAS_LENGTH}, so Cube no longer finds the column",
            f"set sql_alias on {item.get('name')!r} to a name of at most {room} characters",
            key=f"{key}.sql_alias",
        )
    ]


def _roles(key: str, item: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for index, policy in enumerate(item.get("access_policy") or []):
        if isinstance(policy, Mapping) and "role" in policy:
            problems.append(
                Problem(
                    "access policy uses 'role'; Cube 1.7 rejects it",
                    "use 'group' (one name) or 'groups' (a list)",
                    key=f"{key}.access_policy[{index}].role",
                )
            )
    return problems


def lint_model(model: Mapping[str, Any]) -> list[Problem]:
    """Return every problem found in one Cube model file's content.

    Args:
        model: The parsed YAML of a model file (``{"cubes": [...], "views": [...]}``).

    Returns:
        The problems, each with the key path of the offending entry and a fix; empty when the
        model is clean.
    """
    problems: list[Problem] = []
    for key, cube in _items(model, "cubes"):
        problems += _filtered_numbers(key, cube)
        problems += _ratios_in_rollups(key, cube)
        problems += _long_aliases(key, cube)
        problems += _roles(key, cube)
    for key, view in _items(model, "views"):
        problems += _long_aliases(key, view)
        problems += _roles(key, view)
    for problem in problems:
        logger.debug("cube lint: %s", problem.render())
    return problems

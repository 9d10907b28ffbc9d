"""Render SQL trees for each target dialect.

Every statement goes through ``render``: the tree is copied, the target's transforms run on it,
and sqlglot generates the text with unsupported features raised as errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlglot import ErrorLevel, exp

logger = logging.getLogger(__name__)

Transform = Callable[[exp.Expression], exp.Expression]

SQLGLOT_DIALECT = {"tsql": "tsql", "athena": "athena"}
TRANSFORMS: dict[str, list[Transform]] = {}


def sqlglot_name(dialect: str) -> str:
    """Return sqlglot's name for a target dialect."""
    return SQLGLOT_DIALECT.get(dialect, dialect)


def render(tree: exp.Expression, dialect: str, pretty: bool = True) -> str:
    """Return ``tree`` as SQL text for ``dialect`` after the dialect's transforms."""
    node = tree.copy()
    for transform in TRANSFORMS.get(dialect, []):
        node = transform(node)
    return node.sql(
        dialect=sqlglot_name(dialect), pretty=pretty, unsupported_level=ErrorLevel.RAISE
    )

"""Ready YAML fragments of a spec's Cube model, for Cube's runtime (Jinja) mode.

A generated ``globals.py`` builds one :class:`ModelFragments` per compilation and hands its
pieces to Cube's Jinja templates: whole blocks (``measures:``, ``dimensions:``, ...) as safe
strings that the template places with one expression, and plain values (names, titles) that
Cube's JSON auto-escaping turns into quoted YAML strings. The blocks come from the same
:func:`generators.cube_model.cube_model` as the static model, so both modes mean the same.

Typical use in ``globals.py``::

    fragments = ModelFragments.from_environment(SPEC_DATA, os.environ)
    template.add_variable("cfs_cube_name", fragments.cube_name)
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfs_semantic.errors import Problem, SpecError
from cfs_semantic.loader import load_spec, spec_from_dict
from cfs_semantic.spec import Spec
from generators.cube_model import cube_model

logger = logging.getLogger(__name__)

SPEC_ENV = "CFS_SPEC_PATH"
"""Environment variable naming a spec file that replaces the spec embedded in globals.py."""
SCHEMA_ENV = "CFS_FACTS_SCHEMA"
"""Environment variable naming the warehouse schema of the facts view (unset: none)."""
TABLE_ENV = "CFS_FACTS_TABLE"
"""Environment variable naming the facts view (unset: the generated name)."""
PLAIN_KEYS = ("name", "sql_table", "title", "description")
"""Cube keys the template writes itself; every other key is a ready block."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")


class ModelFragments:
    """The cube of one spec, cut into pieces a Cube Jinja template can place.

    Attributes:
        spec: The spec the pieces come from.
    """

    def __init__(self, spec: Spec) -> None:
        """Build the cube of ``spec`` once.

        Args:
            spec: A validated spec.
        """
        self.spec = spec
        self._cube: dict[str, Any] = cube_model(spec)["cubes"][0]

    @classmethod
    def from_environment(
        cls, embedded: Mapping[str, Any], environ: Mapping[str, str]
    ) -> ModelFragments:
        """Load the spec named by ``CFS_SPEC_PATH``, else the spec embedded in globals.py.

        Args:
            embedded: The spec as generated (a plain mapping).
            environ: The process environment (``os.environ``).

        Returns:
            The fragments of the spec.

        Raises:
            SpecError: The spec is invalid (every problem, with file, key and fix).
        """
        path = environ.get(SPEC_ENV)
        if path:
            logger.info("loading the spec from %s (%s)", path, SPEC_ENV)
            return cls(load_spec(Path(path)))
        return cls(spec_from_dict(dict(embedded), file="globals.py"))

    @property
    def cube_name(self) -> str:
        """The cube's name."""
        return str(self._cube["name"])

    @property
    def facts_table(self) -> str:
        """The generated name of the governed facts view."""
        return str(self._cube["sql_table"])

    @property
    def title(self) -> str:
        """The cube's title (free text: leave it to JSON auto-escaping)."""
        return str(self._cube["title"])

    @property
    def description(self) -> str:
        """The cube's description (free text: leave it to JSON auto-escaping)."""
        return str(self._cube["description"])

    def block_keys(self) -> list[str]:
        """The cube's keys that :meth:`block` renders, in model order."""
        return [key for key in self._cube if key not in PLAIN_KEYS]

    def block(self, key: str, indent: int = 4) -> str:
        """Return ``key: <value>`` of the cube as YAML, every line indented by ``indent``.

        Args:
            key: A cube key such as ``measures``, ``dimensions`` or ``pre_aggregations``.
            indent: Spaces before each line (the cube's keys sit at 4 in the templates).

        Returns:
            The YAML block without a trailing newline, or "" when the cube has no such key.
        """
        # emit imports cube_runtime, which uses this module: import emit only when needed.
        from generators.emit import dump_yaml

        if key not in self._cube:
            return ""
        text = dump_yaml({key: self._cube[key]}).rstrip("\n")
        return textwrap.indent(text, " " * indent)

    def qualified_table(self, table: str, schema: str | None = None) -> str:
        """Return ``schema.table`` (or ``table``), both checked to be plain identifiers.

        Raises:
            SpecError: A name is not a plain identifier (letters, digits, ``_``, ``$``), so it
                could change the SQL Cube generates.
        """
        parts = [part for part in (schema, table) if part]
        for part in parts:
            if not _IDENTIFIER.match(part):
                raise SpecError(
                    [
                        Problem(
                            f"{part!r} is not a plain SQL identifier",
                            f"set {SCHEMA_ENV} / {TABLE_ENV} to letters, digits, _ or $ only",
                            key="sql_table",
                        )
                    ]
                )
        return ".".join(parts)

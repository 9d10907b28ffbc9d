"""Emit Cube's runtime (Jinja) mode of a spec's model, and ``cube.py`` for tenant specs.

The files go under ``semantic_models/<spec>/``:

- ``runtime/model/globals.py``: Cube's Python template context (``from cube import
  TemplateContext``); it imports cfs-semantic, loads the spec once per compilation and returns
  ready YAML blocks as ``SafeString`` (see :mod:`generators.cube_fragments`);
- ``runtime/model/cubes/<spec>.yml.jinja``: the cube as a Jinja template Cube renders at
  compile time, so the facts view's schema and name can come from the environment;
- ``runtime/model/views/<spec>.yml``: the analyst view, static (it does not vary);
- ``runtime/requirements.txt``: what Cube must pip-install for ``globals.py``;
- ``cube.py`` (only with ``cube.tenant_column``): ``query_rewrite`` that confines every query
  to the caller's tenant.

The generator's own templates (``generators/templates/*.j2``) use ``[[ ]]`` and ``[% %]`` so
that Cube's ``{{ }}`` pass through unchanged.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from typing import Any

import jinja2

from cfs_semantic.spec import Spec
from generators.cube_model import (
    ADMIN_GROUP,
    ANALYST_GROUPS,
    TENANT_CLAIM,
    cube_model,
    tenant_column,
)

logger = logging.getLogger(__name__)

RUNTIME_DIR = "runtime"
DISTRIBUTION = "cfs-semantic"
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("generators", "templates"),
    variable_start_string="[[",
    variable_end_string="]]",
    block_start_string="[%",
    block_end_string="%]",
    comment_start_string="[#",
    comment_end_string="#]",
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,
)


def _render(name: str, **values: Any) -> str:
    return _ENV.get_template(name).render(**values)


def embedded_spec(spec: Spec) -> dict[str, Any]:
    """Return the spec as plain data for ``globals.py``: no local file tables, no defaults."""
    return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"tables"})


def requirements() -> list[str]:
    """Return cfs-semantic and its pinned runtime dependencies (no extras), one per line."""
    lines = [f"{DISTRIBUTION}=={importlib.metadata.version(DISTRIBUTION)}"]
    for requirement in importlib.metadata.requires(DISTRIBUTION) or []:
        if "extra ==" not in requirement:
            lines.append(requirement.strip())
    return lines


def python_literal(value: Any, indent: int = 0) -> str:
    """Return plain data as a Python literal laid out the way ruff formats it.

    Non-empty collections are expanded one item per line with a trailing comma (which ruff
    keeps); strings use JSON escapes, which Python reads the same way.
    """
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(str(key))}: {python_literal(item, indent + 4)},"
            for key, item in value.items()
        ]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple) and value:
        items = [f"{inner}{python_literal(v, indent + 4)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str | int | float):
        return json.dumps(value)
    if isinstance(value, dict | list | tuple):
        return "{}" if isinstance(value, dict) else "[]"
    raise TypeError(f"cannot write {type(value).__name__} as a Python literal")


def globals_py(spec: Spec, header: str) -> str:
    """Return ``globals.py`` for ``spec``."""
    literal = python_literal(embedded_spec(spec))
    return _render("globals.py.j2", header=header, spec_name=spec.name, spec_literal=literal)


def cube_template(spec: Spec, header: str) -> str:
    """Return the Cube Jinja template of the cube (keys in the static model's order)."""
    keys = list(cube_model(spec)["cubes"][0])
    return _render("cube.yml.jinja.j2", header=header, keys=keys)


def cube_py(spec: Spec, header: str) -> str | None:
    """Return ``cube.py`` enforcing the tenant filter, or None without a tenant column."""
    column = tenant_column(spec)
    if column is None:
        return None
    model = cube_model(spec)
    members = {item["name"]: column for item in (*model["cubes"], *model["views"])}
    return _render(
        "cube.py.j2",
        header=header,
        spec_name=spec.name,
        claim=TENANT_CLAIM,
        admin=ADMIN_GROUP,
        analysts=", ".join(ANALYST_GROUPS),
        tenant_members=python_literal(dict(sorted(members.items()))),
    )


def runtime_artifacts(spec: Spec, spec_path: str) -> dict[str, str]:
    """Return relative path -> content of the runtime-mode files and ``cube.py``.

    Args:
        spec: The validated spec.
        spec_path: The spec's path as shown in generated headers.

    Returns:
        Files under ``runtime/`` and, when the spec has ``cube.tenant_column``, ``cube.py``.
    """
    # emit imports this module for artifacts(); import it here to keep that one-way.
    from generators.emit import dump_yaml, header

    files = {
        f"{RUNTIME_DIR}/model/globals.py": globals_py(spec, header(spec_path)),
        f"{RUNTIME_DIR}/model/cubes/{spec.name}.yml.jinja": cube_template(spec, header(spec_path)),
        f"{RUNTIME_DIR}/model/views/{spec.name}.yml": header(spec_path)
        + dump_yaml({"views": cube_model(spec)["views"]}),
        f"{RUNTIME_DIR}/requirements.txt": _render(
            "requirements.txt.j2",
            spec_path=spec_path,
            spec_name=spec.name,
            requirements=requirements(),
        ),
    }
    config = cube_py(spec, header(spec_path))
    if config is not None:
        files["cube.py"] = config
    logger.debug("runtime artifacts of %s: %s", spec.name, ", ".join(sorted(files)))
    return files

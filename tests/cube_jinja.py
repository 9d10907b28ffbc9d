"""Render Cube's runtime-mode templates outside Cube, configured the way Cube renders them.

Cube loads ``model/globals.py`` with its own ``cube`` module and renders ``*.jinja`` model files
with MiniJinja and JSON auto-escaping; a Python value that is a ``SafeString`` (a ``str`` with
``is_safe``) is placed as it is, every other string is written as a JSON string. Here the
``cube-utils`` package (import name ``cube_utils``) stands in for ``cube`` and the ``minijinja``
Python package for Cube's native engine.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import cube_utils
import minijinja
import pytest


def import_with_cube_stand_in(path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import a generated ``globals.py`` or ``cube.py`` with cube-utils as the ``cube`` module."""
    monkeypatch.setitem(sys.modules, "cube", cube_utils)
    name = f"cfs_generated_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def _jinja_value(value: Any) -> Any:
    """Mark ``SafeString`` results safe for MiniJinja, as Cube's Python bridge does."""
    if isinstance(value, str) and getattr(value, "is_safe", False):
        return minijinja.safe(str(value))
    return value


def _bridged(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return _jinja_value(func(*args, **kwargs))

    return call


def cube_like_environment(context: cube_utils.TemplateContext) -> minijinja.Environment:
    """A MiniJinja environment with JSON auto-escaping and the context's names registered."""
    env = minijinja.Environment(
        auto_escape_callback=lambda _name: "json", undefined_behavior="strict"
    )
    for name, func in context.functions.items():
        env.add_global(name, _bridged(func))
    for name, value in context.variables.items():
        env.add_global(name, _jinja_value(value))
    for name, func in context.filters.items():
        env.add_filter(name, _bridged(func))
    return env


def render_model(model_dir: Path, monkeypatch: pytest.MonkeyPatch, out_dir: Path) -> Path:
    """Render a runtime model folder into plain YAML under ``out_dir``; return ``out_dir``.

    ``*.yml.jinja`` files are rendered with the folder's ``globals.py``; ``*.yml`` files are
    copied; ``globals.py`` itself is left out (it is not a model file).
    """
    module = import_with_cube_stand_in(model_dir / "globals.py", monkeypatch)
    env = cube_like_environment(module.template)
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if path.name.endswith(".yml.jinja"):
            text = env.render_str(path.read_text(encoding="utf-8"), str(relative))
            target = out_dir / relative.with_suffix("")
        elif path.suffix == ".yml":
            text, target = path.read_text(encoding="utf-8"), out_dir / relative
        else:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return out_dir

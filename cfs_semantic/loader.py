"""Load a spec from YAML, reporting every problem with file, line, key path and a fix."""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cfs_semantic.errors import Problem, SpecError
from cfs_semantic.spec import LOCATED_PREFIX, Spec

logger = logging.getLogger(__name__)

KeyPath = tuple[str | int, ...]


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean {close[0]!r}?" if close else ""


def _line_index(node: yaml.Node, path: KeyPath, out: dict[KeyPath, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise _DuplicateKey((*path, key), key_node.start_mark.line + 1)
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_index(item, (*path, index), out)


def _line_for(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _dotted(path: Sequence[str | int]) -> str:
    """Render a key path like ``activation.users.attributes['odd key'][0]``."""
    text = ""
    for part in path:
        if isinstance(part, str) and part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def _read_yaml(path: Path) -> tuple[Any, dict[KeyPath, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise SpecError([Problem("spec file not found", "check the path", file=str(path))]) from err
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(
            [Problem(f"cannot read the spec: {err}", "save it as UTF-8 text", file=str(path))]
        ) from err
    return parse_yaml(text, str(path))


def parse_yaml(text: str, file: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML text into data plus a map from key path to line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(
            [Problem(f"invalid YAML: {problem}", "fix the YAML syntax", file=file, line=line)]
        ) from err
    lines: dict[KeyPath, int] = {}
    if node is not None:
        try:
            _line_index(node, (), lines)
        except _DuplicateKey as dup:
            raise SpecError(
                [
                    Problem(
                        f"the key {dup.path[-1]!r} appears twice",
                        "keep one of them",
                        file=file,
                        line=dup.line,
                        key=_dotted(dup.path),
                    )
                ]
            ) from None
    return data, lines


class _DuplicateKey(Exception):
    def __init__(self, path: KeyPath, line: int) -> None:
        super().__init__(path)
        self.path = path
        self.line = line


def _pydantic_problems(err: ValidationError, lines: dict[KeyPath, int], file: str) -> list[Problem]:
    problems = []
    for item in err.errors():
        path: KeyPath = tuple(p for p in item["loc"] if not str(p).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        fix = ""
        if message.startswith(LOCATED_PREFIX):
            parts, end = json.JSONDecoder().raw_decode(message, len(LOCATED_PREFIX))
            path = (*path, *parts)
            message = message[end:].lstrip()
        if item["type"] == "extra_forbidden":
            parent = path[:-1]
            known = _known_keys(parent)
            hint = suggest(str(path[-1]), known)
            message = f"unknown key {path[-1]!r}" + (f"; {hint}" if hint else "")
            fix = f"use one of: {', '.join(known)}" if known else "remove it"
        elif item["type"] == "missing":
            fix = f"add {_dotted(path)}"
        elif item["type"] in ("model_type", "dict_type", "model_attributes_type"):
            message = f"expected a mapping of keys, got {_yaml_kind(item.get('input'))}"
            fix = "write it as indented 'key: value' lines"
        elif isinstance(item.get("input"), bool):
            message = (
                f"got the boolean {str(item['input']).lower()}: {message[0].lower()}"
                + (message[1:])
            )
            fix = "quote the value: YAML reads yes/no/on/off/true/false without quotes as booleans"
        elif "; " in message:
            message, fix = message.split("; ", 1)
            fix = fix[0].upper() + fix[1:]
        problems.append(
            Problem(message, fix, file=file, line=_line_for(lines, path), key=_dotted(path))
        )
    return problems


def _yaml_kind(value: Any) -> str:
    kinds = {list: "a list", str: "text", bool: "a boolean", int: "a number", float: "a number"}
    return "nothing" if value is None else kinds.get(type(value), type(value).__name__)


def _known_keys(parent: KeyPath) -> list[str]:
    model: Any = Spec
    for part in parent:
        if isinstance(part, int) or model is None:
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_of(annotation: Any) -> Any:
    from pydantic import BaseModel

    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        inner = getattr(candidate, "__args__", None)
        if inner:
            found = _model_of(candidate)
            if found is not None:
                return found
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def validate_spec(data: Any, lines: dict[KeyPath, int], file: str) -> Spec:
    """Validate parsed YAML into a Spec, collecting every problem before failing."""
    if not isinstance(data, dict):
        raise SpecError(
            [Problem("the spec must be a YAML mapping", "start with 'name:'", file=file, line=1)]
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_pydantic_problems(err, lines, file)) from None
    problems = _semantic_problems(spec, lines, file)
    if problems:
        raise SpecError(problems)
    return spec


def _semantic_problems(spec: Spec, lines: dict[KeyPath, int], file: str) -> list[Problem]:
    problems = []
    known = list(spec.user_attributes()) + list(spec.responses.attributes)
    for index, segment in enumerate(spec.segments):
        if segment not in known:
            hint = suggest(segment, known)
            problems.append(
                Problem(
                    f"unknown segment {segment!r}" + (f"; {hint}" if hint else ""),
                    f"declare it under activation.attributes or responses.attributes "
                    f"(known: {', '.join(known) or 'none'})",
                    file=file,
                    line=_line_for(lines, ("segments", index)),
                    key=f"segments[{index}]",
                )
            )
    if len(set(spec.segments)) != len(spec.segments):
        problems.append(
            Problem(
                "a segment is listed twice",
                "list each once",
                file=file,
                line=_line_for(lines, ("segments",)),
                key="segments",
            )
        )
    return problems


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec file.

    Args:
        path: the YAML file.

    Returns:
        The validated spec with presets resolved.

    Raises:
        SpecError: with every problem found, each naming file, line, key and a fix.
    """
    path = Path(path)
    data, lines = _read_yaml(path)
    spec = validate_spec(data, lines, str(path))
    logger.debug("loaded spec %s from %s", spec.name, path)
    return spec


def spec_from_dict(data: dict[str, Any], file: str = "<dict>") -> Spec:
    """Validate a spec given as a Python mapping (tests, generated cases)."""
    return validate_spec(data, {}, file)

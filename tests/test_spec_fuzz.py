"""Any input to the spec loader yields a valid spec or the project's own SpecError."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfs_semantic.errors import SpecError
from cfs_semantic.loader import parse_yaml, validate_spec
from cfs_semantic.spec import Spec
from tests.kpi_cases import EXAMPLES

BASE: dict[str, Any] = yaml.safe_load(EXAMPLES["ravenstack"].read_text())
FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "table",
            "first_event",
            "0-10",
            "label",
            "UTC",
            "response_stage",
            "all",
            "x\x00y",
            "select 1",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


PATHS = _paths(BASE)


def _check(data: Any) -> None:
    try:
        spec = validate_spec(data, {}, "fuzz.yaml")
    except SpecError as err:
        assert err.problems, "a SpecError always carries at least one problem"
        for problem in err.problems:
            assert problem.message and problem.file == "fuzz.yaml"
            assert problem.key or problem.line or "mapping" in problem.message
        return
    assert isinstance(spec, Spec)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(PATHS), st.one_of(values, st.just("__delete__"))),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_specs_validate_or_fail_with_located_spec_errors(
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    """Replacing or deleting any keys of a real spec never raises anything but SpecError."""
    data = copy.deepcopy(BASE)
    for path, value in edits:
        node = data
        try:
            for part in path[:-1]:
                node = node[part]
            if value == "__delete__":
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _check(data)


@FUZZ
@given(values)
def test_arbitrary_documents_fail_with_a_spec_error(data: Any) -> None:
    """A document of any shape is rejected with SpecError (or, by luck, is a spec)."""
    _check(data)


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_fails_with_a_spec_error(text: str) -> None:
    """Broken YAML is a SpecError with a line, never a yaml exception."""
    try:
        data, _ = parse_yaml(text, "fuzz.yaml")
    except SpecError as err:
        assert err.problems[0].file == "fuzz.yaml"
        return
    _check(data)

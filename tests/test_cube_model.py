"""The generated Cube models compile with Cube's own compiler, and the lint covers Cube's gaps.

Broken variants of a generated model are compiled together (each in its own cube) so that one
harness call shows that Cube reports every one of them with its own message.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cfs_semantic.cube_compiler import compile_model, generate_sql, run_harness
from cfs_semantic.cube_lint import MAX_ALIAS_LENGTH, lint_model, longest_alias
from cfs_semantic.loader import load_spec, spec_from_dict
from generators.cube_model import cube_model
from generators.emit import dump_yaml
from tests.kpi_cases import EXAMPLES, REPO

MODEL_DIRS = sorted((REPO / "semantic_models").glob("*/model"))
MODEL_FILES = sorted(path for folder in MODEL_DIRS for path in folder.rglob("*.yml"))
Mutation = Callable[[dict[str, Any], dict[str, Any]], None]


def _add_unknown_member(cube: dict[str, Any], view: dict[str, Any]) -> None:
    cube["measures"].append({"name": "bad", "type": "number", "sql": "{score_sum} / {no_such}"})


def _duplicate_measure(cube: dict[str, Any], view: dict[str, Any]) -> None:
    cube["measures"].append(dict(cube["measures"][0]))


def _invalid_format(cube: dict[str, Any], view: dict[str, Any]) -> None:
    [share] = [m for m in cube["measures"] if m["name"] == "positive_share"]
    share["format"] = "percentage"


def _policy_with_role(cube: dict[str, Any], view: dict[str, Any]) -> None:
    view["access_policy"] = [{"role": "analyst", "member_level": {"includes": "*"}}]


BROKEN: dict[str, tuple[Mutation, str]] = {
    "unknown_member": (_add_unknown_member, "no_such is not defined"),
    "duplicate_name": (
        _duplicate_measure,
        "Found duplicate measure 'activated_users' in cube 'ravenstack_feedback_duplicate_name'",
    ),
    "invalid_format": (
        _invalid_format,
        'ravenstack_feedback_invalid_format cube: "measures.positive_share.format" does not '
        "match any of the allowed types",
    ),
    "policy_with_role": (
        _policy_with_role,
        'ravenstack_customer_feedback_policy_with_role cube: "accessPolicy[0].role" is not '
        'allowed. "accessPolicy[0]" must contain at least one of [group, groups]',
    ),
}


def ravenstack_variant(tag: str, mutate: Mutation | None = None) -> dict[str, Any]:
    """The generated RavenStack model, renamed by ``tag`` and changed by ``mutate``."""
    model = copy.deepcopy(cube_model(load_spec(EXAMPLES["ravenstack"])))
    [cube], [view] = model["cubes"], model["views"]
    cube["name"] = f"{cube['name']}_{tag}"
    view["name"] = f"{view['name']}_{tag}"
    view["cubes"][0]["join_path"] = cube["name"]
    if mutate is not None:
        mutate(cube, view)
    return model


@pytest.fixture(scope="module")
def broken_errors(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Cube's compile errors for a folder holding every broken variant."""
    folder = tmp_path_factory.mktemp("broken")
    for tag, (mutate, _) in BROKEN.items():
        (folder / f"{tag}.yml").write_text(dump_yaml(ravenstack_variant(tag, mutate)))
    return run_harness(folder, compile_only=True).errors


def test_every_generated_model_compiles_with_cube(tmp_path: Path) -> None:
    """Cube compiles all of semantic_models/*/model (copied into one project) without errors."""
    assert [d.parent.name for d in MODEL_DIRS] == sorted(EXAMPLES)
    for folder in MODEL_DIRS:
        shutil.copytree(folder, tmp_path / folder.parent.name)
    compilation = run_harness(tmp_path, compile_only=True)
    assert compilation.errors == []
    assert compilation.compile_error is None


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_generated_model_file_passes_the_lint(path: Path) -> None:
    """The project's lint finds nothing in the committed model files."""
    assert lint_model(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_model_is_reported_with_cubes_message(kind: str, broken_errors: list[str]) -> None:
    """Each broken variant is caught by Cube's compiler, with Cube's own message."""
    _, message = BROKEN[kind]
    assert len(broken_errors) == len(BROKEN), broken_errors
    assert any(message in error for error in broken_errors), broken_errors


def _filtered_ratio(cube: dict[str, Any], view: dict[str, Any]) -> None:
    [score] = [m for m in cube["measures"] if m["name"] == "score"]
    score["filters"] = [{"sql": "{CUBE}.priority = 'high'"}]


def test_filters_on_a_number_measure_pass_cube_but_not_the_lint(tmp_path: Path) -> None:
    """Cube compiles a filtered ratio and wraps it in CASE WHEN; the project's lint rejects it."""
    model = ravenstack_variant("filtered", _filtered_ratio)
    (tmp_path / "filtered.yml").write_text(dump_yaml(model))
    view = model["views"][0]["name"]
    query = {"measures": [f"{view}.score"], "timezone": "UTC", "order": []}

    [result] = generate_sql(tmp_path, [{"dialect": "duckdb", "query": query}])
    assert result.error is None and result.sql is not None
    assert "CASE WHEN (\"ravenstack_feedback_filtered\".priority = 'high') THEN 1.0" in result.sql

    [problem] = lint_model(model)
    assert problem.key == "cubes[0].measures[12].filters"
    assert "type number and has filters" in problem.message
    assert problem.fix.startswith("move the filters to the count/sum measures")


def test_lint_rejects_a_ratio_stored_in_a_rollup() -> None:
    """A number measure in a rollup would be summed when Cube re-aggregates it."""
    model = ravenstack_variant("rollup")
    model["cubes"][0]["pre_aggregations"][0]["measures"].append("score")
    [problem] = lint_model(model)
    assert problem.key == "cubes[0].pre_aggregations[0].measures"
    assert "stores the ratio 'score'" in problem.message


def test_lint_rejects_role_in_an_access_policy() -> None:
    """``role`` is reported with the fix, without running Node."""
    [problem] = lint_model(ravenstack_variant("role", _policy_with_role))
    assert problem.key == "views[0].access_policy[0].role"
    assert problem.fix == "use 'group' (one name) or 'groups' (a list)"


LONG_NAME = "enterprise_post_activation_feedback"


def _long_spec_model() -> dict[str, Any]:
    spec = load_spec(EXAMPLES["ravenstack"])
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["name"] = LONG_NAME
    return cube_model(spec_from_dict(data))


def test_long_names_get_a_short_sql_alias_that_fits_postgres() -> None:
    """A long spec name gets a stable sql_alias so no Cube column alias exceeds 63 characters."""
    model = _long_spec_model()
    for item in (*model["cubes"], *model["views"]):
        assert len(longest_alias({**item, "sql_alias": None})) > MAX_ALIAS_LENGTH
        assert item["sql_alias"].startswith(item["name"][:20])
        assert len(longest_alias(item)) <= MAX_ALIAS_LENGTH
    assert lint_model(model) == []
    assert _long_spec_model() == model


def test_lint_reports_aliases_postgres_would_cut() -> None:
    """Without the sql_alias the lint names the longest alias and the room left for one."""
    model = _long_spec_model()
    del model["views"][0]["sql_alias"]
    [problem] = lint_model(model)
    assert problem.key == "views[0].sql_alias"
    assert f"{LONG_NAME}_customer_feedback__unmapped_label_responses" in problem.message
    assert problem.fix.endswith("to a name of at most 37 characters")


def test_a_long_named_model_with_its_sql_alias_compiles_with_cube(tmp_path: Path) -> None:
    """The long-named model with its sql_alias compiles with Cube."""
    (tmp_path / "long.yml").write_text(dump_yaml(_long_spec_model()))
    assert compile_model(tmp_path) == []

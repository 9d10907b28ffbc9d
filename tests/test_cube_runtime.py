"""Cube's runtime mode: globals.py + Jinja templates render to the static model and compile.

Rendering uses MiniJinja with JSON auto-escaping and cube-utils as the ``cube`` module (see
tests/cube_jinja.py); Cube's compiler then compiles the rendered YAML. The harness cannot render
Jinja itself (that needs Cube's native module), so the rendered files are what it compiles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import minijinja
import pytest
import yaml

from cfs_semantic.cube_compiler import CubeCompilation, run_harness
from cfs_semantic.errors import SpecError
from cfs_semantic.loader import load_spec, spec_from_dict
from generators.cube_fragments import SCHEMA_ENV, SPEC_ENV, TABLE_ENV
from generators.cube_runtime import RUNTIME_DIR, embedded_spec, runtime_artifacts
from tests.cube_jinja import cube_like_environment, import_with_cube_stand_in, render_model
from tests.kpi_cases import EXAMPLES, REPO

SPEC_NAMES = sorted(EXAMPLES)
HOSTILE_TITLE = "CFS \"Q1\" 'beta'\n    sql_table: other_tenant.facts # {{ 1 }}"


def _static(spec_name: str, kind: str) -> Any:
    path = REPO / "semantic_models" / spec_name / "model" / kind / f"{spec_name}.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write(files: dict[str, str], directory: Path) -> Path:
    for relative, content in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(content, encoding="utf-8")
    return directory


def _clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SPEC_ENV, SCHEMA_ENV, TABLE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each bundled spec's committed runtime model, rendered with no environment overrides."""
    out = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        _clear_env(monkeypatch)
        for name in SPEC_NAMES:
            source = REPO / "semantic_models" / name / RUNTIME_DIR / "model"
            out[name] = render_model(source, monkeypatch, tmp_path_factory.mktemp(name))
    return out


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
def test_rendered_runtime_model_equals_the_static_model(
    spec_name: str, rendered: dict[str, Path]
) -> None:
    """Rendering the committed Jinja model gives exactly the committed static YAML."""
    for kind in ("cubes", "views"):
        text = (rendered[spec_name] / kind / f"{spec_name}.yml").read_text(encoding="utf-8")
        assert yaml.safe_load(text) == _static(spec_name, kind)


@pytest.fixture(scope="module")
def compiled(
    rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> CubeCompilation:
    """Cube's compile of every rendered model, plus a query on one rendered elsewhere."""
    project = tmp_path_factory.mktemp("project")
    for name, folder in rendered.items():
        if name != "telecom_nps_score":
            for path in folder.rglob("*.yml"):
                target = project / name / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _clear_env(monkeypatch)
        monkeypatch.setenv(SCHEMA_ENV, "tenant_a")
        monkeypatch.setenv(TABLE_ENV, "nps_facts_v2")
        source = REPO / "semantic_models" / "telecom_nps_score" / RUNTIME_DIR / "model"
        render_model(source, monkeypatch, project / "telecom_nps_score")
    query = {
        "measures": ["telecom_nps_score_customer_feedback.score"],
        "timezone": "UTC",
        "order": [],
    }
    return run_harness(project, [{"dialect": "duckdb", "query": query}])


def test_rendered_runtime_models_compile_with_cube(compiled: CubeCompilation) -> None:
    """Cube's compiler accepts every rendered model (and one rendered for another schema)."""
    assert compiled.errors == []
    assert compiled.compile_error is None


def test_environment_moves_the_facts_view_in_cubes_sql(compiled: CubeCompilation) -> None:
    """CFS_FACTS_SCHEMA and CFS_FACTS_TABLE reach the FROM clause of Cube's SQL."""
    [result] = compiled.results
    assert result.error is None and result.sql is not None
    assert re.search(r"FROM\s+tenant_a\.nps_facts_v2 AS ", result.sql), result.sql


def _hostile_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    spec = load_spec(EXAMPLES["telecom_nps"])
    hostile = spec_from_dict({**embedded_spec(spec), "title": HOSTILE_TITLE})
    folder = _write(runtime_artifacts(hostile, "hostile.yaml"), tmp_path)
    template = (folder / RUNTIME_DIR / "model/cubes/telecom_nps.yml.jinja").read_text()
    module = import_with_cube_stand_in(folder / RUNTIME_DIR / "model/globals.py", monkeypatch)
    return cube_like_environment(module.template), template


def test_a_hostile_title_is_json_escaped_when_not_marked_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quotes, a newline, a key and braces in the title stay one YAML string; nothing injected."""
    _clear_env(monkeypatch)
    env, template = _hostile_runtime(tmp_path, monkeypatch)
    text = env.render_str(template, "telecom_nps.yml.jinja")
    escaped = r"""    title: "CFS \"Q1\" 'beta'\n    sql_table: other_tenant.facts # {{ 1 }}"""
    assert escaped + '"\n' in text
    [cube] = yaml.safe_load(text)["cubes"]
    assert (cube["title"], cube["sql_table"]) == (HOSTILE_TITLE, "telecom_nps_feedback_facts")

    # The same value marked safe rewrites the cube's table: free text is never a SafeString.
    unsafe = env.render_str(template.replace("{{ cfs_title }}", "{{ cfs_title | safe }}"))
    assert yaml.safe_load(unsafe)["cubes"][0]["sql_table"] == "other_tenant.facts"


def test_a_hostile_schema_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema name that is not a plain identifier stops the rendering with the reason."""
    _clear_env(monkeypatch)
    monkeypatch.setenv(SCHEMA_ENV, 'x"; DROP TABLE t; --')
    source = REPO / "semantic_models" / "telecom_nps" / RUNTIME_DIR / "model"
    module = import_with_cube_stand_in(source / "globals.py", monkeypatch)
    env = cube_like_environment(module.template)
    template = (source / "cubes" / "telecom_nps.yml.jinja").read_text()
    with pytest.raises((minijinja.TemplateError, SpecError), match="not a plain SQL identifier"):
        env.render_str(template)


def test_spec_path_replaces_the_embedded_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CFS_SPEC_PATH points globals.py at another spec file, read once at import."""
    _clear_env(monkeypatch)
    data = {**embedded_spec(load_spec(EXAMPLES["telecom_nps"])), "cube": {"cube_name": "nps"}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv(SPEC_ENV, str(tmp_path / "spec.yaml"))
    source = REPO / "semantic_models" / "telecom_nps" / RUNTIME_DIR / "model"
    module = import_with_cube_stand_in(source / "globals.py", monkeypatch)
    assert module.template.variables["cfs_cube_name"] == "nps"


@pytest.mark.parametrize("spec_name", SPEC_NAMES)
def test_embedded_spec_is_the_spec_without_its_local_files(spec_name: str) -> None:
    """The spec in globals.py validates back to the example spec (minus local file tables)."""
    spec = load_spec(EXAMPLES[spec_name])
    assert spec_from_dict(embedded_spec(spec)) == spec.model_copy(update={"tables": {}})


def test_requirements_pin_cfs_semantic_and_its_dependencies() -> None:
    """requirements.txt pins cfs-semantic first, then its own pins; never the `cube` package."""
    path = REPO / "semantic_models" / "ravenstack" / RUNTIME_DIR / "requirements.txt"
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    assert lines[0] == "cfs-semantic==0.1.0"
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][^ ]*", line) for line in lines), lines
    names = {line.split("==")[0].lower() for line in lines}
    assert {"pydantic", "pyyaml", "sqlglot"} <= names
    assert not names & {"cube", "cube-utils", "minijinja"}

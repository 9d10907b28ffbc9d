"""Tenant isolation: the generated cube.py query_rewrite and the view's access policies.

The spec here has ``cube.tenant_column``; its generated ``cube.py`` is imported with cube-utils
as the ``cube`` module, its ``query_rewrite`` is called like Cube calls it, and the rewritten
queries go through Cube's compiler and run on DuckDB over the project's facts view.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from cfs_semantic.cube_compiler import CubeCompilation, run_harness
from cfs_semantic.cube_lint import lint_model
from cfs_semantic.engines import Engine
from cfs_semantic.errors import SpecError
from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import SourceFrames
from cfs_semantic.spec import Spec
from generators.cube_model import cube_model
from generators.cube_runtime import runtime_artifacts
from generators.emit import dump_yaml
from tests.cube_jinja import import_with_cube_stand_in
from tests.cube_matrix import Subject, bind_for, drop_subject, load_subject
from tests.kpi_cases import REPO

ACTIVATIONS = [
    ("u1", "2024-01-01 00:00:00", "acme"),
    ("u2", "2024-01-02 00:00:00", "acme"),
    ("u3", "2024-01-01 00:00:00", "globex"),
    ("u4", "2024-01-03 00:00:00", "globex"),
]
RESPONSES = [
    ("r1", "u1", "2024-01-05 10:00:00", 5.0),
    ("r2", "u2", "2024-01-06 10:00:00", 3.0),
    ("r3", "u3", "2024-01-05 10:00:00", 1.0),
    ("r4", "u4", "2024-01-07 10:00:00", 2.0),
]
VIEW = "tenants_customer_feedback"
CUBE = "tenants_feedback"
ACME = {"securityContext": {"tenant_id": "acme"}}


def tenant_spec(tenant_column: str | None = "org_id") -> Spec:
    """A small spec whose users carry the tenant (``org_id``) used as ``cube.tenant_column``."""
    return spec_from_dict(
        {
            "name": "tenants",
            "activation": {
                "mode": "table",
                "source": "activations",
                "user_id": "user_id",
                "activated_at": "activated_at",
                "attributes": {"org_id": "org_id"},
            },
            "responses": {
                "source": "responses",
                "response_id": "response_id",
                "user_id": "user_id",
                "responded_at": "responded_at",
                "score": "score",
            },
            "scale": {"preset": "1-5"},
            "sentiment": {"source": "score"},
            "segments": ["org_id"],
            "cube": {"tenant_column": tenant_column},
        },
        file="tests/test_cube_tenant.py",
    )


def tenant_subject() -> Subject:
    """The tenant spec with two tenants' rows."""
    activations = pd.DataFrame(ACTIVATIONS, columns=["user_id", "activated_at", "org_id"])
    responses = pd.DataFrame(RESPONSES, columns=["response_id", "user_id", "responded_at", "score"])
    for frame, column in ((activations, "activated_at"), (responses, "responded_at")):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    text = {"user_id": "string", "org_id": "string", "response_id": "string"}
    types = {**text, "activated_at": "timestamp", "responded_at": "timestamp", "score": "float"}
    tables = {
        name: (frame, {c: types[c] for c in frame})
        for name, frame in (("activations", activations), ("responses", responses))
    }
    return Subject("tenants", tenant_spec(), tables, SourceFrames(responses, activations))


@pytest.fixture(scope="module")
def cube_py(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated cube.py of the tenant spec, written to a temporary folder."""
    files = runtime_artifacts(tenant_spec(), "tests/test_cube_tenant.py")
    path = tmp_path_factory.mktemp("tenant") / "cube.py"
    path.write_text(files["cube.py"], encoding="utf-8")
    return path


@pytest.fixture
def config(cube_py: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """cube.py imported with cube-utils standing in for Cube's ``cube`` module."""
    return import_with_cube_stand_in(cube_py, monkeypatch)


def test_tenant_spec_gets_access_policies_for_admins_and_analysts() -> None:
    """Admins see every member, analysts no row ids; both are filtered to their tenant."""
    model = cube_model(tenant_spec())
    [admin, analysts] = model["views"][0]["access_policy"]
    row_level = {
        "filters": [
            {
                "member": "org_id",
                "operator": "equals",
                "values": ["{ security_context.tenant_id }"],
            }
        ]
    }
    assert admin == {"group": "admin", "member_level": {"includes": "*"}, "row_level": row_level}
    assert analysts["groups"] == ["analyst"]
    assert analysts["row_level"] == row_level
    included = analysts["member_level"]["includes"]
    assert "score" in included and "org_id" in included
    assert not {"user_id", "response_id"} & set(included)
    assert lint_model(model) == []


def test_a_tenant_column_that_is_no_attribute_is_refused_with_a_fix() -> None:
    """Generation stops when cube.tenant_column names no column of the facts view."""
    with pytest.raises(SpecError) as raised:
        cube_model(tenant_spec("tenant_key"))
    [problem] = raised.value.problems
    assert problem.key == "cube.tenant_column"
    assert "'tenant_key' is not an attribute of the facts view" in problem.message
    assert problem.fix.endswith("(known: org_id)")


def test_no_cube_py_without_a_tenant_column() -> None:
    """Specs without a tenant column get no cube.py (and the bundled ones have none)."""
    assert "cube.py" not in runtime_artifacts(tenant_spec(None), "x.yaml")
    assert sorted(REPO.glob("semantic_models/*/cube.py")) == []


def test_query_rewrite_adds_the_callers_tenant(config: ModuleType) -> None:
    """Each governed cube or view the query reads gets an equals filter on the caller's tenant."""
    query = {"measures": [f"{VIEW}.score"], "dimensions": [f"{CUBE}.org_id"], "filters": []}
    before = copy.deepcopy(query)
    rewritten = config.query_rewrite(query, ACME)
    assert query == before
    assert rewritten["filters"] == [
        {"member": f"{VIEW}.org_id", "operator": "equals", "values": ["acme"]},
        {"member": f"{CUBE}.org_id", "operator": "equals", "values": ["acme"]},
    ]
    snake = config.query_rewrite(query, {"security_context": {"tenant_id": 7}})
    assert snake["filters"][0]["values"] == ["7"]


@pytest.mark.parametrize(
    "ctx",
    [
        {},
        {"securityContext": {}},
        {"securityContext": {"tenant_id": ""}},
        None,
        {"securityContext": {"tenant_id": None}},
        {"securityContext": {"tenant_id": True}},
    ],
    ids=["no context", "empty", "blank tenant", "None", "null tenant", "boolean tenant"],
)
def test_query_rewrite_rejects_a_query_without_a_tenant(config: ModuleType, ctx: Any) -> None:
    """A request whose security context names no tenant is refused, whatever it asks for."""
    with pytest.raises(config.TenantRequiredError, match="has no 'tenant_id'"):
        config.query_rewrite({"measures": [f"{VIEW}.score"]}, ctx)


def _filter(value: str) -> dict[str, Any]:
    return {"member": f"{VIEW}.org_id", "operator": "equals", "values": [value]}


GREEDY_QUERIES: dict[str, dict[str, Any]] = {
    "other tenant by filter": {"filters": [_filter("globex")]},
    "either tenant by or": {"filters": [{"or": [_filter("globex"), _filter("acme")]}]},
    "no filter at all": {},
    "the cube, not the view": {"dimensions": [f"{CUBE}.org_id", f"{CUBE}.user_id"]},
}


@pytest.fixture(scope="module")
def rewritten_sql(cube_py: Path, tmp_path_factory: pytest.TempPathFactory) -> CubeCompilation:
    """Cube's DuckDB SQL for each greedy query after acme's query_rewrite (one harness call)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        config = import_with_cube_stand_in(cube_py, monkeypatch)
        items = []
        for extra in GREEDY_QUERIES.values():
            query = {
                "measures": [f"{VIEW}.eligible_responses", f"{VIEW}.score"],
                "dimensions": [f"{VIEW}.org_id", f"{VIEW}.user_id"],
                "timezone": "UTC",
                "order": [],
                **extra,
            }
            if "dimensions" in extra:
                query["measures"] = [f"{CUBE}.eligible_responses"]
            items.append({"dialect": "duckdb", "query": config.query_rewrite(query, ACME)})
    folder = tmp_path_factory.mktemp("tenant_model")
    (folder / "tenants.yml").write_text(dump_yaml(cube_model(tenant_spec())), encoding="utf-8")
    return run_harness(folder, items)


def test_access_policies_compile_with_cube(rewritten_sql: CubeCompilation) -> None:
    """Cube's compiler accepts the group/groups policies and the rewritten queries."""
    assert rewritten_sql.errors == []
    assert [r.error for r in rewritten_sql.results] == [None] * len(GREEDY_QUERIES)


@pytest.mark.engine("duckdb")
@pytest.mark.parametrize("index", range(len(GREEDY_QUERIES)), ids=list(GREEDY_QUERIES))
def test_another_tenants_rows_cannot_be_read(
    index: int, rewritten_sql: CubeCompilation, get_engine: Callable[[str], Engine]
) -> None:
    """After the rewrite, Cube's SQL on the facts view returns acme's rows only, never globex."""
    subject = tenant_subject()
    engine = get_engine("duckdb")
    result = rewritten_sql.results[index]
    assert result.sql is not None
    load_subject(engine, subject)
    try:
        sql, params = bind_for(engine, result.sql, result.params)
        frame = engine.query(sql, params)
    finally:
        drop_subject(engine, subject)
    tenants = {value for column in frame if column.endswith("org_id") for value in frame[column]}
    users = {value for column in frame if column.endswith("user_id") for value in frame[column]}
    if index == 0:
        assert sorted(result.params) == ["acme", "globex"]
        assert frame.empty
    else:
        assert (tenants, users) == ({"acme"}, {"u1", "u2"})

"""Shared pytest fixtures.

Engines are expensive to start (PostgreSQL initdb, the Spark JVM), so one engine per name is
opened lazily and kept for the whole session. An engine that cannot start raises, which makes the
test that asked for it fail (never skip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cfs_semantic.engines import ENGINE_NAMES, Engine, open_engine

#: Options for ``open_engine``. ClickHouse needs ``join_use_nulls`` for standard outer-join NULLs.
ENGINE_OPTIONS: dict[str, dict[str, Any]] = {"clickhouse": {"settings": {"join_use_nulls": 1}}}

EngineFactory = Callable[[str], Engine]


@pytest.fixture(scope="session")
def get_engine() -> Iterator[EngineFactory]:
    """Factory ``get_engine(name)`` returning one cached engine per name for the session."""
    engines: dict[str, Engine] = {}

    def get(name: str) -> Engine:
        if name not in engines:
            engines[name] = open_engine(name, **ENGINE_OPTIONS.get(name, {}))
        return engines[name]

    yield get
    for engine in engines.values():
        engine.close()


@pytest.fixture(
    params=[pytest.param(name, id=name, marks=pytest.mark.engine(name)) for name in ENGINE_NAMES]
)
def engine(request: pytest.FixtureRequest, get_engine: EngineFactory) -> Engine:
    """The session's engine for each name in ``ENGINE_NAMES`` (override with indirect=True)."""
    name: str = request.param
    return get_engine(name)

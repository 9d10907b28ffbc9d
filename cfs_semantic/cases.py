"""Turn a hand-computed KPI case (shared/cases/*.yaml) into a spec and input tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cfs_semantic.loader import spec_from_dict
from cfs_semantic.reference import SourceFrames
from cfs_semantic.spec import Spec

RESPONSE_COLUMNS = ("response_id", "user_id", "responded_at", "score", "sentiment")
ACTIVATION_COLUMNS = ("user_id", "activated_at")
COLUMN_TYPES = {
    "response_id": "string",
    "user_id": "string",
    "responded_at": "timestamp",
    "activated_at": "timestamp",
    "score": "float",
    "sentiment": "string",
}


@dataclass
class Case:
    """One case: its spec, its input tables and the expected values."""

    name: str
    why: str
    spec: Spec
    tables: dict[str, pd.DataFrame]
    types: dict[str, dict[str, str]]
    expect: dict[str, Any]

    def frames(self) -> SourceFrames:
        """Return the source rows for the pandas reference."""
        return SourceFrames(
            responses=self.tables["responses"], activations=self.tables["activations"]
        )


def _frame(rows: list[dict[str, Any]], fixed: tuple[str, ...]) -> pd.DataFrame:
    columns = list(fixed)
    for row in rows:
        columns += [k for k in row if k not in columns]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    for name in ("activated_at", "responded_at"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], format="ISO8601").astype("datetime64[us]")
    if "score" in frame:
        frame["score"] = pd.to_numeric(frame["score"]).astype("float64")
    for name in frame.columns:
        if name not in ("activated_at", "responded_at", "score"):
            frame[name] = frame[name].astype("object").where(frame[name].notna(), None)
    return frame


def build_spec(
    name: str, partial: dict[str, Any], user_attrs: list[str], response_attrs: list[str]
) -> dict[str, Any]:
    """Complete a case's partial spec with the standard case table layout."""
    sentiment = dict(partial.get("sentiment", {}))
    data: dict[str, Any] = {
        "name": name,
        "activation": {
            "mode": "table",
            "source": "activations",
            "user_id": "user_id",
            "activated_at": "activated_at",
            "attributes": {a: a for a in user_attrs},
        },
        "responses": {
            "source": "responses",
            "response_id": "response_id",
            "user_id": "user_id",
            "responded_at": "responded_at",
            "score": "score",
            "attributes": {a: a for a in response_attrs},
        },
        "scale": partial["scale"],
        "sentiment": sentiment,
        "segments": list(partial.get("segments", [])),
    }
    if sentiment.get("source", "score") != "score":
        data["responses"]["label"] = "sentiment"
    for key in ("window_days", "dedupe", "timezone", "reporting_timezone"):
        if key in partial:
            data[key] = partial[key]
    return data


def load_case(path: str | Path) -> Case:
    """Read one case file into specs and tables, with the columns each table has."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    activations = _frame(raw.get("activations") or [], ACTIVATION_COLUMNS)
    responses = _frame(raw.get("responses") or [], RESPONSE_COLUMNS)
    user_attrs = [c for c in activations.columns if c not in ACTIVATION_COLUMNS]
    response_attrs = [c for c in responses.columns if c not in RESPONSE_COLUMNS]
    spec = spec_from_dict(
        build_spec(raw["name"], raw["spec"], user_attrs, response_attrs), file=str(path)
    )
    types = {
        table: {c: COLUMN_TYPES.get(c, "string") for c in frame.columns}
        for table, frame in (("activations", activations), ("responses", responses))
    }
    return Case(
        raw["name"],
        raw.get("why", ""),
        spec,
        {"activations": activations, "responses": responses},
        types,
        raw["expect"],
    )

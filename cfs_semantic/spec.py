"""The KPI spec: pydantic models for one YAML file that drives every artifact.

The models hold the choices section 1 of the metric contract leaves open (scale, thresholds,
window, sentiment source, dedupe, time zones). Loading and line-aware error reporting live in
``cfs_semantic.loader``.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cfs_semantic.contract import FACT_COLUMNS, OUTPUT_COLUMNS

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SUPPORTED_DIALECTS = (
    "duckdb",
    "postgres",
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "spark",
    "trino",
    "athena",
    "mysql",
    "tsql",
    "clickhouse",
    "sqlite",
    "oracle",
)
SCALE_PRESETS: dict[str, tuple[float, float, float, float]] = {
    # preset: (min, max, positive_min, negative_max)
    "1-5": (1, 5, 4, 2),
    "0-10": (0, 10, 9, 6),
}


LOCATED_PREFIX = "@located:"


def located(path: str | tuple[Any, ...], message: str) -> ValueError:
    """Return a ValueError whose message names the key path it is about (see loader).

    The path travels as a JSON list after ``LOCATED_PREFIX``, so any key text survives.
    """
    parts = list(path) if isinstance(path, tuple) else path.split(".")
    return ValueError(f"{LOCATED_PREFIX}{json.dumps(parts)} {message}")


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ActivationMode(StrEnum):
    """How the spec says who activated and when."""

    TABLE = "table"
    FIRST_EVENT = "first_event"
    RESPONSE_STAGE = "response_stage"


class SentimentSource(StrEnum):
    """Where a response's sentiment class comes from."""

    LABEL = "label"
    SCORE = "score"
    LABEL_THEN_SCORE = "label_then_score"


class Dedupe(StrEnum):
    """Which eligible responses count."""

    ALL = "all"
    FIRST_PER_USER = "first_per_user"
    LATEST_PER_USER = "latest_per_user"


class Grain(StrEnum):
    """Time grains for grouping, in the reporting time zone."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class TableFile(Strict):
    """A local CSV or Parquet file the local runner registers as a table."""

    path: str
    format: Literal["csv", "parquet"] | None = None
    timestamp_format: str | None = Field(
        default=None, description="strptime format for timestamp columns, e.g. %d/%m/%Y %H:%M"
    )
    types: dict[str, Literal["string", "float", "integer", "timestamp", "boolean"]] = Field(
        default_factory=dict, description="column types that override inference"
    )


_QUERY_START = re.compile(r"^\s*(\(\s*)*(select|with)\b", re.IGNORECASE)


class SourceRef(Strict):
    """A source: a table (``table: name``) or one SELECT (``query: ...``).

    A plain string is read as a query when it starts with SELECT or WITH, else as a table
    name; a table whose name starts with such a word needs the explicit ``table:`` form.
    """

    table: str | None = None
    query: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"query": value} if _QUERY_START.match(value) else {"table": value}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceRef:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.table is not None and (not self.table.strip() or "\x00" in self.table):
            raise ValueError("a table name must be non-empty text")
        return self

    def __str__(self) -> str:
        return self.table if self.table is not None else str(self.query)


class Criterion(Strict):
    """A filter on an events source: ``column`` is one of ``in``."""

    column: str
    values: list[str] = Field(alias="in", min_length=1)


class UsersSource(Strict):
    """Where user attributes come from when activation is derived from events."""

    source: SourceRef
    user_id: str
    attributes: dict[str, str] = Field(default_factory=dict)


class Activation(Strict):
    """Who reached the activation milestone, and when."""

    mode: ActivationMode
    source: SourceRef | None = None
    user_id: str | None = None
    activated_at: str | None = None
    occurred_at: str | None = None
    where: list[Criterion] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    users: UsersSource | None = None
    stages: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_fit_mode(self) -> Activation:
        required = {
            ActivationMode.TABLE: ("source", "user_id", "activated_at"),
            ActivationMode.FIRST_EVENT: ("source", "user_id", "occurred_at"),
            ActivationMode.RESPONSE_STAGE: ("stages",),
        }[self.mode]
        missing = [name for name in required if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"mode {self.mode.value!r} needs {', '.join(missing)}; add "
                + " and ".join(f"activation.{m}" for m in missing)
            )
        forbidden = {
            ActivationMode.TABLE: ("occurred_at", "where", "users", "stages"),
            ActivationMode.FIRST_EVENT: ("activated_at", "attributes", "stages"),
            ActivationMode.RESPONSE_STAGE: (
                "source",
                "user_id",
                "activated_at",
                "occurred_at",
                "where",
                "users",
                "attributes",
            ),
        }[self.mode]
        extra = [name for name in forbidden if getattr(self, name)]
        if extra:
            raise ValueError(
                f"mode {self.mode.value!r} does not use {', '.join(extra)}; remove "
                + " and ".join(f"activation.{e}" for e in extra)
            )
        return self


class Responses(Strict):
    """The feedback responses and their column mapping."""

    source: SourceRef
    response_id: str | None = None
    user_id: str | None = None
    responded_at: str
    score: str | None = None
    label: str | None = None
    stage: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class Scale(Strict):
    """The declared score scale, inclusive on both ends."""

    preset: Literal["1-5", "0-10"] | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _resolve(self) -> Scale:
        if self.preset is not None:
            low, high, _, _ = SCALE_PRESETS[self.preset]
            if (self.min is not None and self.min != low) or (
                self.max is not None and self.max != high
            ):
                raise ValueError(
                    f"preset {self.preset!r} means min {low:g} and max {high:g}; "
                    "drop min/max or drop the preset"
                )
            object.__setattr__(self, "min", low)
            object.__setattr__(self, "max", high)
        if self.min is None or self.max is None:
            raise ValueError("scale needs both min and max, or a preset ('1-5' or '0-10')")
        if self.min >= self.max:
            raise ValueError(f"scale min ({self.min:g}) must be below max ({self.max:g})")
        return self

    @property
    def low(self) -> float:
        """The scale's inclusive lower bound."""
        assert self.min is not None
        return self.min

    @property
    def high(self) -> float:
        """The scale's inclusive upper bound."""
        assert self.max is not None
        return self.max


class Labels(Strict):
    """Label mapping: each list holds labels (compared trimmed and case-insensitively)."""

    positive: list[str] = Field(default_factory=list)
    neutral: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)
    excluded: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_label_twice(self) -> Labels:
        seen: dict[str, str] = {}
        for cls in ("positive", "neutral", "negative", "excluded"):
            for label in getattr(self, cls):
                key = normalize_label(label)
                if not key:
                    raise ValueError(f"an empty label in {cls}; remove it")
                if key in seen and seen[key] != cls:
                    raise ValueError(
                        f"label {label!r} is mapped to both {seen[key]} and {cls}; keep one"
                    )
                seen[key] = cls
        return self

    def mapping(self) -> dict[str, str]:
        """Return normalized label -> class, in a stable order."""
        out: dict[str, str] = {}
        for cls in ("positive", "neutral", "negative", "excluded"):
            for label in getattr(self, cls):
                out[normalize_label(label)] = cls
        return out


class Sentiment(Strict):
    """How an eligible response gets its class."""

    source: SentimentSource
    positive_min: float | None = None
    negative_max: float | None = None
    labels: Labels | None = None


class CubeOptions(Strict):
    """Options for the generated Cube model."""

    cube_name: str | None = Field(default=None, pattern=NAME_PATTERN)
    tenant_column: str | None = None
    pre_aggregation: bool = True


class Spec(Strict):
    """A whole KPI spec after validation, with presets resolved."""

    name: str = Field(pattern=NAME_PATTERN, max_length=48)
    title: str = "Customer Feedback Score (Post-activation)"
    description: str = ""
    timezone: str = "UTC"
    reporting_timezone: str | None = None
    source_dialect: str = "duckdb"
    tables: dict[str, TableFile] = Field(default_factory=dict)
    activation: Activation
    responses: Responses
    window_days: int | None = Field(default=None, ge=1, le=36500, strict=True)
    scale: Scale
    sentiment: Sentiment
    dedupe: Dedupe = Dedupe.ALL
    segments: list[str] = Field(default_factory=list)
    dialects: list[str] = Field(default_factory=lambda: ["duckdb"], min_length=1)
    cube: CubeOptions = Field(default_factory=CubeOptions)

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        """Reject NUL bytes anywhere: no engine can store them in SQL text or identifiers."""
        for path, text in _strings(data, ()):
            if "\x00" in text:
                raise located(
                    path or ("spec",),
                    f"the value {text!r} contains a NUL character; remove it",
                )
        return data

    @field_validator("timezone", "reporting_timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like UTC") from err
        return value

    @field_validator("tables")
    @classmethod
    def _plain_table_names(cls, value: dict[str, TableFile]) -> dict[str, TableFile]:
        for name in value:
            if not name.strip() or "." in name or "\x00" in name:
                raise ValueError(
                    f"table name {name!r} must be non-empty and without dots; rename it"
                )
        return value

    @field_validator("source_dialect")
    @classmethod
    def _known_source_dialect(cls, value: str) -> str:
        from sqlglot.dialects.dialect import Dialect

        try:
            Dialect.get_or_raise(value)
        except ValueError:
            raise ValueError(
                f"unknown SQL dialect {value!r}; use a sqlglot dialect name such as duckdb"
            ) from None
        return value

    @field_validator("dialects")
    @classmethod
    def _known_dialects(cls, value: list[str]) -> list[str]:
        for dialect in value:
            if dialect not in SUPPORTED_DIALECTS:
                raise ValueError(
                    f"unknown dialect {dialect!r}; choose from {', '.join(SUPPORTED_DIALECTS)}"
                )
        return value

    @model_validator(mode="after")
    def _resolve_thresholds(self) -> Spec:
        sentiment = self.sentiment
        uses_score = sentiment.source is not SentimentSource.LABEL
        uses_label = sentiment.source is not SentimentSource.SCORE
        if uses_score:
            if sentiment.positive_min is None or sentiment.negative_max is None:
                preset = _preset_for(self.scale)
                if preset is None:
                    raise located(
                        "sentiment",
                        "sentiment.positive_min and sentiment.negative_max are required for a "
                        "scale without a preset; set both",
                    )
                _, _, pos, neg = SCALE_PRESETS[preset]
                if sentiment.positive_min is None:
                    object.__setattr__(sentiment, "positive_min", pos)
                if sentiment.negative_max is None:
                    object.__setattr__(sentiment, "negative_max", neg)
            assert sentiment.positive_min is not None and sentiment.negative_max is not None
            low, high = self.scale.low, self.scale.high
            if not low < sentiment.positive_min <= high:
                raise located(
                    "sentiment.positive_min",
                    f"positive_min {sentiment.positive_min:g} is outside the scale "
                    f"({low:g}, {high:g}]; no score could ever be positive that way; "
                    "choose a value above the minimum and at most the maximum",
                )
            if not low <= sentiment.negative_max < high:
                raise located(
                    "sentiment.negative_max",
                    f"negative_max {sentiment.negative_max:g} is outside the scale "
                    f"[{low:g}, {high:g}); choose a value from the minimum to below the maximum",
                )
            if sentiment.negative_max >= sentiment.positive_min:
                raise located(
                    "sentiment.negative_max",
                    f"thresholds overlap: negative_max {sentiment.negative_max:g} must be below "
                    f"positive_min {sentiment.positive_min:g}; lower negative_max or raise "
                    "positive_min",
                )
            if self.responses.score is None:
                raise located(
                    "responses",
                    f"sentiment.source {sentiment.source.value!r} needs a score column; "
                    "set responses.score",
                )
        if uses_label:
            if self.responses.label is None:
                raise located(
                    "responses",
                    f"sentiment.source {sentiment.source.value!r} needs a label column; "
                    "set responses.label",
                )
            if sentiment.labels is None:
                raise located(
                    "sentiment", "a label source needs sentiment.labels; add the label mapping"
                )
        return self

    @model_validator(mode="after")
    def _queries_parse(self) -> Spec:
        """Every SELECT source must be exactly one query in ``source_dialect``."""
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError, TokenError

        sources = {
            "activation.source": self.activation.source,
            "activation.users.source": self.activation.users.source
            if self.activation.users
            else None,
            "responses.source": self.responses.source,
        }
        for key, ref in sources.items():
            if ref is None or ref.query is None:
                continue
            try:
                parsed = [s for s in sqlglot.parse(ref.query, read=self.source_dialect) if s]
            except (ParseError, TokenError) as err:
                detail = str(err).splitlines()[0]
                raise located(key, f"the query does not parse: {detail}; fix the SELECT") from None
            if len(parsed) != 1 or not isinstance(parsed[0], exp.Query):
                raise located(
                    key,
                    "a source must be one table name or one SELECT statement; "
                    "remove the other statements",
                )
        return self

    @model_validator(mode="after")
    def _check_mode_columns(self) -> Spec:
        stage_mode = self.activation.mode is ActivationMode.RESPONSE_STAGE
        if stage_mode and self.responses.stage is None:
            raise located("responses", "activation mode 'response_stage' needs responses.stage")
        if stage_mode and self.window_days is not None:
            raise located(
                "window_days",
                "window_days does not apply to activation mode 'response_stage'; remove it",
            )
        if not stage_mode and self.responses.user_id is None:
            raise located(
                "responses", "responses.user_id is required unless activation is by stage"
            )
        if self.dedupe is not Dedupe.ALL and self.responses.response_id is None:
            raise located("dedupe", f"dedupe {self.dedupe.value!r} needs responses.response_id")
        if self.dedupe is not Dedupe.ALL and self.responses.user_id is None:
            raise located("dedupe", f"dedupe {self.dedupe.value!r} needs responses.user_id")
        return self

    @model_validator(mode="after")
    def _check_attributes(self) -> Spec:
        user = self.user_attributes()
        response = self.responses.attributes
        for name in list(user) + list(response):
            if not re.match(NAME_PATTERN, name):
                raise located(
                    "activation.attributes",
                    f"attribute name {name!r} must be a plain identifier (letters, digits, _)",
                )
        both = sorted(set(user) & set(response))
        if both:
            raise located(
                "responses.attributes",
                f"attribute {both[0]!r} is both a user and a response attribute",
            )
        reserved = sorted((set(user) | set(response)) & RESERVED_OUTPUT_NAMES)
        if reserved:
            raise located(
                "activation.attributes", f"attribute name {reserved[0]!r} is reserved; rename it"
            )
        return self

    def user_attributes(self) -> dict[str, str]:
        """Return user attribute name -> source column, for the activation mode in use."""
        if self.activation.users is not None:
            return dict(self.activation.users.attributes)
        return dict(self.activation.attributes)

    @property
    def report_zone(self) -> str:
        """The time zone used for day, week and month grouping."""
        return self.reporting_timezone or self.timezone

    @property
    def uses_label(self) -> bool:
        """True when labels can decide the class."""
        return self.sentiment.source is not SentimentSource.SCORE

    @property
    def uses_score_class(self) -> bool:
        """True when valid scores can decide the class."""
        return self.sentiment.source is not SentimentSource.LABEL


def _strings(data: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """Every string in nested dicts and lists (keys included) with its key path."""
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(data, str):
        found.append((path, data))
    elif isinstance(data, dict):
        for key, value in data.items():
            found += _strings(key, path) if isinstance(key, str) else []
            found += _strings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _strings(value, (*path, index))
    return found


def _preset_for(scale: Scale) -> str | None:
    for name, (low, high, _, _) in SCALE_PRESETS.items():
        if scale.low == low and scale.high == high:
            return name
    return None


def normalize_label(label: str) -> str:
    """Normalize a label the way every implementation compares it: trim spaces, lowercase."""
    return label.strip(" ").lower()


RESERVED_OUTPUT_NAMES = frozenset(
    {
        *OUTPUT_COLUMNS,
        *FACT_COLUMNS,
        "tenant",
        "stage",
        "label",
    }
)
"""Names an attribute cannot take: they are columns of the facts view or of the results."""

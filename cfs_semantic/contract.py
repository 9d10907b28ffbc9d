"""Names and shared definitions of the metric contract (DESIGN.md section 1).

Every implementation reports the same columns, in this order, so that results can be compared
column by column.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTERS: tuple[str, ...] = (
    "activated_users",
    "responding_users",
    "eligible_responses",
    "scored_responses",
    "unscored_responses",
    "invalid_score_responses",
    "classified_responses",
    "unmapped_label_responses",
    "positive_responses",
    "neutral_responses",
    "negative_responses",
)
"""Additive counts, reported per group."""

SUMS: tuple[str, ...] = ("score_sum",)
"""Additive sums behind the ratios (sum of valid scores)."""

MEASURES: tuple[str, ...] = (
    "score",
    "positive_share",
    "neutral_share",
    "negative_share",
    "net_sentiment",
    "response_rate",
)
"""Ratios derived from the counters; never stored pre-aggregated."""

OUTPUT_COLUMNS: tuple[str, ...] = COUNTERS + SUMS + MEASURES

CLASSES: tuple[str, ...] = ("positive", "neutral", "negative")

FACT_COLUMNS: tuple[str, ...] = (
    "user_id",
    "response_id",
    "activated_at",
    "responded_at",
    "score",
    "valid_score",
    "sentiment_class",
    "is_user_row",
    "is_eligible",
    "is_scored",
    "is_unscored",
    "is_invalid_score",
    "is_classified",
    "is_unmapped_label",
    "is_positive",
    "is_neutral",
    "is_negative",
)
"""Columns of the governed facts view besides the attributes (see ``sql.facts``)."""

TIME_DIMENSIONS: dict[str, str] = {
    "activated": "activated_at",
    "responded": "responded_at",
}
"""Time dimension name -> the timestamp it truncates."""


def time_column(time_dim: str, grain: str) -> str:
    """Return the output column name of a time dimension at a grain, e.g. ``responded_month``."""
    return f"{time_dim}_{grain}"


@dataclass(frozen=True)
class Grouping:
    """What to group by: segment names plus an optional time dimension at a grain."""

    segments: tuple[str, ...] = ()
    time_dim: str | None = None
    grain: str | None = None

    def columns(self) -> list[str]:
        """Return the output names of the group columns, in order."""
        cols = list(self.segments)
        if self.time_dim and self.grain:
            cols.append(time_column(self.time_dim, self.grain))
        return cols

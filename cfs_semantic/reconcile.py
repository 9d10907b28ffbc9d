"""Reconciliation: where every input response went, so that none disappears unreported.

The pandas side here is the reference for ``cfs_semantic.sql.reconcile``. The buckets add up to
the number of input rows; the eligible bucket splits further by dedupe, score status and
sentiment class, using the aggregate counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cfs_semantic.reference import (
    ACTIVATED,
    RESPONDED,
    USER_KEY,
    SourceFrames,
    _response_base,
    first_activations,
)
from cfs_semantic.spec import ActivationMode, Spec
from cfs_semantic.sql.reconcile import BUCKETS


def reference_buckets(spec: Spec, src: SourceFrames) -> dict[str, int]:
    """Count input responses per bucket with pandas, straight from the contract."""
    rows = _response_base(spec, src.responses)
    bucket = pd.Series("eligible", index=rows.index, dtype="object")
    decided = pd.Series(False, index=rows.index)

    def assign(mask: pd.Series, name: str) -> None:
        nonlocal decided
        hit = mask.fillna(False).astype(bool) & ~decided
        bucket[hit] = name
        decided = decided | hit

    assign(rows[USER_KEY].isna() | rows[RESPONDED].isna(), "missing_user_or_time")
    assign(rows["__duplicate"], "duplicate_response_id")
    if spec.activation.mode is ActivationMode.RESPONSE_STAGE:
        assign(~rows["__stage"].isin(spec.activation.stages), "not_at_activation_stage")
    else:
        users = first_activations(spec, src)[[USER_KEY, ACTIVATED]]
        joined = rows[[USER_KEY, RESPONDED]].merge(users, on=USER_KEY, how="left")
        joined.index = rows.index
        assign(joined[ACTIVATED].isna(), "never_activated")
        assign(joined[RESPONDED] < joined[ACTIVATED], "before_activation")
        if spec.window_days is not None:
            end = joined[ACTIVATED] + pd.Timedelta(days=spec.window_days)
            assign(joined[RESPONDED] >= end, "after_window")
    counts = bucket.value_counts()
    return {name: int(counts.get(name, 0)) for name in BUCKETS}


@dataclass(frozen=True)
class Reconciliation:
    """Input rows by bucket, and the eligible rows by what happened to them."""

    input_responses: int
    buckets: dict[str, int]
    counters: dict[str, int]

    def lines(self) -> list[tuple[str, int]]:
        """Return (label, count) lines, indented labels for the eligible breakdown."""
        c = self.counters
        kept = c["eligible_responses"]
        eligible = self.buckets["eligible"]
        out = [("input responses", self.input_responses)]
        out += [
            (name.replace("_", " "), n) for name, n in self.buckets.items() if name != "eligible"
        ]
        out.append(("eligible", eligible))
        out.append(("  dropped by dedupe (one per user)", eligible - kept))
        out.append(("  counted", kept))
        out += [
            (f"    {name.replace('_', ' ')}", c[name])
            for name in ("scored_responses", "unscored_responses", "invalid_score_responses")
        ]
        unclassified = kept - c["classified_responses"] - c["unmapped_label_responses"]
        out += [
            ("    classified", c["classified_responses"]),
            ("    unmapped label", c["unmapped_label_responses"]),
            ("    no class (excluded label or no valid score)", unclassified),
        ]
        return out

    def problems(self) -> list[str]:
        """Return every way the buckets fail to add up (empty when they reconcile)."""
        c = self.counters
        found = []
        if sum(self.buckets.values()) != self.input_responses:
            found.append(
                f"buckets sum to {sum(self.buckets.values())}, "
                f"not to {self.input_responses} input rows"
            )
        if c["eligible_responses"] > self.buckets["eligible"]:
            found.append("more counted responses than eligible ones")
        scored = c["scored_responses"] + c["unscored_responses"] + c["invalid_score_responses"]
        if scored != c["eligible_responses"]:
            found.append("score statuses do not add up to the counted responses")
        return found

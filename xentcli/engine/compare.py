"""Two models' outputs on the same labels: the losses, their difference, and how sure it is.

The confidence interval of the difference of the mean losses comes from a
paired bootstrap: the same resampled rows for both models, so that what
the rows share (their difficulty) cancels out. Resampling uses Poisson(1)
counts per row (the streaming form of the bootstrap), a block of rows at a
time, so memory stays bounded for any number of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..choices import RANGES
from ..errors import XentError
from .spec import Result

RESAMPLES = 1000
WORST = 10


@dataclass(frozen=True)
class Comparison:
    base: Result
    new: Result
    difference: float  # new - base
    low: float  # confidence interval of the difference
    high: float
    confidence: float
    resamples: int
    worst_rows: np.ndarray  # positions whose loss grew most, worst first

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0 (never, without an interval)."""
        return math.isfinite(self.low) and math.isfinite(self.high) and not (self.low <= 0 <= self.high)


MAX_RESAMPLES = RANGES["resamples"][1]


def compare(
    base: Result, new: Result, *, resamples: int = RESAMPLES, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    """Compare two results over the same labels (both with per-row numbers kept)."""
    check_reduction(base.reduction)
    if not 0 <= resamples <= MAX_RESAMPLES:
        raise XentError(f"resamples must lie in 0..{MAX_RESAMPLES}, got {resamples}")
    if base.losses is None or new.losses is None:
        raise XentError("compare needs the per-row losses of both models")
    if base.rows != new.rows:
        raise XentError(f"the models have {base.rows} and {new.rows} rows: they must score the same rows")
    if (base.reduction, base.convention) != (new.reduction, new.convention):
        raise XentError(
            f"the models were reduced differently ({base.reduction}, {base.convention} against "
            f"{new.reduction}, {new.convention}): their losses cannot be compared"
        )
    difference = new.loss - base.loss
    low, high = _bootstrap(base, new, resamples, confidence, seed)
    change = np.where(base.ignored_mask, -np.inf, new.losses.astype(np.float64) - base.losses)
    worst = np.argsort(-change, kind="stable")[: min(WORST, int((change > 0).sum()))]
    return Comparison(base, new, float(difference), low, high, confidence, resamples, worst)


def check_reduction(reduction: str) -> None:
    """compare sets one number against another: a reduction must give one."""
    if reduction == "none":
        raise XentError(
            "compare needs one loss per model, and --reduction none gives one per row: "
            "use mean or sum (--format csv lists each row's losses and their change)"
        )


def _bootstrap(base: Result, new: Result, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """The percentile interval of the resampled difference of the two means (or sums)."""
    if resamples <= 0 or base.rows == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    base_sums = np.zeros(resamples)
    new_sums = np.zeros(resamples)
    denominators = np.zeros(resamples)
    block = max(1, (1 << 22) // resamples)
    for start in range(0, base.rows, block):
        stop = min(start + block, base.rows)
        counts = rng.poisson(1.0, size=(resamples, stop - start)).astype(np.float64)
        base_sums += counts @ base.losses[start:stop].astype(np.float64)
        new_sums += counts @ new.losses[start:stop].astype(np.float64)
        denominators += counts @ base.row_weights[start:stop]
    if base.reduction == "sum":
        differences = new_sums - base_sums
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            differences = (new_sums - base_sums) / denominators
    differences = differences[np.isfinite(differences)]
    if not len(differences):
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return float(low), float(high)


def aligned(result: Result, batch: Any, base_batch: Any, name: str) -> Result:
    """A model's per-row numbers in the base model's row order, when both carry row ids
    (each model's labels joined on them); one model alone with ids is refused."""
    ids, base_ids = batch.ids, base_batch.ids
    if (ids is None) != (base_ids is None):
        alone = name if base_ids is None else base_batch.logits_name
        raise XentError("only this model's rows carry ids: the two models' rows cannot be lined up", alone)
    if ids is None or ids == base_ids:
        return result
    if not (batch.joined and base_batch.joined):
        raise XentError("the models' rows are in different orders (by id), and the labels have no ids to join them on", name)
    where = {key: k for k, key in enumerate(ids)}
    missing = next((key for key in base_ids if key not in where), None)
    if missing is not None or len(ids) != len(base_ids):
        raise XentError(f"the models' row ids differ (id {missing!r} of the base is not here)", name)
    order = np.array([where[key] for key in base_ids])
    per_row = ("losses", "log_p_target", "pred", "target", "ignored_mask", "row_weights")
    return replace(result, **{array: getattr(result, array)[order] for array in per_row})

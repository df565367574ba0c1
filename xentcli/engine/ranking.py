"""Ranking metrics of binary scores, as scikit-learn defines them, by sorting.

ROC AUC and average precision depend on the order of the scores, so unlike the
sums in `metrics.py` they cannot be gathered block by block: the rows are kept
(`ScoredRows`) and sorted once at the end, in O(N log N). The Brier score is a
plain weighted mean and sits here as the third number of a binary scorer.

Where scikit-learn warns and returns a value for an undefined metric (or
raises), these return NaN and leave the decision to the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def roc_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Area under the ROC curve: `sklearn.metrics.roc_auc_score` for binary labels.

    Tied scores form one point of the curve (the trapezoid over the group), so a
    tied positive/negative pair counts 1/2. NaN when one class is missing or has
    zero total weight (scikit-learn 1.9 warns and returns NaN too).
    """
    true_positives, false_positives = _cumulative_counts(scores, positive, weights)
    if true_positives[-1] <= 0 or false_positives[-1] <= 0:
        return math.nan
    return float(np.trapezoid(true_positives / true_positives[-1], false_positives / false_positives[-1]))


def average_precision(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """`sklearn.metrics.average_precision_score` for binary labels: sum over the
    distinct scores, highest first, of (R_n - R_{n-1}) P_n, not interpolated.

    NaN when no positive has weight (scikit-learn warns and returns 0 there).
    """
    true_positives, false_positives = _cumulative_counts(scores, positive, weights)
    if true_positives[-1] <= 0:
        return math.nan
    recall = true_positives / true_positives[-1]
    precision = true_positives[1:] / (true_positives[1:] + false_positives[1:])
    return float(np.sum(np.diff(recall) * precision))


def brier(probabilities: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """`sklearn.metrics.brier_score_loss` for binary labels: the weighted mean of
    (p - y)^2, in float64.

    Probabilities outside [0, 1] are not rejected (scikit-learn raises); NaN when
    the total weight is zero.
    """
    probabilities, positive, weights = _rows(probabilities, positive, weights)
    if weights is None:
        weights = np.ones_like(probabilities)
    weight_sum = weights.sum()
    if weight_sum == 0:
        return math.nan
    return float(np.dot(weights, (probabilities - positive) ** 2) / weight_sum)


@dataclass(frozen=True, eq=False)
class ScoredRows:
    """Scored rows gathered part by part (files read one after another), for
    the metrics above computed once at the end.

    Memory is O(N): every row is kept, 8 bytes for the score, 1 for the label
    and 8 for the weight when any part has weights. Computing a metric needs a
    few times that again while it runs (joined and sorted copies, the sort's
    8-byte index a row). Bounded-memory streaming (binned or sketched curves)
    is not implemented.
    """

    scores: tuple[np.ndarray, ...] = ()
    positive: tuple[np.ndarray, ...] = ()
    weights: tuple[np.ndarray | None, ...] = ()

    @classmethod
    def of(cls, scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> ScoredRows:
        """One part: scores (N,), labels (N,) (bool or 0/1) and optional weights (N,)."""
        scores, positive, weights = _rows(scores, positive, weights)
        return cls((scores,), (positive,), (weights,))

    def __add__(self, other: ScoredRows) -> ScoredRows:
        """The rows of two parts read one after the other."""
        return ScoredRows(self.scores + other.scores, self.positive + other.positive, self.weights + other.weights)

    def joined(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """All rows in the order they were added; weights are None when no part
        had any, and 1 for the rows of unweighted parts otherwise."""
        scores = np.concatenate((np.empty(0), *self.scores))
        positive = np.concatenate((np.empty(0, dtype=bool), *self.positive))
        if all(part is None for part in self.weights):
            return scores, positive, None
        filled = (
            np.ones(len(scores_part)) if weights_part is None else weights_part
            for scores_part, weights_part in zip(self.scores, self.weights)
        )
        return scores, positive, np.concatenate((np.empty(0), *filled))

    def roc_auc(self) -> float:
        return roc_auc(*self.joined())

    def average_precision(self) -> float:
        return average_precision(*self.joined())

    def brier(self) -> float:
        """The Brier score, when the scores are probabilities of the positive class."""
        return brier(*self.joined())


def _rows(
    scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The inputs as float64 scores, boolean labels and float64 weights (or None), checked to be (N,)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive).astype(bool)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
    if scores.ndim != 1 or positive.shape != scores.shape or (weights is not None and weights.shape != scores.shape):
        shapes = [np.shape(array) for array in (scores, positive, weights) if array is not None]
        raise ValueError(f"scores, labels and weights must be 1-D of the same length, got shapes {shapes}")
    return scores, positive, weights


def _cumulative_counts(
    scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The weight of positives and of negatives scored at or above each distinct
    score, highest first, after a leading 0 (scikit-learn's `tps` and `fps` of
    `confusion_matrix_at_thresholds`, with the curve's starting point)."""
    scores, positive, weights = _rows(scores, positive, weights)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN, which has no rank")
    weights = np.ones_like(scores) if weights is None else weights
    # As in scikit-learn: a row of zero weight must not make a threshold of its own.
    kept = weights != 0
    scores, positive, weights = scores[kept], positive[kept], weights[kept]
    order = np.argsort(scores, kind="stable")[::-1]
    scores, positive, weights = scores[order], positive[order], weights[order]
    # After 0 rows and after the last of each run of tied scores (`!=`, not a
    # difference, so that tied infinities stay tied).
    cuts = np.concatenate(([0], np.flatnonzero(scores[1:] != scores[:-1]) + 1, [scores.size]))
    true_positives = np.concatenate(([0.0], np.cumsum(np.where(positive, weights, 0.0))))
    false_positives = np.concatenate(([0.0], np.cumsum(np.where(positive, 0.0, weights))))
    return true_positives[cuts], false_positives[cuts]

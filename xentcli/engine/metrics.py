"""The metrics around the loss, gathered block by block like the loss itself.

Every metric is kept as sums and counts (so that blocks, threads and files
simply add up) and derived at the end: accuracy within the top k, mean
predictive entropy, bits per sample, expected calibration error over 15
equal-width confidence bins (and the reliability diagram behind it), a
histogram of per-row losses, and per-class counts, mean loss and accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

CALIBRATION_BINS = 15
# Per-row loss histogram edges (nats); the last bin is open-ended.
LOSS_EDGES = (0.0, 0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0)


@dataclass(frozen=True)
class MetricOptions:
    """Which optional metrics to gather."""

    top_k: int | None = None
    by_class: bool = False


def option_warnings(options: MetricOptions, classes: int) -> list[str]:
    """Options that make a metric say nothing: --top-k K with K >= C is always 100%."""
    if options.top_k is not None and options.top_k >= classes:
        return [
            f"--top-k {options.top_k} is not below the number of classes ({classes}): "
            f"every target is in the top {options.top_k}, so top-{options.top_k} accuracy is 100%"
        ]
    return []


def layout(options: MetricOptions, classes: int) -> dict[str, tuple[str, int]]:
    """name -> (dtype, width) of each per-block total the metrics need."""
    shapes = {
        "entropy": ("float64", 1),
        "top_k_correct": ("int64", 1),
        "bin_count": ("float64", CALIBRATION_BINS),
        "bin_confidence": ("float64", CALIBRATION_BINS),
        "bin_correct": ("float64", CALIBRATION_BINS),
        "loss_histogram": ("float64", len(LOSS_EDGES)),
    }
    if options.by_class:
        shapes.update(class_count=("float64", classes), class_loss=("float64", classes), class_correct=("float64", classes))
    return shapes


def block_totals(
    ops: Any,
    options: MetricOptions,
    *,
    x: Any,
    shifted: Any,
    exp: Any,
    lse: Any,
    target: Any,
    kept: Any,
    correct: Any,
    loss: Any,
    input: str,
) -> dict[str, Any]:
    """The metric sums of one block. `shifted` is log p + lse per row (x - max
    for logits), `exp` its exponential for logits (None otherwise)."""
    if input == "logits":
        row_sum = ops.row_sum(exp)
        confidence = 1.0 / row_sum  # the top class has e^(x - max) = 1
        # -sum p log p = lse - sum(e * s) / sum(e), with 0 log 0 = 0 for masked classes
        entropy = lse - ops.rowdot(exp, ops.where(exp > 0, shifted, 0.0)) / row_sum
    else:
        probabilities = ops.exp(shifted)
        confidence = ops.row_max(probabilities)
        entropy = -ops.rowdot(probabilities, ops.where(probabilities > 0, shifted, 0.0))
    weight = ops.cast(kept, "float64")
    hits = ops.cast(correct, "float64")
    calibration_bin = ops.bin_index(confidence, np.linspace(0, 1, CALIBRATION_BINS + 1)[:-1])
    totals = {
        "entropy": ops.sum64(ops.where(kept, entropy, 0.0)),
        "bin_count": ops.bincount(calibration_bin, weight, CALIBRATION_BINS),
        "bin_confidence": ops.bincount(calibration_bin, weight * ops.cast(confidence, "float64"), CALIBRATION_BINS),
        "bin_correct": ops.bincount(calibration_bin, hits, CALIBRATION_BINS),
        "loss_histogram": ops.bincount(ops.bin_index(loss, np.array(LOSS_EDGES)), weight, len(LOSS_EDGES)),
        "top_k_correct": 0,
    }
    safe = ops.where(kept, target, 0)
    if options.top_k:
        scores = x if input == "logits" else shifted
        own = ops.pick(scores, safe)[:, None]
        # The target's rank, ties broken as argmax breaks them: the lower class first.
        before = ops.class_index(scores.shape[1])[None, :] < safe[:, None]
        above = ((scores > own) | ((scores == own) & before)).sum(1)
        totals["top_k_correct"] = ((above < options.top_k) & kept).sum()
    if options.by_class:
        classes = x.shape[1]
        totals["class_count"] = ops.bincount(safe, weight, classes)
        totals["class_loss"] = ops.bincount(safe, weight * ops.cast(loss, "float64"), classes)
        totals["class_correct"] = ops.bincount(safe, hits, classes)
    return totals


@dataclass(frozen=True)
class Metrics:
    """Sums and counts over the counted (not ignored) rows, and what follows from them."""

    counted: int
    top_k: int | None
    top_k_correct: int
    entropy: float
    bin_count: np.ndarray
    bin_confidence: np.ndarray
    bin_correct: np.ndarray
    loss_histogram: np.ndarray
    class_count: np.ndarray | None = None
    class_loss: np.ndarray | None = None
    class_correct: np.ndarray | None = None

    @classmethod
    def from_totals(cls, totals: dict[str, np.ndarray], options: MetricOptions, counted: int) -> Metrics:
        """Add up the per-block totals."""
        sums = {name: totals[name].sum(axis=0) for name in layout(options, 0)}
        top_k_correct, entropy = int(sums.pop("top_k_correct")), float(sums.pop("entropy"))
        return cls(counted=counted, top_k=options.top_k, top_k_correct=top_k_correct, entropy=entropy, **sums)

    def __add__(self, other: Metrics) -> Metrics:
        """The metrics of two batches read one after the other."""
        values = {}
        for field in fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            values[field.name] = mine if field.name == "top_k" or mine is None else mine + theirs
        return Metrics(**values)

    @property
    def top_k_accuracy(self) -> float | None:
        return None if not self.top_k else _ratio(self.top_k_correct, self.counted)

    @property
    def mean_entropy(self) -> float:
        return _ratio(self.entropy, self.counted)

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of |accuracy - confidence|, weighted by share of rows."""
        if not self.counted:
            return math.nan
        gaps = np.abs(self.bin_correct - self.bin_confidence)  # both are sums over the bin's rows
        return float(gaps.sum() / self.counted)

    def reliability(self) -> list[dict[str, float]]:
        """The reliability diagram: per non-empty confidence bin, its rows, mean confidence and accuracy."""
        width = 1 / CALIBRATION_BINS
        return [
            {
                "low": k * width,
                "high": (k + 1) * width,
                "rows": int(count),
                "confidence": self.bin_confidence[k] / count,
                "accuracy": self.bin_correct[k] / count,
            }
            for k, count in enumerate(self.bin_count)
            if count
        ]

    def histogram(self) -> list[dict[str, float]]:
        """Per-row losses by bin (nats): low, high (None: open) and rows."""
        edges = (*LOSS_EDGES, None)
        return [
            {"low": edges[k], "high": edges[k + 1], "rows": int(count)} for k, count in enumerate(self.loss_histogram)
        ]

    def by_class(self, class_names: Sequence[str] | None = None) -> list[dict[str, Any]] | None:
        """Per class: its index, its name (None without names), rows, mean loss and accuracy."""
        if self.class_count is None:
            return None
        return [
            {
                "class": c,
                "name": class_names[c] if class_names and c < len(class_names) else None,
                "rows": int(count),
                "mean_loss": _ratio(self.class_loss[c], count),
                "accuracy": _ratio(self.class_correct[c], count),
            }
            for c, count in enumerate(self.class_count)
        ]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan

"""The sigmoid family: binary and multi-label cross-entropy, as each library defines it.

Per element (a row's one score, or its score for one class), y the target in [0, 1]:

- logits x: -[y log σ(x) + (1 - y) log σ(-x)], with log σ(x) = min(x, 0) -
  log1p(e^-|x|), so that no logit overflows and a tiny loss keeps its digits
  (torch's binary_cross_entropy_with_logits, which writes it (1 - y) x -
  log σ(x); Keras' BinaryCrossentropy with from_logits=True, optax's
  sigmoid_binary_cross_entropy, which writes it as here). torch's pos_weight
  p scales the positive term: -[p y log σ(x) + (1 - y) log σ(-x)].
- probabilities p: -[y log p + (1 - y) log(1 - p)], each log clamped at -100
  (torch's binary_cross_entropy), or p clipped first: to [1e-7, 1 - 1e-7]
  (Keras), to [eps, 1 - eps] of the dtype (scikit-learn's log_loss, which
  reads a column of P(class 1) as two columns [1 - p, p]).

Focal loss (Lin et al. 2017) multiplies each element by (1 - p_t)^γ, p_t the
probability given to the target (y p + (1 - y)(1 - p)), and with α by
α y + (1 - α)(1 - y): Keras' BinaryFocalCrossentropy (σ first, then its
clipped probability loss; α only with apply_class_balancing) and optax's
sigmoid_focal_loss (the stable loss of logits; 1 - p_t = (1 - y) σ(x) + y σ(-x)).

Keras' label smoothing moves y to y (1 - ε) + ε/2. Class weights for one
score are Keras' class_weight (and scikit-learn's sample_weight = w[y]):
row n's loss times w[y_n]; for several classes, torch's weight: class c's
element times w_c. Reductions: torch, Keras and optax take the mean over
every element (N × C; Keras as the mean over classes, times the sample
weight, summed and divided by N: the same number); scikit-learn divides by
the sum of the sample weights (np.average), as does Keras'
mean_with_sample_weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bfloat16 import widened
from ..conventions import KERAS_EPSILON, get as get_convention, refusal
from ..errors import XentError
from .backends import sum_split
from .core import reduced_mean
from .metrics import CALIBRATION_BINS
from .rows import checked_vector
from .spec import InputKind, Locate, LossSpec, Reduction, Result, row_number
from .transforms import compute_dtype

TORCH_LOG_FLOOR = -100.0  # torch's binary_cross_entropy clamps each log here


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log σ(x), stable for every finite x."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def element_losses(
    x: np.ndarray, y: np.ndarray, kind: InputKind, convention: str, pos_weight: np.ndarray | None = None
) -> np.ndarray:
    """The loss of each element (unweighted), as the convention defines it."""
    if kind == "logits" and convention != "sklearn":
        positive = y if pos_weight is None else pos_weight * y
        return -(positive * log_sigmoid(x) + (1 - y) * log_sigmoid(-x))
    p = 1 / (1 + np.exp(-x)) if kind == "logits" else x  # scikit-learn's log_loss takes σ(x)
    if convention == "torch":
        with np.errstate(divide="ignore"):
            return -(y * np.maximum(np.log(p), TORCH_LOG_FLOOR) + (1 - y) * np.maximum(np.log(1 - p), TORCH_LOG_FLOOR))
    eps = KERAS_EPSILON if convention == "keras" else float(np.finfo(p.dtype).eps)
    p = np.clip(p, eps, 1 - eps)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def focal_losses(
    x: np.ndarray, y: np.ndarray, kind: InputKind, convention: str, gamma: float, alpha: float | None
) -> np.ndarray:
    """The focal loss of each element (unweighted), Keras' or optax's; α None: no class balancing."""
    if convention == "keras":  # keras.losses.binary_focal_crossentropy: σ, then the clipped loss of probabilities
        p = 1 / (1 + np.exp(-x)) if kind == "logits" else x
        factor = (1 - (y * p + (1 - y) * (1 - p))) ** gamma
        losses = element_losses(p, y, "probs", convention)
    else:  # optax.sigmoid_focal_loss
        factor = ((1 - y) * np.exp(log_sigmoid(x)) + y * np.exp(log_sigmoid(-x))) ** gamma
        losses = element_losses(x, y, kind, convention)
    if alpha is not None:
        factor = factor * (alpha * y + (1 - alpha) * (1 - y))
    return factor * losses


def probabilities(x: np.ndarray, kind: InputKind) -> np.ndarray:
    """p(positive) per element: σ(x) for logits, the input for probabilities."""
    if kind == "logits":
        return np.exp(log_sigmoid(x))
    return x


def _check_scores(x: np.ndarray, kind: InputKind, locate: Locate) -> None:
    bad = ~np.isfinite(x).all(axis=1)
    if kind == "probs":
        with np.errstate(invalid="ignore"):
            bad |= ((x < 0) | (x > 1)).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        values = x[row]
        if np.isnan(values).any():
            what = "NaN"
        elif kind == "probs" and np.isfinite(values).all():
            what = "a probability outside [0, 1] (use --input logits for raw scores)"
        else:
            what = "an infinite score" if kind == "logits" else "an infinite probability"
        raise XentError(f"{kind} contain {what}", locate(row))


def _check_targets(y: np.ndarray, convention: str, locate: Locate) -> bool:
    """Targets in [0, 1]; whether any lies strictly between (soft targets)."""
    flat = y.reshape(len(y), -1)
    with np.errstate(invalid="ignore"):
        bad = ~((flat >= 0) & (flat <= 1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = flat[row][~((flat[row] >= 0) & (flat[row] <= 1))][0]
        shown = f"{value:g}" if np.isfinite(value) else str(value)
        raise XentError(f"label {shown} is not 0 or 1 (nor a probability between): a binary target", locate(row))
    soft = bool(((flat > 0) & (flat < 1)).any())
    if soft and convention == "sklearn":
        row = int(np.flatnonzero(((flat > 0) & (flat < 1)).any(axis=1))[0])
        raise XentError("sklearn.metrics.log_loss takes labels 0 and 1, not probabilities (--convention sklearn)", locate(row))
    return soft


def _check_convention(spec: LossSpec, classes: int, pos_weight: np.ndarray | None) -> None:
    rule = get_convention(spec.convention)
    if spec.focal_gamma is not None and spec.convention not in ("keras", "optax"):
        raise XentError(
            "the focal loss is Keras' BinaryFocalCrossentropy or optax's sigmoid_focal_loss: use --convention keras or optax"
        )
    if spec.input == "log-probs":
        raise XentError("the sigmoid family takes logits or probabilities (--input logits or probs), not log-probabilities")
    if spec.convention == "optax" and spec.input != "logits":
        raise XentError("optax.sigmoid_binary_cross_entropy takes logits, not probabilities (--convention optax)")
    if spec.convention == "sklearn" and classes > 1:
        raise XentError("sklearn.metrics.log_loss has no multi-label loss (--convention sklearn)")
    if spec.label_smoothing and spec.convention != "keras":
        raise XentError(
            f"label smoothing of binary targets is Keras' (y (1 - ε) + ε/2): use --convention keras "
            f"({rule.function} has none)"
        )
    if pos_weight is not None and not (spec.convention == "torch" and spec.input == "logits"):
        raise XentError("--pos-weight is torch's binary_cross_entropy_with_logits: use it with logits and --convention torch")
    if spec.reduction not in rule.reductions:
        raise XentError(f"--reduction {spec.reduction} is Keras's reduction, not {rule.function}'s")


@dataclass(frozen=True)
class BinaryMetrics:
    """What binary users look at beside the loss, from every row's p(positive),
    class and weight: kept whole (16 bytes and a flag per score), so that the
    ranking metrics are exact; `+` joins the rows of two files.

    One score per row: p, positive of shape (N,). Multi-label: (N, C), with
    each class's weighted loss summed over the rows (`class_loss`) and
    `by_class` asking for the per-class list."""

    p: np.ndarray
    positive: np.ndarray
    weights: np.ndarray
    threshold: float
    class_loss: np.ndarray | None = None
    by_class: bool = False

    def __add__(self, other: BinaryMetrics) -> BinaryMetrics:
        return BinaryMetrics(
            np.concatenate([self.p, other.p]), np.concatenate([self.positive, other.positive]),
            np.concatenate([self.weights, other.weights]), self.threshold,
            None if self.class_loss is None else self.class_loss + other.class_loss, self.by_class,
        )

    @property
    def multilabel(self) -> bool:
        return self.p.ndim == 2

    def _calibration_bins(self) -> tuple[np.ndarray, ...]:
        """Per bin of p(positive): rows, weight, weighted sums of p and of positives.

        The bins are scikit-learn's calibration_curve(strategy="uniform"):
        CALIBRATION_BINS equal widths, each closed on the right (the first
        holds 0 too)."""
        edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
        index = np.searchsorted(edges[1:-1], self.p)
        return (
            np.bincount(index, minlength=CALIBRATION_BINS),
            np.bincount(index, weights=self.weights, minlength=CALIBRATION_BINS),
            np.bincount(index, weights=self.weights * self.p, minlength=CALIBRATION_BINS),
            np.bincount(index, weights=self.weights * self.positive, minlength=CALIBRATION_BINS),
        )

    def reliability(self) -> list[dict[str, float]]:
        """The reliability diagram: per bin of p(positive) holding weight, its
        rows, mean p(positive) and the share of positives (weighted)."""
        rows, weight, p_sum, positive_sum = self._calibration_bins()
        width = 1 / CALIBRATION_BINS
        return [
            {"low": k * width, "high": (k + 1) * width, "rows": int(rows[k]),
             "mean_p": p_sum[k] / weight[k], "positive_rate": positive_sum[k] / weight[k]}
            for k in range(CALIBRATION_BINS)
            if weight[k] > 0
        ]

    def ece(self) -> float:
        """Expected calibration error of p(positive): the bins' |positive rate - mean p|, weighted by their share."""
        _, weight, p_sum, positive_sum = self._calibration_bins()
        total = weight.sum()
        return float(np.abs(positive_sum - p_sum).sum() / total) if total > 0 else math.nan

    def as_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        from .ranking import average_precision, brier, roc_auc

        if self.multilabel:
            return self._multilabel(class_names)
        return {
            "threshold": self.threshold,
            "positives": int(self.positive.sum()),
            "roc_auc": roc_auc(self.p, self.positive, self.weights),
            "average_precision": average_precision(self.p, self.positive, self.weights),
            "brier": brier(self.p, self.positive, self.weights),
            "ece": self.ece(),
            "reliability": self.reliability(),
        }

    def _multilabel(self, class_names: Sequence[str] | None) -> dict[str, Any]:
        """Per class ROC AUC and average precision (scikit-learn's average=None),
        their macro mean over the classes where each is defined, and the micro
        figure over every (row, class) element (average="micro")."""
        from .ranking import average_precision, roc_auc

        rows, classes = self.p.shape
        auc = np.array([roc_auc(self.p[:, c], self.positive[:, c], self.weights) for c in range(classes)])
        ap = np.array([average_precision(self.p[:, c], self.positive[:, c], self.weights) for c in range(classes)])
        flat = (self.p.reshape(-1), self.positive.reshape(-1), np.repeat(self.weights, classes))
        predicted = self.p >= self.threshold
        found: dict[str, Any] = {
            "threshold": self.threshold,
            "positives": int(self.positive.sum()),
            "element_accuracy": float((predicted == self.positive).mean()) if self.p.size else math.nan,
            "roc_auc_macro": _defined_mean(auc),
            "roc_auc_micro": roc_auc(*flat),
            "roc_auc_classes": int(np.isfinite(auc).sum()),
            "average_precision_macro": _defined_mean(ap),
            "average_precision_micro": average_precision(*flat),
            "average_precision_classes": int(np.isfinite(ap).sum()),
        }
        if self.by_class:
            found["by_class"] = [
                {
                    "class": c,
                    "name": class_names[c] if class_names and c < len(class_names) else None,
                    "positives": int(self.positive[:, c].sum()),
                    "predicted": int(predicted[:, c].sum()),
                    "loss": float(self.class_loss[c] / rows) if rows else math.nan,
                    "roc_auc": float(auc[c]),
                    "average_precision": float(ap[c]),
                }
                for c in range(classes)
            ]
        return found


def _defined_mean(values: np.ndarray) -> float:
    """The mean over the finite values (the classes where a metric is defined); NaN if none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def whole_batch_refusal(spec: LossSpec, targets: Sequence[np.ndarray | None]) -> str | None:
    """scikit-learn's log_loss refuses labels of a single class: checked over
    the whole batch (every file of it), not one part."""
    if spec.convention != "sklearn" or spec.reduction not in ("mean", "sum"):
        return None
    if any(t is None for t in targets) or len(np.unique(np.concatenate([np.ravel(t) for t in targets]))) >= 2:
        return None
    return "sklearn.metrics.log_loss refuses labels of a single class (it needs both 0 and 1) (--convention sklearn)"


def binary_cross_entropy(
    scores: np.ndarray,
    target: np.ndarray,
    *,
    weight: np.ndarray | Sequence[float] | None = None,
    pos_weight: float | np.ndarray | Sequence[float] | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    input: InputKind = "logits",
    convention: str = "torch",
    sample_weight: np.ndarray | Sequence[float] | None = None,
    threshold: float = 0.5,
    focal_gamma: float | None = None,
    focal_alpha: float | None = None,
    dtype: str | None = None,
    keep_rows: bool = True,
    metrics: bool = False,
    by_class: bool = False,
    locate_logits: Locate = row_number,
    locate_labels: Locate = row_number,
    part: bool = False,
    spec: LossSpec | None = None,
) -> Result:
    """Binary (one score per row: shape (N,) or (N, 1)) or multi-label (N, C)
    cross-entropy, with targets of the same shape in [0, 1].

    `weight`: for one score, two class weights (negative, positive) that
    scale each row by w[y], as Keras' class_weight; for C classes, torch's
    per-class weight. `pos_weight` (torch, logits): one number or one per
    class. `threshold` turns p(positive) into the predicted class. The
    per-row numbers of a multi-label batch are the sums over its classes
    (their means under Keras, its per-sample loss). `focal_gamma` makes it
    the focal loss (Keras' or optax's), `focal_alpha` its class balance.
    `metrics` adds ROC AUC, average precision, the Brier score and
    calibration for one score per row; for several, per-class ROC AUC and
    average precision with their macro and micro means (and with `by_class`
    each class's positives, predictions and loss)."""
    if spec is None:
        spec = LossSpec(input, reduction, -100, label_smoothing, convention, dtype, "binary", focal_gamma, focal_alpha)
    spec.check()
    x = widened(np.asarray(scores))
    math_dtype = np.dtype(spec.dtype) if spec.dtype else compute_dtype(x.dtype)
    x = x.reshape(len(x), -1) if x.ndim else x.reshape(1, 1)
    if x.ndim != 2:
        raise XentError(f"binary scores must be (rows,) or (rows, classes), got shape {np.shape(scores)}")
    rows, classes = x.shape
    y = np.asarray(target)
    if y.dtype.kind not in "biuf":
        raise XentError(f"binary labels must be 0/1, booleans or probabilities, got {y.dtype}")
    if y.size != x.size:
        raise XentError(f"labels have shape {y.shape} but the scores have shape {np.shape(scores)} (one target per score)")
    y = y.reshape(rows, classes).astype(math_dtype)
    x = x.astype(math_dtype)
    _check_scores(x, spec.input, locate_logits)
    soft = _check_targets(y, spec.convention, locate_labels)
    hard = y >= 0.5  # the class each target stands for
    pos = None
    if pos_weight is not None:
        given = np.asarray(pos_weight, dtype=np.float64).reshape(-1)
        pos = checked_vector(np.repeat(given, classes) if given.size == 1 else given, classes, "--pos-weight", "classes")
    _check_convention(spec, classes, pos)
    if spec.label_smoothing:
        y = y * (1 - spec.label_smoothing) + spec.label_smoothing / 2
    if spec.focal_gamma is not None:
        elements = focal_losses(x, y, spec.input, spec.convention, spec.focal_gamma, spec.focal_alpha)
    else:
        elements = element_losses(x, y, spec.input, spec.convention, None if pos is None else pos.astype(math_dtype))
    row_weight = np.ones(rows)
    if sample_weight is not None:
        row_weight = checked_vector(sample_weight, rows, "--sample-weight", "rows").copy()
    if weight is not None:
        if classes == 1:
            w = checked_vector(weight, 2, "--weight", "classes (negative, positive) of a binary task")
            if soft:
                raise XentError("--weight for a binary task weighs rows by their class (w[y]): the targets must be 0 or 1")
            row_weight = row_weight * w[hard[:, 0].astype(np.int64)]
        else:
            w = checked_vector(weight, classes, "--weight", "classes")
            elements = elements * w.astype(math_dtype)
    # Per row: Keras' per-sample loss is the mean over the classes; torch's and
    # optax's elements are summed (so that their "sum" adds every element).
    keras = spec.convention == "keras"
    losses = (elements.astype(np.float64).mean(axis=1) if keras else elements.astype(np.float64).sum(axis=1)) * row_weight
    rule = get_convention(spec.convention).for_reduction(spec.reduction)
    by_weights = spec.convention == "sklearn" or spec.reduction == "mean-with-sample-weight"
    denominators = (row_weight if by_weights else np.ones(rows)) * (1 if keras else classes)
    weight_sum, weight_rest = math.fsum(denominators), 0.0
    total, total_rest = math.fsum(losses), 0.0
    if math.isfinite(total):  # what the rounding left out, for combine(): the split's parts hold it all but ~2^-29
        total_rest = math.fsum([*sum_split(losses), -total])
        weight_rest = math.fsum([*sum_split(denominators), -weight_sum])
    if not part:
        refused = refusal(rule, spec.reduction, rows, int(np.count_nonzero(row_weight)), weight_sum)
        if refused:
            raise XentError(refused)
        refused = whole_batch_refusal(spec, [y])
        if refused:
            raise XentError(refused)
    mean = reduced_mean(total, weight_sum, rule)
    p = probabilities(x, spec.input).astype(np.float64)
    pred = p >= threshold
    correct = int((pred == hard).all(axis=1).sum())
    kept = {}
    if keep_rows or spec.reduction == "none":
        chosen = np.where(hard, p, 1 - p)
        with np.errstate(divide="ignore"):
            log_p = np.log(chosen).mean(axis=1) if classes > 1 else np.log(chosen[:, 0])
        kept = dict(
            losses=losses.astype(math_dtype),
            log_p_target=log_p.astype(math_dtype),
            pred=pred.astype(np.int64).reshape(rows) if classes == 1 else pred.sum(axis=1),
            target=hard.astype(np.int64).reshape(rows) if classes == 1 else hard.sum(axis=1),
            ignored_mask=np.zeros(rows, dtype=bool),
            row_weights=denominators,
            scores=p.reshape(rows) if classes == 1 else None,
        )
    warnings = []
    if spec.input == "logits" and x.size > 1 and x.min() >= 0 and x.max() <= 1:
        warnings.append(
            "every score lies in [0, 1]: they look like probabilities, and the sigmoid will be applied "
            "to them again (use --input probs if they are)"
        )
    binary_metrics = None
    if metrics and classes == 1:
        binary_metrics = BinaryMetrics(p.reshape(rows), hard.reshape(rows), row_weight, threshold)
    elif metrics:
        class_loss = (elements.astype(np.float64) * row_weight[:, np.newaxis]).sum(axis=0)
        binary_metrics = BinaryMetrics(p, hard, row_weight, threshold, class_loss, by_class)
    return Result(
        reduction=spec.reduction,
        sum=total,
        mean=mean,
        weight_sum=weight_sum,
        rows=rows,
        classes=classes,
        shape=(rows,),
        ignored=0,
        correct=correct,
        soft=soft,
        dtype=str(math_dtype),
        convention=spec.convention,
        spec=spec,
        warnings=tuple(warnings),
        binary=binary_metrics,
        sum_rest=total_rest,
        weight_sum_rest=weight_rest,
        **kept,
    )

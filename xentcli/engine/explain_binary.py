"""The step-by-step derivation of one row's loss in the sigmoid family, as data.

Per element (the row's one score, or its score for each class of a
multi-label row): the score x, |x|, e^-|x| (≤ 1: it cannot overflow),
log1p(e^-|x|), log σ(x) = min(x, 0) - log1p(e^-|x|) and log σ(-x), p = σ(x),
the loss -[y log σ(x) + (1 - y) log σ(-x)]; for probabilities the convention's
clamp or clip of log p and log(1 - p); the focal factor and the weights;
then the same value by a second route (torch's (1 - y) x + log1p(e^-|x|) +
max(-x, 0) for logits; log1p(-p) for log(1 - p) otherwise), torch's
own value for the row under --convention torch, and how the row enters the
batch. The steps are computed here in float64, apart from the engine, whose
value for the row is kept beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bfloat16 import widened
from ..conventions import KERAS_EPSILON
from .explain import batch_place, resolve_row
from .sigmoid import TORCH_LOG_FLOOR
from .spec import InputKind, Result


@dataclass(frozen=True)
class BinaryExplanation:
    """One row of a binary or multi-label batch, taken apart; arrays hold one
    value per class (one for a binary row)."""

    row: int
    rows: int
    where: str
    task: str
    input: InputKind
    convention: str
    class_names: tuple[str, ...] | None  # a binary row's two (negative, positive), or the multi-label classes
    scores: np.ndarray  # x, or p as given
    target: np.ndarray  # y as given
    smoothed: np.ndarray | None  # y (1 - ε) + ε/2 under Keras' label smoothing
    label_smoothing: float
    abs_scores: np.ndarray | None  # logits, the stable route: |x|
    exp_neg_abs: np.ndarray | None  # e^-|x|
    log1p_term: np.ndarray | None  # log1p(e^-|x|)
    log_p: np.ndarray  # log σ(x), or log p as the convention clamps or clips it
    log_q: np.ndarray  # log σ(-x), or log(1 - p) likewise
    p: np.ndarray  # p(positive)
    pos_weight: np.ndarray | None
    focal_gamma: float | None
    focal_alpha: float | None
    cross_entropy: np.ndarray  # each class's cross-entropy, before the focal factor and the weights
    focal_factor: np.ndarray | None  # (1 - p_t)^γ, times α_t with α
    class_weight: np.ndarray | None  # multi-label: torch's per-class weight
    elements: np.ndarray  # each class's loss, weighted as above
    row_weight: float | None  # binary: w[y] (Keras' class_weight)
    sample_weight: float | None
    loss: float
    second_route: float
    torch_loss: float | None
    engine_loss: float
    reduction: str
    batch_loss: float
    batch_sum: float
    weight_sum: float
    share: float
    rank: int

    @property
    def classes(self) -> int:
        return len(self.scores)

    @property
    def y(self) -> np.ndarray:
        """The targets the loss uses (smoothed, if so)."""
        return self.target if self.smoothed is None else self.smoothed

    @property
    def stable(self) -> bool:
        """Whether the loss was taken from the logits by the stable log-sigmoid."""
        return self.abs_scores is not None

    def class_name(self, index: int) -> str:
        names = self.class_names
        return names[index] if names and index < len(names) else str(index)


def explain_binary_row(
    scores: np.ndarray,
    target: np.ndarray,
    result: Result,
    row: int,
    *,
    weight: np.ndarray | None = None,
    pos_weight: np.ndarray | None = None,
    sample_weight: float | None = None,
    class_names: tuple[str, ...] | None = None,
    where: str | None = None,
) -> BinaryExplanation:
    """Take row `row` of a binary or multi-label batch apart; `result` is the
    engine's result for the batch, whose spec says how the loss is defined."""
    spec = result.spec
    position = resolve_row(row, result.rows)
    x = widened(np.asarray(scores)).reshape(result.rows, -1)[position].astype(np.float64)
    given = np.asarray(target).reshape(result.rows, -1)[position].astype(np.float64)
    classes = len(x)
    eps = spec.label_smoothing
    y = given * (1 - eps) + eps / 2 if eps else given
    pw = None
    if pos_weight is not None:
        pw = np.broadcast_to(np.asarray(pos_weight, dtype=np.float64).reshape(-1), (classes,)).copy()
    keras, focal = spec.convention == "keras", spec.focal_gamma is not None
    stable = spec.input == "logits" and spec.convention != "sklearn" and not (keras and focal)
    abs_x = exp_neg = log1p_term = None
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if stable:
            abs_x = np.abs(x)
            exp_neg = np.exp(-abs_x)
            log1p_term = np.log1p(exp_neg)
            log_p, log_q = np.minimum(x, 0) - log1p_term, np.minimum(-x, 0) - log1p_term
            p = np.exp(log_p)
            # The second route, as torch writes it: (1 - y) x + (1 + (pw - 1) y) (log1p(e^-|x|) + max(-x, 0)).
            weighted = 1.0 if pw is None else 1 + (pw - 1) * y
            second = (1 - y) * x + weighted * (log1p_term + np.maximum(-x, 0))
        else:
            p = 1 / (1 + np.exp(-x)) if spec.input == "logits" else x
            # torch clamps each log at -100; Keras and scikit-learn clip p first
            torch_rule = spec.convention == "torch"
            bound = 0.0 if torch_rule else KERAS_EPSILON if keras else float(np.finfo(np.dtype(result.dtype)).eps)
            floor = TORCH_LOG_FLOOR if torch_rule else -np.inf
            clipped = np.clip(p, bound, 1 - bound)
            log_p, log_q = np.maximum(np.log(clipped), floor), np.maximum(np.log(1 - clipped), floor)
            # The second route: log(1 - p) as log1p(-p).
            second = -(y * log_p + (1 - y) * np.maximum(np.log1p(-clipped), floor))
        positive = y if pw is None else pw * y
        cross_entropy = elements = -(positive * log_p + (1 - y) * log_q)
    factor = None
    if focal:
        if keras:
            one_minus_pt = 1 - (y * p + (1 - y) * (1 - p))
        else:
            one_minus_pt = (1 - y) * p + y * np.exp(log_q)
        factor = one_minus_pt ** spec.focal_gamma
        if spec.focal_alpha is not None:
            factor = factor * (spec.focal_alpha * y + (1 - spec.focal_alpha) * (1 - y))
        elements, second = factor * elements, factor * second
    class_weight = row_weight = None
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        if classes == 1:
            row_weight = float(w[int(given[0] >= 0.5)])
        else:
            class_weight = w
            elements, second = elements * w, second * w
    scale = (1.0 if row_weight is None else row_weight) * (1.0 if sample_weight is None else sample_weight)

    def row_loss(values: np.ndarray) -> float:
        return float((values.mean() if keras else values.sum()) * scale)

    return BinaryExplanation(
        row=position,
        rows=result.rows,
        where=where or f"row {position}",
        task=spec.task,
        input=spec.input,
        convention=spec.convention,
        class_names=class_names,
        scores=x,
        target=given,
        smoothed=y if eps else None,
        label_smoothing=eps,
        abs_scores=abs_x,
        exp_neg_abs=exp_neg,
        log1p_term=log1p_term,
        log_p=log_p,
        log_q=log_q,
        p=p,
        pos_weight=pw,
        focal_gamma=spec.focal_gamma,
        focal_alpha=spec.focal_alpha,
        cross_entropy=cross_entropy,
        focal_factor=factor,
        class_weight=class_weight,
        elements=elements,
        row_weight=row_weight,
        sample_weight=sample_weight,
        loss=row_loss(elements),
        second_route=row_loss(second),
        torch_loss=_torch_row_loss(x, given, spec.input, class_weight, pw, scale) if spec.convention == "torch" else None,
        **batch_place(result, position),
    )


def _torch_row_loss(x, y, input: InputKind, weight, pos_weight, scale: float) -> float | None:
    """torch's binary_cross_entropy(_with_logits) for this row alone, summed over its classes."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    scores, target = torch.from_numpy(x), torch.from_numpy(y)
    w = None if weight is None else torch.from_numpy(weight)
    if input == "logits":
        pw = None if pos_weight is None else torch.from_numpy(pos_weight)
        value = F.binary_cross_entropy_with_logits(scores, target, weight=w, pos_weight=pw, reduction="sum")
    else:
        value = F.binary_cross_entropy(scores, target, weight=w, reduction="sum")
    return float(value) * scale

"""The step-by-step derivation of one row's loss, as data.

Each step of the derivation by hand is a field: the logits, their max m, x - m,
e^(x - m) and its sum, the softmax, log p of the target, the loss; then the
same value by the second route (log_softmax, then NLL), torch's own value
for the row when torch is installed, and how the row enters the batch. The
steps are computed here in float64, independently of the engine, and the
engine's value for the row is kept beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conventions import departures
from ..conventions import get as get_convention
from ..errors import XentError
from ..readers import class_name
from .backends import NumpyOps
from .logprobs import log_probs, sum_tolerance
from .rows import ClassRows
from .spec import InputKind, Result
from .transforms import transformed


@dataclass(frozen=True)
class Explanation:
    """One row of a batch, taken apart."""

    row: int
    index: tuple[int, ...]
    rows: int
    where: str
    input: InputKind
    class_names: tuple[str, ...] | None
    target: int
    soft_labels: np.ndarray | None
    ignored: bool
    ignore_index: int
    logits: np.ndarray
    max: float | None
    shifted: np.ndarray | None
    exp: np.ndarray | None
    sum_exp: float | None
    log_sum_exp: float
    softmax: np.ndarray
    log_softmax: np.ndarray
    log_p_target: float
    nll: float
    weight: np.ndarray | None
    label_smoothing: float
    smoothing_term: float | None
    soft_terms: np.ndarray | None
    loss: float
    base_loss: float
    row_weight: float | None
    second_route: float
    torch_loss: float | None
    engine_loss: float
    reduction: str
    batch_loss: float
    batch_sum: float
    weight_sum: float
    share: float
    rank: int
    convention: str = "torch"
    sample_weight: float | None = None
    torch_batch_loss: float | None = None
    departures: tuple[str, ...] = ()
    given_logits: np.ndarray | None = None  # the logits as the file holds them, when transformed
    z_term: float | None = None  # PaLM's z-loss of the row, in `loss`
    softcap: float | None = None
    temperature: float | None = None
    z_loss: float = 0.0
    tokens: bool = False  # the class names are a vocabulary (--vocab): shown with their ids

    @property
    def target_weight(self) -> float:
        return 1.0 if self.weight is None else float(self.weight[self.target])

    @property
    def weights_inside(self) -> np.ndarray | None:
        """The class weights that enter the loss term by term (torch's way), if any."""
        return self.weight if get_convention(self.convention).class_weights == "per-class" else None

    @property
    def classes(self) -> int:
        return len(self.logits)

    def class_name(self, index: int) -> str:
        if self.tokens:
            return f"{index} {self.class_names[index]}" if index < len(self.class_names) else str(index)
        return class_name(self.class_names, index)


def batch_place(result: Result, position: int) -> dict[str, Any]:
    """How a row enters its batch: the engine's loss for it, the batch's reduced
    loss, sum and weight sum, the row's share of the sum and its rank by loss."""
    losses, total = result.losses, result.sum
    engine_loss = float(losses[position])
    return dict(
        engine_loss=engine_loss,
        reduction=result.reduction,
        batch_loss=result.sum if result.reduction == "sum" else result.mean,
        batch_sum=total,
        weight_sum=result.weight_sum,
        share=engine_loss / total if total and math.isfinite(total) else math.nan,
        rank=int((losses > losses[position]).sum()) + 1,
    )


def resolve_row(row: int, rows: int) -> int:
    """A 0-based row, negative from the end as in Python; out of range is an error."""
    if not -rows <= row < rows:
        raise XentError(f"--row {row} is out of range: the batch has {rows} rows (0..{rows - 1}, or -{rows}..-1)")
    return row % rows


def explain_row(
    logits: np.ndarray,
    target: np.ndarray,
    result: Result,
    row: int,
    *,
    class_axis: int = 1,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    input: InputKind = "logits",
    class_names: tuple[str, ...] | None = None,
    where: str | None = None,
    convention: str = "torch",
    sample_weight: float | None = None,
    torch_batch_loss: float | None = None,
    vocabulary: tuple[str, ...] | None = None,
) -> Explanation:
    """Take row `row` of a batch apart; `result` is the engine's result for the batch.

    Under another `convention` the row's loss follows that library (see
    conventions.py); `torch_batch_loss` is then torch's value for the batch,
    shown beside it. `vocabulary` names the classes as a language model's
    tokens (shown with their ids; it may be shorter than the classes)."""
    rule = get_convention(convention)
    position = resolve_row(row, result.rows)
    rows = ClassRows(logits, class_axis)
    given = rows.take([position])[0].astype(np.float64)
    x = transformed(NumpyOps(), result.spec, given)  # soft-capping, temperature (transforms.py)
    classes = len(x)
    soft = result.soft
    q = ClassRows(target, class_axis).take([position])[0].astype(np.float64) if soft else None
    t = int(result.target[position])
    ignored = bool(result.ignored_mask[position])
    w = None if weight is None else np.asarray(weight, dtype=np.float64)

    class_weights = np.ones(classes) if w is None else w
    smoothed = None if q is None else q * (1 - label_smoothing) + label_smoothing / classes

    per_row_weight = w is not None and rule.class_weights == "per-row"
    # Keras sums one-hot × log-softmax over every class: 0 × -inf is NaN.
    as_logits = input == "logits" or (input == "log-probs" and rule.log_probs == "log-softmax")
    one_hot_nan = bool(
        rule.one_hot_nan and as_logits and q is None and not label_smoothing and not ignored
        and (np.delete(x, t) == -np.inf).any()
    )
    inside = np.ones(classes) if per_row_weight else class_weights

    # The whole row's loss is scaled by w[target] (conventions with per-row
    # class weights) and by the row's sample weight.
    weight_class = int(np.argmax(smoothed)) if smoothed is not None else t
    row_weight = float(class_weights[weight_class]) if per_row_weight and 0 <= weight_class < classes else None
    scale = (1.0 if row_weight is None else row_weight) * (1.0 if sample_weight is None else sample_weight)

    def base_loss(log_probs: np.ndarray) -> float:
        """The row's loss from a vector of log-probabilities, before the per-row scaling."""
        if smoothed is not None:
            return float(-(inside * smoothed * log_probs).sum())
        if ignored:
            return 0.0
        if one_hot_nan:
            return math.nan
        value = -inside[t] * log_probs[t]
        if label_smoothing:
            value = (1 - label_smoothing) * value + label_smoothing / classes * -(inside * log_probs).sum()
        return float(value)

    top = shifted = exps = sum_exp = None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if input == "logits":
            top = float(x.max())
            shifted = x - top
            exps = np.exp(shifted)
            sum_exp = float(exps.sum())
            log_sum_exp = math.log(sum_exp)
            log_p = shifted - log_sum_exp  # the steps: (x - m) - log sum e^(x - m)
            log_softmax = x - (top + log_sum_exp)  # the second route: x - logsumexp(x)
        else:  # probabilities or log-probabilities, as the convention takes them (loss.log_probs)
            dtype = np.dtype(result.dtype)
            row = log_probs(NumpyOps(), x[np.newaxis], input, rule, dtype, sum_tolerance(dtype))
            log_p = (row.s - np.reshape(row.lse, (-1, 1)))[0]
            log_sum_exp = 0.0
            log_softmax = log_p
        softmax = np.exp(log_p)
        log_p_target = float(log_p[t]) if 0 <= t < classes else math.nan
        z_term = None
        if result.spec.z_loss and not ignored:  # PaLM's z-loss, added to the row's loss (terms.py)
            z_term = result.spec.z_loss * (top + log_sum_exp) ** 2
        unscaled = base_loss(log_p) + (z_term or 0.0)
        loss, second_route = unscaled * scale, (base_loss(log_softmax) + (z_term or 0.0)) * scale
        smoothing_term = float(-(inside * log_p).sum()) if label_smoothing and q is None else None
        soft_terms = None if smoothed is None else -inside * smoothed * log_p

    return Explanation(
        row=position,
        index=rows.index(position),
        rows=result.rows,
        where=where or f"row {position}",
        input=input,
        class_names=vocabulary or class_names,
        tokens=vocabulary is not None,
        target=t,
        soft_labels=q,
        ignored=ignored,
        ignore_index=ignore_index,
        logits=x,
        given_logits=None if x is given else given,
        z_term=z_term,
        max=top,
        shifted=shifted,
        exp=exps,
        sum_exp=sum_exp,
        log_sum_exp=log_sum_exp,
        softmax=softmax,
        log_softmax=log_p,
        log_p_target=log_p_target,
        nll=-log_p_target,
        weight=w,
        label_smoothing=label_smoothing,
        smoothing_term=smoothing_term,
        soft_terms=soft_terms,
        loss=loss,
        base_loss=unscaled,
        row_weight=row_weight,
        second_route=second_route,
        torch_loss=_plus(_torch_row_loss(x, q, t, w, ignore_index, label_smoothing, input, log_softmax), z_term),
        **batch_place(result, position),
        convention=rule.name,
        softcap=result.spec.softcap,
        temperature=result.spec.temperature,
        z_loss=result.spec.z_loss,
        sample_weight=sample_weight,
        torch_batch_loss=torch_batch_loss,
        departures=tuple(
            departures(
                rule.for_reduction(result.reduction), input, w is not None, bool(label_smoothing),
                sample_weight is not None, result.ignored == result.rows, result.dtype, one_hot_nan,
            )
        ),
    )


def _plus(value: float | None, term: float | None) -> float | None:
    return value if value is None or term is None else value + term


def _torch_row_loss(x, q, t, w, ignore_index, label_smoothing, input, log_softmax) -> float | None:
    """torch's CrossEntropyLoss for this row alone (reduction none), if torch is installed.

    For probabilities and log-probabilities torch is given log p, which its
    log_softmax leaves as it is: that is nll_loss, as torch users compute it.
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    scores = torch.from_numpy(np.ascontiguousarray(x if input == "logits" else log_softmax))[None]
    if q is not None:
        target = torch.from_numpy(q)[None]
    else:
        target = torch.tensor([t])
    value = F.cross_entropy(
        scores,
        target,
        weight=None if w is None else torch.from_numpy(w),
        ignore_index=ignore_index if q is None else -100,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return float(value[0])

"""The task's per-row loss: softmax cross-entropy, as torch's cross_entropy
defines it, for class-index targets (with ignore_index) and soft targets.

Class weights enter here (torch weighs each class's term), and label
smoothing of soft targets (torch mixes them before the loss: terms.py);
additive terms, per-row class weights, sample weights and the mask come
after, in block.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .logprobs import LogP, Ops, log_probs
from .terms import smoothed_targets


@dataclass(frozen=True)
class TaskRows:
    """One block's per-row numbers, before terms and row weights."""

    loss: Any
    log_p: Any  # log p(target); for soft targets, of the class with the most mass
    target: Any  # the targets as given (ignore_index included), or argmax q
    index: Any  # a class index per row, safe to index with (ignored rows: 0)
    kept: Any  # rows that count (not ignored)
    pred: Any
    top: Any  # the row max of x (NaN for a row holding one)
    log_p_rule: LogP
    off_sum: Any = None  # rows (of probabilities or soft labels) that do not sum to 1


def softmax_cross_entropy(ops: Ops, spec: Any, x: Any, t: Any, q: Any, w: Any) -> TaskRows:
    """-Σ_c w_c q_c log p_c per row (soft targets `q`), or -w_t log p_t (class indices `t`)."""
    pred, top = ops.row_argmax(x)
    rule = log_probs(ops, x, spec.input, spec.convention, spec.dtype, spec.tolerance, top)
    s, lse = rule.s, rule.lse
    if q is not None:
        off_sum = ops.abs(ops.row_sum(q) - 1) > spec.tolerance
        q = smoothed_targets(spec, q)
        mass = q if w is None else q * w
        target = q.argmax(1)
        loss = lse * ops.row_sum(mass) - ops.rowdot(mass, s)
        return TaskRows(loss, ops.pick(s, target) - lse, target, target, ops.all_true(len(target)),
                        pred, top, rule, off_sum)
    kept = t != spec.ignore_index
    safe = ops.where(kept, t, 0)
    log_p = ops.pick(s, safe) - lse
    loss = -log_p if w is None else -log_p * w[safe]
    return TaskRows(loss, log_p, t, safe, kept, pred, top, rule, rule.off_sum)


# The per-row loss of each task; the sigmoid family joins here.
TASKS = {"multiclass": softmax_cross_entropy}

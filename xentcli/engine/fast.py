"""The fast path, tried for each block before the reference path (softmax.py).

It covers the common case, class-index targets on plain logits with no term
and no metric, and gives the same numbers as the reference path: log p is
x_t - max - log Σ e^(x - max), with the shifted values never kept (exp runs
in place on one scratch copy). Anything else returns None, and the block
takes the reference path."""

from __future__ import annotations

from typing import Any

from .logprobs import Ops, log_probs
from .softmax import TaskRows


def applies(spec: Any, q: Any) -> bool:
    return q is None and spec.input == "logits" and not spec.label_smoothing and spec.metrics is None


def softmax_cross_entropy(ops: Ops, spec: Any, x: Any, t: Any, q: Any, w: Any) -> TaskRows | None:
    if not applies(spec, q):
        return None
    pred, top = ops.row_argmax(x)
    rule = log_probs(ops, x, spec.input, spec.convention, spec.dtype, spec.tolerance, top, full=False)
    kept = t != spec.ignore_index
    safe = ops.where(kept, t, 0)
    log_p = (ops.pick(x, safe) - top) - rule.lse
    loss = -log_p if w is None else -log_p * w[safe]
    return TaskRows(loss, log_p, t, safe, kept, pred, top, rule)


FAST = {"multiclass": softmax_cross_entropy}

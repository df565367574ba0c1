"""The one home of the log-probability rule: what log p is, per row, for each
kind of input (logits, probabilities, log-probabilities) under each
convention, with the rows no loss can use. The engine, ``softmax``, the
value checks and explain all call ``log_probs``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..conventions import KERAS_EPSILON, Convention
from ..conventions import get as get_convention
from .backends import NumpyOps, TorchOps
from .spec import InputKind

Ops = Union[NumpyOps, TorchOps]


@dataclass(frozen=True)
class LogP:
    """log p = s - lse per row, as the input kind and the convention define it."""

    s: Any  # None: x - top, left implicit (plain index targets on logits)
    lse: Any
    exp: Any = None  # e^s, when s is x's log-softmax shift (for the metrics)
    softmax: bool = False  # s - lse is x's log_softmax (logits, or log-probs taken as logits)
    bad: Any = None  # rows that are not probabilities / log-probabilities
    off_sum: Any = None  # rows that do not sum to 1


def log_probs(
    ops: Ops, x: Any, kind: InputKind, rule: Convention, dtype: np.dtype, tolerance: float,
    top: Any = None, full: bool = True,
) -> LogP:
    """The log-probabilities the loss sees, per row, as s - lse: the softmax of
    logits (s = x - max); probabilities cleaned and log-probabilities taken as
    each convention takes them. With the rows it cannot use (`bad`) and those
    that do not sum to 1 (`off_sum`). The one home of this rule: the engine,
    `softmax`, the checks and explain all call it. `top` is the row max, when
    known; without `full`, plain logits keep s implicit (x - top, exp in place)."""
    if top is None:
        top = ops.row_max(x)
    eps = float(np.finfo(dtype).eps)
    if kind == "logits" or (kind == "log-probs" and rule.log_probs == "log-softmax"):
        bad = (top > tolerance) if kind == "log-probs" else None
        if not full:
            return LogP(None, ops.log(ops.row_sum(ops.exp_shifted(x, top))), softmax=True)
        s = x - top[:, None]
        e = ops.exp(s)
        lse = ops.log(ops.row_sum(e))
        off_sum = None if bad is None else ops.abs(ops.exp(top + lse) - 1) > tolerance
        return LogP(s, lse, e, True, bad, off_sum)
    if kind == "probs":
        bad = (ops.row_min(x) < 0) | (top > 1)
        row_sum = ops.row_sum(x)
        off_sum = ops.abs(row_sum - 1) > tolerance
        if rule.probs == "clip":
            return LogP(ops.log(ops.clip(x, eps, 1 - eps)), 0.0, bad=bad, off_sum=off_sum)
        if rule.probs == "normalize-clip":
            s = ops.log(ops.clip(x / row_sum[:, None], KERAS_EPSILON, 1 - KERAS_EPSILON))
            return LogP(s, 0.0, bad=bad, off_sum=off_sum)
        return LogP(ops.log(x), ops.log(row_sum), bad=bad, off_sum=off_sum)
    bad = top > tolerance
    if rule.log_probs == "exp-clip":
        probabilities = ops.exp(x)
        off_sum = ops.abs(ops.row_sum(probabilities) - 1) > tolerance
        return LogP(ops.log(ops.clip(probabilities, eps, 1 - eps)), 0.0, bad=bad, off_sum=off_sum)
    return LogP(x, 0.0, bad=bad, off_sum=ops.abs(ops.row_sum(ops.exp(x)) - 1) > tolerance)


def softmax(block: np.ndarray, kind: InputKind = "logits", convention: str = "torch") -> np.ndarray:
    """The probability of each class, per row, as the loss sees it (convention included)."""
    block = np.asarray(block)
    dtype = block.dtype if block.dtype.kind == "f" else np.dtype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rows = log_probs(NumpyOps(), block, kind, get_convention(convention), dtype, sum_tolerance(dtype))
        if rows.exp is not None:
            return rows.exp / rows.exp.sum(axis=1, keepdims=True)
        return np.exp(rows.s - np.reshape(rows.lse, (-1, 1)))


def sum_tolerance(dtype: np.dtype) -> float:
    """How far from 1 a row of probabilities may sum, for this dtype."""
    return max(1e-6, math.sqrt(np.finfo(dtype).eps))

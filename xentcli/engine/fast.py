"""The fast paths, tried for each block before the reference path (softmax.py).

Both cover the common case, class-index targets on logits with no additive
term, and give the reference path's numbers:

- the fused C kernel (`_kernel.c`, built with the package where a compiler
  is found): each row read once, on vectors, the GIL released; its
  per-row numbers are written straight into the batch's arrays, and the
  metrics, when asked for, are gathered beside it from numpy's softmax;
- else numpy, without metrics: log p is x_t - max - log Σ e^(x - max), with
  the shifted values never kept (exp runs in place on one scratch copy).

Anything else takes the reference path, block by block."""

from __future__ import annotations

from typing import Any

import numpy as np

from .logprobs import Ops, log_probs
from .metrics import block_totals
from .softmax import TaskRows

try:
    from .. import _kernel
except ImportError:  # built without a C compiler: numpy does it all
    _kernel = None


# Bytes of logits per block on the kernel's path: it keeps no temporaries, so a
# block is sized for the Python per block (~30 us) to vanish: (2K x 50K)
# float64 took 74 ms in blocks of 4 MiB, 60 ms in blocks of 16 MiB
# (benchmarks/bench.py, 2 threads). At most 64K rows, as numpy's.
FUSED_BLOCK_BYTES = 1 << 24
FUSED_BLOCK_ROWS = 1 << 16


def block_rows(classes: int, itemsize: int) -> int:
    return max(1, min(FUSED_BLOCK_ROWS, FUSED_BLOCK_BYTES // max(classes * itemsize, 1)))


def applies(spec: Any, q: Any) -> bool:
    return q is None and spec.input == "logits" and not spec.label_smoothing and spec.metrics is None


def fused_applies(ops: Ops, spec: Any, soft: bool) -> bool:
    """Whether the batch's blocks go through the C kernel (the settings are the
    batch's). The metrics do not stop it: its per-row numbers are the ones
    reported whatever the output, and the metrics' sums come beside them."""
    return (
        _kernel is not None
        and ops.name == "numpy"
        and spec.task == "multiclass"
        and not soft
        and spec.input == "logits"
        and not spec.label_smoothing
        and not spec.z_loss
        and not spec.convention.one_hot_nan  # Keras's NaN rows: the reference path finds them
        and spec.dtype in (np.float32, np.float64)
        and spec.classes < 2**31  # the kernel's lanes count classes in 32 bits
    )


def fused(
    ops: Ops, spec: Any, x: np.ndarray, t: np.ndarray, w: np.ndarray | None, sample_w: np.ndarray | None,
    out: dict[str, np.ndarray],
) -> dict[str, Any]:
    """One block through the C kernel: its totals; the per-row numbers go into
    `out`'s arrays (when the batch keeps them). The metrics' sums, when asked
    for, take the kernel's losses and predictions and numpy's softmax."""
    x = np.ascontiguousarray(x)
    if spec.metrics is not None and not out:
        out = {"loss": np.empty(len(x), spec.dtype), "pred": np.empty(len(x), np.int64)}
    loss_sum, loss_error, correct, bad = _kernel.rows(
        x, t, spec.ignore_index, w, sample_w, out.get("loss"), out.get("log_p_target"), out.get("pred")
    )
    totals = {"loss": loss_sum, "loss_error": loss_error, "correct": correct, "bad": bad, "off_sum": 0,
              "one_hot_nan": 0}
    if spec.metrics is not None:
        rule = log_probs(ops, x, "logits", spec.convention, spec.dtype, spec.tolerance)
        kept = t != spec.ignore_index
        totals.update(block_totals(
            ops, spec.metrics, x=x, shifted=rule.s, exp=rule.exp, lse=rule.lse, target=t, kept=kept,
            correct=(out["pred"] == t) & kept, loss=out["loss"], input="logits",
        ))
    return totals


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

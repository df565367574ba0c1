"""One pass over the blocks of a batch: each block's per-row numbers and
its totals, the blocks spread over the CPU's cores (numpy releases the GIL
in its ufuncs) or streamed through the device in order (torch).

A block goes: transforms (transforms.py), the task's per-row loss (the fast
path when it applies, else the reference: softmax.py), the additive terms
(terms.py), then the convention's per-row class weights, the sample
weights and the ignore mask; its sums are kept for the totals and the
metrics (metrics.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conventions import Convention
from . import terms
from . import fast
from .logprobs import Ops
from .metrics import MetricOptions, block_totals
from .metrics import layout as metric_layout
from .rows import ClassRows
from .softmax import TASKS
from .spec import InputKind, Progress
from .transforms import prepare


@dataclass(frozen=True)
class BlockSpec:
    """The options that shape the per-row math."""

    input: InputKind
    dtype: np.dtype
    ignore_index: int
    label_smoothing: float
    classes: int
    tolerance: float
    keep_rows: bool
    metrics: MetricOptions | None
    convention: Convention
    task: str = "multiclass"
    softcap: float | None = None
    temperature: float | None = None
    z_loss: float = 0.0


def _one_hot_nan(x: Any, target: Any, kept: Any, ops: Ops) -> Any:
    """Rows where Keras's sum of one-hot × log-softmax meets 0 × -inf: a -inf
    logit in a class other than the target."""
    masked = (x == -math.inf).sum(1)
    return kept & (masked > (ops.pick(x, target) == -math.inf))


def block(
    ops: Ops, spec: BlockSpec, x: Any, t: Any, q: Any, w: Any, sample_w: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(block totals, per-row values) for one block of rows.

    `t` holds class indices, or `q` soft labels; `w` the class weights and
    `sample_w` the rows' sample weights, or None. The totals count what the
    checks (checks.py) must look at: rows whose values no loss can use
    ("bad"), rows that do not sum to 1, and rows Keras's one-hot sum makes NaN.
    """
    per_row_weights = w is not None and spec.convention.class_weights == "per-row"
    if per_row_weights:
        w, class_w = None, w  # the loss is computed unweighted, then scaled per row
    rows = fast.FAST[spec.task](ops, spec, x, t, q, w) or TASKS[spec.task](ops, spec, x, t, q, w)
    loss = terms.add(ops, spec, rows, w, soft=q is not None)
    if per_row_weights:
        loss = loss * class_w[rows.index]
    bad = ~ops.isfinite(rows.top)
    if rows.log_p_rule.bad is not None:
        bad = bad | rows.log_p_rule.bad
    one_hot_nan = None
    log_p, correct = rows.log_p, rows.pred == rows.target
    if q is None:
        if spec.convention.one_hot_nan and not spec.label_smoothing and rows.log_p_rule.softmax:
            one_hot_nan = _one_hot_nan(x, rows.index, rows.kept, ops)
            loss = ops.where(one_hot_nan, math.nan, loss)
        loss = ops.where(rows.kept, loss, 0.0)
        log_p = ops.where(rows.kept, log_p, math.nan)
        correct = correct & rows.kept
    reported = terms.parts(ops, spec, rows)
    if sample_w is not None:
        loss = loss * sample_w
        reported = {name: part * sample_w for name, part in reported.items()}
    total, rounding = ops.sum_split(loss)
    totals = {
        "loss": total,
        "loss_error": rounding,
        "correct": correct.sum(),
        "bad": bad.sum(),
        "off_sum": 0 if rows.off_sum is None else rows.off_sum.sum(),
        "one_hot_nan": 0 if one_hot_nan is None else one_hot_nan.sum(),
        **{name: ops.sum64(ops.where(rows.kept, part, 0.0)) for name, part in reported.items()},
    }
    if spec.metrics is not None:
        rule = rows.log_p_rule
        totals.update(
            block_totals(
                ops, spec.metrics, x=x, shifted=rule.s, exp=rule.exp, lse=rule.lse, target=rows.target,
                kept=rows.kept, correct=correct, loss=loss, input="logits" if rule.softmax else spec.input,
            )
        )
    per_row = {"loss": loss, "log_p_target": log_p, "pred": rows.pred} if spec.keep_rows else {}
    if spec.keep_rows and q is not None:
        per_row["target"] = rows.target  # index targets are known already
    return totals, per_row


def run_blocks(
    ops: Ops,
    spec: BlockSpec,
    rows: ClassRows,
    flat_target: np.ndarray | None,
    soft_rows: ClassRows | None,
    weights: np.ndarray | None,
    sample_weights: np.ndarray | None,
    progress: Progress | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every block through `block`: (totals per block, per-row arrays), on the host."""
    fused = fast.fused_applies(ops, spec, soft_rows is not None)
    sizing = fast if fused and spec.metrics is None else ops  # the metrics' temporaries want small blocks
    spans = rows.spans(sizing.block_rows(spec.classes, spec.dtype.itemsize))
    shapes = {name: ("int64", 1) for name in ("correct", "bad", "off_sum", "one_hot_nan")}
    shapes["loss"] = ("float64", 1)
    shapes["loss_error"] = ("float64", 1)  # what the block's sum left out (the kernel's compensation): fsum'd with "loss"
    shapes.update({name: ("float64", 1) for name, (active, _) in terms.PARTS.items() if active(spec)})
    if spec.metrics is not None:
        shapes.update(metric_layout(spec.metrics, spec.classes))
    totals = {
        name: ops.empty(len(spans) if width == 1 else (len(spans), width), dtype)
        for name, (dtype, width) in shapes.items()
    }
    # Per-row numbers are kept in the dtype they were computed in.
    kinds = {"loss": str(spec.dtype), "log_p_target": str(spec.dtype), "pred": "int64"}
    if soft_rows is not None:
        kinds["target"] = "int64"
    per_row = {name: ops.empty(len(rows), kind) for name, kind in kinds.items()} if spec.keep_rows else {}
    w = None if weights is None else ops.vector(weights, spec.dtype)
    targets = None if flat_target is None else ops.vector(flat_target, "int64")
    row_weights = None if sample_weights is None else ops.vector(sample_weights, spec.dtype)

    def run(k: int) -> None:
        start, raw = rows.block(spans[k])
        stop = start + len(raw)
        x = prepare(ops, spec, raw)
        if soft_rows is not None:
            q, t = ops.load(soft_rows.block(spans[k])[1], spec.dtype, channel="soft"), None
        else:
            q, t = None, targets[start:stop]
        sample_w = None if row_weights is None else row_weights[start:stop]
        if fused:
            out = {name: values[start:stop] for name, values in per_row.items()}
            block_sums, block_rows = fast.fused(ops, spec, x, t, w, sample_w, out), {}
        else:
            block_sums, block_rows = block(ops, spec, x, t, q, w, sample_w)
        for name, value in block_sums.items():
            totals[name][k] = value
        for name, values in block_rows.items():
            per_row[name][start:stop] = values
        if progress is not None:
            progress(stop - start)

    threads = min(ops.threads, len(spans))
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, range(len(spans))))
    else:
        for k in range(len(spans)):
            run(k)
    return (
        {name: ops.to_host(values) for name, values in totals.items()},
        {name: ops.to_host(values) for name, values in per_row.items()},
    )

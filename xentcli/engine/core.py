"""torch's cross-entropy semantics, over a batch of any size, on numpy or torch.

Every definition follows ``torch.nn.functional.cross_entropy`` (and its C++
core, LossNLL.cpp): index targets with class weights, ``ignore_index`` and
label smoothing; soft (probability) targets; extra dimensions with the class
axis anywhere. Log-probabilities come from the row max m and
``lse = log(sum(exp(x - m)))``, so that no finite logit overflows; every sum
over rows is accumulated in float64. The blocks go through block.py; the
math is written once against a small ops interface (backends.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..conventions import Convention, refusal
from ..conventions import get as get_convention
from ..errors import XentError
from . import terms
from .backends import NumpyOps, select
from .block import BlockSpec, run_blocks
from .checks import all_ignored, check_values, looks_like_probabilities
from .logprobs import softmax, sum_tolerance
from .metrics import MetricOptions, Metrics
from .rows import ClassRows, checked_vector, index_targets, soft_argmax
from .spec import InputKind, Locate, LossSpec, Progress, Reduction, Result, rounded, row_number
from .transforms import compute_dtype, transformed


def reduced_mean(total: float, weight_sum: float, rule: Convention) -> float:
    """The reduced mean: 0/0 is NaN, except where the convention makes it 0 (Keras)."""
    if weight_sum == 0 and rule.all_ignored_is_zero:
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(total) / np.float64(weight_sum))


def row_denominators(
    rule: Convention,
    flat_target: np.ndarray | None,
    ignored_mask: np.ndarray,
    weights: np.ndarray | None,
    sample_weights: np.ndarray | None,
    dtype: np.dtype,
) -> np.ndarray | None:
    """Each position's share of what the mean divides by: its weight (0 when
    ignored); None when every kept position counts 1 (the shares are then ~ignored_mask)."""
    if rule.denominator == "count" or (sample_weights is None and (weights is None or flat_target is None)):
        return None
    kept = ~ignored_mask
    row_weight = np.ones(len(kept)) if sample_weights is None else sample_weights.copy()
    if weights is not None and flat_target is not None:
        row_weight *= weights.astype(dtype)[np.where(kept, flat_target, 0)]
    return np.where(kept, row_weight, 0.0)


def cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    weight: np.ndarray | Sequence[float] | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    input: InputKind = "logits",
    class_axis: int = 1,
    backend: str = "numpy",
    device: str = "cpu",
    dtype: str | None = None,
    sample_weight: np.ndarray | Sequence[float] | None = None,
    convention: str = "torch",
    keep_rows: bool = True,
    metrics: MetricOptions | None = None,
    progress: Progress | None = None,
    locate_logits: Locate = row_number,
    locate_labels: Locate = row_number,
    part: bool = False,
    spec: LossSpec | None = None,
) -> Result:
    """The cross-entropy loss as ``torch.nn.functional.cross_entropy`` gives it.

    `target` holds class indices (shape of the logits without the class
    axis) or class probabilities (the logits' shape). `input` says what the
    logits array holds: raw scores, probabilities or log-probabilities.
    `backend` is numpy or torch (or auto), `device` cpu, cuda or auto.
    `sample_weight` scales each position's loss; `convention` picks the
    library whose definition is followed (torch, keras, sklearn, optax:
    conventions.py says how they differ; where scikit-learn raises, so does
    this). `reduction="mean-with-sample-weight"` is Keras's reduction of that
    name (the sum over the sum of the row weights), with convention="keras".
    With `keep_rows=False` only the totals are kept (memory stays bounded
    for any number of rows). `metrics` asks for the metrics around the loss
    (calibration, entropy, top-k, per class: metrics.py). `progress` is
    called with the number of rows done after each block. `locate_logits` /
    `locate_labels` turn a flat position into the place named in error
    messages (a file and line, say). `part` says that this batch is one file
    of several: the checks of the whole batch (scikit-learn's refusals) wait
    for `combine`. `spec`, when given, holds the settings that shape the
    number (input, reduction, ignore_index, label_smoothing, convention,
    dtype) in place of those keywords.
    """
    if spec is None:
        spec = LossSpec(input, reduction, ignore_index, label_smoothing, convention, dtype)
    spec.check()
    input, reduction, ignore_index = spec.input, spec.reduction, spec.ignore_index
    label_smoothing, convention, dtype = spec.label_smoothing, spec.convention, spec.dtype
    logits = logits if hasattr(logits, "shape") else np.asarray(logits)  # an array, or a streamed text matrix
    target = target if hasattr(target, "shape") else np.asarray(target)
    math_dtype = np.dtype(dtype) if dtype else compute_dtype(logits.dtype)
    rows = ClassRows(logits, class_axis)
    if rows.classes == 0:
        raise XentError("the logits have no classes")
    weights = checked_vector(weight, rows.classes, "--weight", "classes")
    if weights is not None and spec.z_loss:
        raise XentError("--z-loss with --weight: neither PaLM nor T5X defines how class weights meet the z-loss")
    soft = target.shape == logits.shape and target.dtype.kind == "f"
    if target.shape == logits.shape and not soft and logits.ndim > 1:
        raise XentError(f"labels of the logits' shape are soft labels and must be probabilities (floats), got {target.dtype}")
    if soft:
        if ignore_index >= 0:
            raise XentError("--ignore-index cannot be used with soft labels (as in torch)")
    elif target.shape != rows.shape and not (logits.ndim == 1 and target.size == 1):
        hint = ""
        if logits.ndim > 2 and target.shape == logits.shape[:-1]:
            hint = "; for (batch, seq, vocab) logits, say --class-axis -1"
        raise XentError(
            f"labels have shape {target.shape} but the logits need {rows.shape} "
            f"(one label per row) or {logits.shape} (soft labels){hint}"
        )
    rule = get_convention(convention)
    # scikit-learn's label indicator matrices (0/1, one-hot or not) are soft labels to the math.
    indicator = soft and not rule.soft_labels and bool(np.isin(target, (0.0, 1.0)).all())
    rule.check(label_smoothing, soft and not indicator, rows.classes, reduction)
    flat_target = None if soft else index_targets(target, rows, ignore_index, locate_labels)
    soft_rows = ClassRows(target, class_axis) if soft else None
    sample_weights = checked_vector(sample_weight, len(rows), "--sample-weight", "rows")
    ops = select(backend, device, logits.nbytes)
    tolerance = sum_tolerance(math_dtype)
    keep = keep_rows or reduction == "none"
    math_spec = BlockSpec(
        input, math_dtype, ignore_index, label_smoothing, rows.classes, tolerance, keep, metrics, rule,
        softcap=spec.softcap, temperature=spec.temperature, z_loss=spec.z_loss,
    )
    # Masked (-inf) classes and bad values run through the math as NaN/inf;
    # _check_values then names the first bad row.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        totals, per_row = run_blocks(ops, math_spec, rows, flat_target, soft_rows, weights, sample_weights, progress)
    found = check_values(math_spec, rows, totals, soft_rows, locate_logits)
    first_block = next(rows.blocks(max(1, 65536 // rows.classes)), (0, np.empty((0, rows.classes))))[1]
    if input == "logits" and looks_like_probabilities(first_block, tolerance):
        found.append(
            "the logits' first rows lie in [0, 1] and sum to 1: they look like probabilities, "
            "and softmax will be applied to them again (use --input probs if they are)"
        )

    count = len(rows)
    ignored_mask = np.zeros(count, dtype=bool) if soft else flat_target == ignore_index
    ignored = int(ignored_mask.sum())
    reducing = rule.for_reduction(reduction)
    weighted_target = flat_target
    if soft and weights is not None and reducing.class_weights == "per-row" and reducing.denominator == "weights":
        weighted_target = soft_argmax(soft_rows)  # Keras's class_weight takes argmax q as the class
    denominators = row_denominators(reducing, weighted_target, ignored_mask, weights, sample_weights, math_dtype)
    if denominators is None:  # each kept position counts 1
        weight_sum, weighted = float(count - ignored), count - ignored
    else:  # numpy's sum, as the libraries divide by theirs (scikit-learn's np.average: its result, its refusals)
        weight_sum, weighted = float(denominators.sum(dtype=np.float64)), int(np.count_nonzero(denominators))
    refused = None if part else refusal(rule, reduction, count - ignored, weighted, weight_sum)
    if refused:
        raise XentError(refused)
    total, total_rest = rounded([*totals["loss"], *totals.get("loss_error", ())])
    mean = reduced_mean(total, weight_sum, rule)
    if count and ignored == count and not part:
        found.append(all_ignored(count, mean, rule))
    rows_kept = {}
    if keep:
        rows_kept = dict(
            losses=per_row["loss"],
            log_p_target=per_row["log_p_target"],
            pred=per_row["pred"],
            target=per_row["target"] if soft else flat_target,
            ignored_mask=ignored_mask,
            row_weights=(~ignored_mask).astype(np.float64) if denominators is None else denominators,
        )
    return Result(
        reduction=reduction,
        sum=total,
        mean=mean,
        weight_sum=weight_sum,
        rows=count,
        classes=rows.classes,
        shape=rows.shape,
        ignored=ignored,
        correct=int(totals["correct"].sum()),
        soft=soft,
        backend=ops.name,
        device=ops.device,
        device_name=ops.device_name,
        dtype=str(math_dtype),
        convention=rule.name,
        warnings=tuple(found),
        metrics=None if metrics is None else Metrics.from_totals(totals, metrics, count - ignored),
        spec=spec,
        parts={name: math.fsum(totals[name]) for name in terms.PARTS if name in totals},
        sum_rest=total_rest,
        **rows_kept,
    )


def rows_at(
    logits: np.ndarray,
    target: np.ndarray,
    positions: Sequence[int],
    spec: LossSpec,
    *,
    class_axis: int = 1,
    weight: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    backend: str = "numpy",
    device: str = "cpu",
) -> tuple[Result, np.ndarray]:
    """The per-row numbers of the chosen positions, and their probabilities,
    under the same settings as the whole batch: a row's numbers do not depend
    on the other rows, so a table can show some rows without keeping them all."""
    rows = ClassRows(logits, class_axis)
    dtype = np.dtype(spec.dtype) if spec.dtype else compute_dtype(logits.dtype)
    chosen = rows.take(positions).astype(dtype)
    if len(np.shape(target)) and np.shape(target) == tuple(np.shape(logits)) and len(np.shape(logits)) > 1:
        chosen_target = ClassRows(target, class_axis).take(positions)
    else:
        chosen_target = np.asarray(target).reshape(-1)[positions]
    result = cross_entropy(
        chosen,
        chosen_target,
        weight=weight,
        sample_weight=None if sample_weight is None else np.asarray(sample_weight)[positions],
        backend=backend,
        device=device,
        spec=replace(spec, reduction="none", dtype=str(dtype)),
    )
    return result, softmax(transformed(NumpyOps(), spec, chosen), spec.input, spec.convention)



def combine(results: Sequence[Result]) -> Result:
    """One result for batches read one after another, as if they were one file.

    Sums and counts add up; the mean divides the total by the total weight.
    Per-row arrays are joined when every result kept them.
    """
    first = results[0]
    sigmoid = first.spec.task != "multiclass"  # there soft targets are values between 0 and 1, not another layout

    def kind(result: Result) -> tuple:
        return result.classes, sigmoid or result.soft, result.dtype, result.convention, result.spec.task

    for result in results[1:]:
        if kind(result) != kind(first):
            raise XentError(
                f"the files do not match: {first.classes} classes, {first.dtype}"
                f"{', soft labels' if first.soft else ''} in the first, "
                f"{result.classes} classes, {result.dtype}{', soft labels' if result.soft else ''} in another"
            )
    total, total_rest = rounded([r.sum for r in results] + [r.sum_rest for r in results])
    weight_sum, weight_rest = rounded([r.weight_sum for r in results] + [r.weight_sum_rest for r in results])
    rows = sum(r.rows for r in results)
    rule = get_convention(first.convention)
    counted = rows - sum(r.ignored for r in results)
    refused = refusal(rule, first.reduction, counted, counted if weight_sum else 0, weight_sum)
    if sigmoid:
        from .sigmoid import whole_batch_refusal

        refused = refused or whole_batch_refusal(first.spec, [r.target for r in results])
    if refused:
        raise XentError(refused)
    mean = reduced_mean(total, weight_sum, rule)
    arrays = {}
    if all(r.losses is not None for r in results):
        names = ("losses", "log_p_target", "pred", "target", "ignored_mask", "row_weights")
        arrays = {name: np.concatenate([getattr(r, name) for r in results]) for name in names}
        if all(r.scores is not None for r in results):
            arrays["scores"] = np.concatenate([r.scores for r in results])
    if all(r.binary is not None for r in results):
        arrays["binary"] = sum((r.binary for r in results[1:]), results[0].binary)
    return Result(
        reduction=first.reduction,
        sum=total,
        mean=mean,
        weight_sum=weight_sum,
        rows=rows,
        classes=first.classes,
        shape=(rows,),
        ignored=sum(r.ignored for r in results),
        correct=sum(r.correct for r in results),
        soft=any(r.soft for r in results),
        backend=first.backend,
        device=first.device,
        device_name=first.device_name,
        dtype=first.dtype,
        convention=first.convention,
        warnings=tuple(w for r in results for w in r.warnings),
        metrics=_add_metrics(results),
        spec=first.spec,
        parts={name: math.fsum(r.parts[name] for r in results) for name in first.parts},
        sum_rest=total_rest,
        weight_sum_rest=weight_rest,
        **arrays,
    )


def _add_metrics(results: Sequence[Result]) -> Metrics | None:
    if any(r.metrics is None for r in results):
        return None
    total = results[0].metrics
    for result in results[1:]:
        total = total + result.metrics
    return total

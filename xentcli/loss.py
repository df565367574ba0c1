"""torch's cross-entropy semantics on numpy arrays, one block of rows at a time.

Every definition here follows ``torch.nn.functional.cross_entropy`` (and its
C++ core, LossNLL.cpp): index targets with class weights, ``ignore_index``
and label smoothing; soft (probability) targets; extra dimensions with the
class axis anywhere. Log-probabilities are formed from the shifted logits
``s = x - max(x)`` and ``lse = log(sum(exp(s)))`` so that no finite logit
overflows; every sum over rows is accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np

from .backends import NumpyOps, TorchOps, select
from .errors import XentError

Ops = Union[NumpyOps, TorchOps]

InputKind = Literal["logits", "probs", "log-probs"]
Reduction = Literal["mean", "sum", "none"]
INPUT_KINDS = ("logits", "probs", "log-probs")
REDUCTIONS = ("mean", "sum", "none")

Locate = Callable[[int], str]


def _row_number(position: int) -> str:
    return f"row {position}"


@dataclass(frozen=True)
class Result:
    """A reduced loss and the per-position numbers behind it.

    Positions are the rows of the batch, flattened over any extra
    dimensions (``shape`` gives their original layout). For soft labels
    ``target`` is the class with the most probability mass.
    """

    reduction: Reduction
    sum: float
    mean: float
    weight_sum: float
    classes: int
    shape: tuple[int, ...]
    target: np.ndarray
    pred: np.ndarray
    log_p_target: np.ndarray
    losses: np.ndarray
    ignored_mask: np.ndarray
    soft: bool
    backend: str = "numpy"
    device: str = "cpu"
    device_name: str | None = None
    dtype: str = "float64"
    warnings: tuple[str, ...] = field(default=())

    @property
    def loss(self) -> float | None:
        """The reduced loss; None for ``reduction="none"`` (see ``losses``)."""
        if self.reduction == "none":
            return None
        return self.mean if self.reduction == "mean" else self.sum

    @property
    def rows(self) -> int:
        return len(self.losses)

    @property
    def ignored(self) -> int:
        return int(self.ignored_mask.sum())

    @property
    def p_target(self) -> np.ndarray:
        return np.exp(self.log_p_target)

    @property
    def correct(self) -> np.ndarray:
        return (self.pred == self.target) & ~self.ignored_mask

    @property
    def accuracy(self) -> float:
        counted = self.rows - self.ignored
        return float(self.correct.sum()) / counted if counted else math.nan

    @property
    def perplexity(self) -> float:
        with np.errstate(over="ignore"):
            return float(np.exp(self.mean))


class ClassRows:
    """An array seen as (positions, classes), whatever axis holds the classes.

    Blocks are produced lazily so that a memory-mapped file is read a block
    at a time and never loaded whole.
    """

    def __init__(self, array: np.ndarray, class_axis: int = 1) -> None:
        if array.ndim == 0:
            raise XentError("logits must have at least one dimension (the classes)")
        if array.ndim == 1:
            array = array[np.newaxis]
            class_axis = 1
        if not -array.ndim <= class_axis < array.ndim:
            raise XentError(
                f"class axis {class_axis} is out of range for an array of {array.ndim} dimensions"
            )
        axis = class_axis % array.ndim
        if axis == 0:
            array, axis = np.ascontiguousarray(np.moveaxis(array, 0, -1)), array.ndim - 1
        self.array = array
        self.axis = axis
        self.classes = array.shape[axis]
        self.shape: tuple[int, ...] = array.shape[:axis] + array.shape[axis + 1 :]
        self.positions = math.prod(self.shape)
        # Positions covered by one index along axis 0.
        self.per_lead = self.positions // array.shape[0] if array.shape[0] else 1

    def __len__(self) -> int:
        return self.positions

    def _lead_block(self, start: int, stop: int) -> np.ndarray:
        block = self.array[start:stop]
        if self.axis != block.ndim - 1:
            block = np.moveaxis(block, self.axis, -1)
        return block.reshape(-1, self.classes)

    def blocks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first position, block of about `rows` positions × classes)."""
        step = max(1, rows // max(self.per_lead, 1))
        for lead in range(0, self.array.shape[0], step):
            yield lead * self.per_lead, self._lead_block(lead, lead + step)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The rows at the given flat positions, as a (len, classes) array."""
        out = [
            self._lead_block(p // self.per_lead, p // self.per_lead + 1)[p % self.per_lead]
            for p in np.asarray(positions, dtype=np.int64).reshape(-1)
        ]
        return np.array(out).reshape(-1, self.classes)

    def index(self, position: int) -> tuple[int, ...]:
        """The full index (n, d1, ..., dk) of a flat position."""
        return tuple(int(i) for i in np.unravel_index(position, self.shape))


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the math runs in: float16 (and smaller) is upcast to float32."""
    if not np.issubdtype(dtype, np.floating):
        raise XentError(f"logits must be floating point, got {dtype}")
    return np.dtype(np.float32) if dtype.itemsize < 4 else np.dtype(dtype)


def log_softmax_parts(ops: Ops, x: Any, kind: InputKind, dtype: np.dtype) -> tuple[Any, Any, Any]:
    """(s, lse, top) with log p = s - lse[:, None] and top the row max of x.

    For logits s is x minus its row max, so exp(s) <= 1 cannot overflow;
    probabilities are clipped to [eps, 1 - eps] (scikit-learn's log_loss).
    """
    top = ops.row_max(x)
    if kind == "logits":
        shifted = x - top[:, None]
        return shifted, ops.log(ops.exp(shifted).sum(1)), top
    if kind == "probs":
        eps = float(np.finfo(dtype).eps)
        return ops.log(ops.clip(x, eps, 1 - eps)), 0.0, top
    return x, 0.0, top


def softmax(block: np.ndarray, kind: InputKind = "logits") -> np.ndarray:
    """The probability of each class, per row, as the loss sees it."""
    block = np.asarray(block)
    shifted, lse, _ = log_softmax_parts(NumpyOps(), block, kind, block.dtype)
    return np.exp(shifted - np.reshape(lse, (-1, 1)))


def _index_targets(
    target: np.ndarray, rows: ClassRows, ignore_index: int, locate: Locate
) -> np.ndarray:
    flat = np.asarray(target).reshape(-1)
    if flat.dtype.kind == "f":
        whole = np.isfinite(flat) & (flat == np.round(flat))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise XentError(f"label {flat[bad]!r} is not a class index (an integer)", locate(bad))
    elif flat.dtype.kind not in "biu":
        raise XentError(f"class-index labels must be integers, got {flat.dtype}")
    flat = flat.astype(np.int64, copy=False)
    out_of_range = ((flat < 0) | (flat >= rows.classes)) & (flat != ignore_index)
    if out_of_range.any():
        bad = int(np.flatnonzero(out_of_range)[0])
        raise XentError(
            f"label {flat[bad]} is out of range for {rows.classes} classes "
            f"(0..{rows.classes - 1}, or the ignore index {ignore_index})",
            locate(bad),
        )
    return flat


def _weights(weight: np.ndarray | list[float] | None, classes: int) -> np.ndarray | None:
    if weight is None:
        return None
    weights = np.asarray(weight, dtype=np.float64).reshape(-1)
    if len(weights) != classes:
        raise XentError(f"--weight has {len(weights)} values but there are {classes} classes")
    if not np.isfinite(weights).all():
        raise XentError("--weight values must be finite numbers")
    return weights


def _check_values(
    kind: InputKind, rows: ClassRows, per_row: dict[str, np.ndarray], tolerance: float, locate: Locate
) -> list[str]:
    """Fail on values no loss can use; return warnings for doubtful ones."""
    top = per_row["top"]
    if not np.isfinite(top).all():
        position = int(np.flatnonzero(~np.isfinite(top))[0])
        values = rows.take([position])[0]
        if np.isnan(values).any():
            what = "NaN"
        elif np.isposinf(values).any():
            what = "+inf"
        else:
            what = "-inf in every class (no class left)"
        raise XentError(f"{kind} contain {what}", locate(position))
    found = []
    if kind == "probs":
        outside = (per_row["low"] < 0) | (top > 1)
        if outside.any():
            raise XentError(
                "probabilities must lie in [0, 1] (use --input logits for raw scores)",
                locate(int(np.flatnonzero(outside)[0])),
            )
        off = np.abs(per_row["sum"] - 1) > tolerance
        if off.any():
            found.append(
                f"{int(off.sum())} of {len(off)} rows of probabilities do not sum to 1 "
                f"(first: {locate(int(np.flatnonzero(off)[0]))}); they are used as given"
            )
    if kind == "log-probs" and (top > tolerance).any():
        raise XentError(
            "log-probabilities must be <= 0 (use --input logits for raw scores)",
            locate(int(np.flatnonzero(top > tolerance)[0])),
        )
    if "soft_sum" in per_row:
        off = int((np.abs(per_row["soft_sum"] - 1) > tolerance).sum())
        if off:
            found.append(f"{off} of {len(top)} soft-label rows do not sum to 1; they are used as given, as torch does")
    return found


def _looks_like_probabilities(block: np.ndarray, tolerance: float) -> bool:
    """The classic double-softmax mistake: 'logits' that are already probabilities."""
    block = np.asarray(block, dtype=np.float64)
    return bool(
        len(block)
        and block.min() >= 0
        and block.max() <= 1
        and (np.abs(block.sum(axis=1) - 1) <= tolerance).all()
    )


@dataclass(frozen=True)
class _Spec:
    """The options that shape the per-row math."""

    input: InputKind
    dtype: np.dtype
    ignore_index: int
    label_smoothing: float
    classes: int


def _block_values(ops: Ops, spec: _Spec, x: Any, t: Any, q: Any, w: Any) -> dict[str, Any]:
    """The per-row values of one block: loss, log p(target), prediction and
    the row statistics that _check_values needs. `t` holds class indices, or
    `q` the soft labels; `w` the class weights or None."""
    shifted, lse, top = log_softmax_parts(ops, x, spec.input, spec.dtype)
    out = {"top": top, "pred": x.argmax(1)}
    if spec.input == "probs":
        out.update(low=ops.row_min(x), sum=x.sum(1))
    smoothing = spec.label_smoothing / spec.classes
    if q is not None:
        out["soft_sum"] = q.sum(1)
        if spec.label_smoothing:
            q = q * (1 - spec.label_smoothing) + smoothing
        mass = q if w is None else q * w
        heaviest = q.argmax(1)
        out.update(
            loss=lse * mass.sum(1) - ops.rowdot(mass, shifted),
            target=heaviest,
            log_p_target=ops.pick(shifted, heaviest) - lse,
        )
        return out
    kept = t != spec.ignore_index
    safe = ops.where(kept, t, 0)
    log_p = ops.pick(shifted, safe) - lse
    loss = -log_p if w is None else -log_p * w[safe]
    if spec.label_smoothing:
        if w is None:
            smooth = lse * spec.classes - shifted.sum(1)
        else:
            smooth = lse * w.sum() - shifted @ w
        loss = (1 - spec.label_smoothing) * loss + smoothing * smooth
    out.update(loss=ops.where(kept, loss, 0.0), log_p_target=ops.where(kept, log_p, math.nan))
    return out


def _per_row_values(
    ops: Ops,
    spec: _Spec,
    rows: ClassRows,
    flat_target: np.ndarray | None,
    soft_rows: ClassRows | None,
    weights: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Run every block through _block_values; the per-row arrays, on the host."""
    dtype = str(spec.dtype)
    kinds = {"loss": "float64", "log_p_target": "float64", "pred": "int64", "top": dtype}
    if soft_rows is not None:
        kinds.update(target="int64", soft_sum=dtype)
    if spec.input == "probs":
        kinds.update(low=dtype, sum=dtype)
    per_row = {name: ops.empty(len(rows), kind) for name, kind in kinds.items()}
    w = None if weights is None else ops.vector(weights, spec.dtype)
    block_rows = ops.block_rows(spec.classes, spec.dtype.itemsize)
    soft_blocks = soft_rows.blocks(block_rows) if soft_rows is not None else None
    targets = None if flat_target is None else ops.vector(flat_target, "int64")
    for start, raw in rows.blocks(block_rows):
        stop = start + len(raw)
        x = ops.load(raw, spec.dtype)
        if soft_blocks is not None:
            q, t = ops.load(next(soft_blocks)[1], spec.dtype, channel="soft"), None
        else:
            q, t = None, targets[start:stop]
        for name, values in _block_values(ops, spec, x, t, q, w).items():
            per_row[name][start:stop] = values
    return {name: ops.to_host(values) for name, values in per_row.items()}


def cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    weight: np.ndarray | list[float] | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    input: InputKind = "logits",
    class_axis: int = 1,
    backend: str = "numpy",
    device: str = "cpu",
    dtype: str | None = None,
    locate_logits: Locate = _row_number,
    locate_labels: Locate = _row_number,
) -> Result:
    """The cross-entropy loss as ``torch.nn.functional.cross_entropy`` gives it.

    `target` holds class indices (shape of the logits without the class
    axis) or class probabilities (the logits' shape). `input` says what the
    logits array holds: raw scores, probabilities or log-probabilities.
    `backend` is numpy or torch (or auto), `device` cpu, cuda or auto.
    `locate_logits` / `locate_labels` turn a flat position into the place
    named in error messages (a file and line, say).
    """
    if reduction not in REDUCTIONS:
        raise XentError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if input not in INPUT_KINDS:
        raise XentError(f"input must be one of {', '.join(INPUT_KINDS)}, got {input!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise XentError(f"label smoothing must lie in [0, 1], got {label_smoothing}")
    logits = logits if isinstance(logits, np.ndarray) else np.asarray(logits)
    target = target if isinstance(target, np.ndarray) else np.asarray(target)
    math_dtype = np.dtype(dtype) if dtype else compute_dtype(logits.dtype)
    rows = ClassRows(logits, class_axis)
    if rows.classes == 0:
        raise XentError("the logits have no classes")
    weights = _weights(weight, rows.classes)
    soft = target.shape == logits.shape and target.dtype.kind == "f"
    if soft:
        if ignore_index >= 0:
            raise XentError("--ignore-index cannot be used with soft labels (as in torch)")
    elif target.shape != rows.shape and not (logits.ndim == 1 and target.size == 1):
        raise XentError(
            f"labels have shape {target.shape} but the logits need {rows.shape} "
            f"(one label per row) or {logits.shape} (soft labels)"
        )
    flat_target = None if soft else _index_targets(target, rows, ignore_index, locate_labels)
    ops = select(backend, device, logits.nbytes)

    count, classes = len(rows), rows.classes
    spec = _Spec(input, math_dtype, ignore_index, label_smoothing, classes)
    # Masked (-inf) classes and bad values run through the math as NaN/inf;
    # _check_values then names the first bad row.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        soft_rows = ClassRows(target, class_axis) if soft else None
        host = _per_row_values(ops, spec, rows, flat_target, soft_rows, weights)
    tolerance = max(1e-6, math.sqrt(np.finfo(math_dtype).eps))
    found = _check_values(input, rows, host, tolerance, locate_logits)
    first_block = next(rows.blocks(1024), (0, np.empty((0, classes))))[1]
    if input == "logits" and _looks_like_probabilities(first_block, tolerance):
        found.append(
            "the logits' first rows lie in [0, 1] and sum to 1: they look like probabilities, "
            "and softmax will be applied to them again (use --input probs if they are)"
        )
    losses = host["loss"]
    if soft:
        ignored_mask = np.zeros(count, dtype=bool)
        target_out = host["target"]
        weight_sum = float(count)
    else:
        target_out = flat_target
        ignored_mask = flat_target == ignore_index
        kept_targets = flat_target[~ignored_mask]
        weight_sum = float(
            len(kept_targets) if weights is None else weights.astype(math_dtype)[kept_targets].sum(dtype=np.float64)
        )
    total = float(losses.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = float(np.float64(total) / np.float64(weight_sum))
    if math.isnan(mean) and count and ignored_mask.all():
        found.append(f"every one of the {count} positions is ignored: the mean is NaN, as in torch")
    return Result(
        reduction=reduction,
        sum=total,
        mean=mean,
        weight_sum=weight_sum,
        classes=classes,
        shape=rows.shape,
        target=target_out,
        pred=host["pred"],
        log_p_target=host["log_p_target"],
        losses=losses,
        ignored_mask=ignored_mask,
        soft=soft,
        backend=ops.name,
        device=ops.device,
        device_name=ops.device_name,
        dtype=str(math_dtype),
        warnings=tuple(found),
    )

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
from typing import Literal

import numpy as np

from .errors import XentError

InputKind = Literal["logits", "probs", "log-probs"]
Reduction = Literal["mean", "sum", "none"]
INPUT_KINDS = ("logits", "probs", "log-probs")
REDUCTIONS = ("mean", "sum", "none")

# Elements per block: small enough that a block's temporaries stay in cache.
BLOCK_ELEMENTS = 1 << 16

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


def log_softmax_parts(block: np.ndarray, kind: InputKind) -> tuple[np.ndarray, np.ndarray]:
    """(s, lse) with log p = s - lse[:, None], for one block of rows.

    For logits s is x minus the row max, so exp(s) <= 1 cannot overflow;
    probabilities are clipped to [eps, 1 - eps] (scikit-learn's log_loss).
    """
    if kind == "logits":
        shifted = block - block.max(axis=1, keepdims=True)
        return shifted, np.log(np.exp(shifted).sum(axis=1))
    zero = np.zeros(len(block), dtype=block.dtype)
    if kind == "probs":
        eps = np.finfo(block.dtype).eps
        return np.log(np.clip(block, eps, 1 - eps)), zero
    return block, zero


def softmax(block: np.ndarray, kind: InputKind = "logits") -> np.ndarray:
    """The probability of each class, per row, as the loss sees it."""
    shifted, lse = log_softmax_parts(block, kind)
    return np.exp(shifted - lse[:, None])


@dataclass
class _Checks:
    """What is wrong with the values of the blocks seen so far."""

    kind: InputKind
    locate: Locate
    sum_tolerance: float
    off_sum_rows: int = 0
    first_off_sum: int = -1
    all_like_probs: bool = True
    soft_off_sum_rows: int = 0

    def logits_block(self, start: int, block: np.ndarray) -> None:
        top = block.max(axis=1)
        if not np.isfinite(top).all():
            row = int(np.flatnonzero(~np.isfinite(top))[0])
            values = block[row]
            if np.isnan(values).any():
                what = "NaN"
            elif np.isposinf(values).any():
                what = "+inf"
            else:
                what = "-inf in every class (no class left)"
            raise XentError(f"{self.kind} contain {what}", self.locate(start + row))
        if self.kind == "probs":
            low = block.min(axis=1)
            if (low < 0).any() or (top > 1).any():
                row = int(np.flatnonzero((low < 0) | (top > 1))[0])
                raise XentError(
                    "probabilities must lie in [0, 1] (use --input logits for raw scores)",
                    self.locate(start + row),
                )
            self._count_off_sum(start, block.sum(axis=1, dtype=np.float64))
        elif self.kind == "log-probs":
            if (top > self.sum_tolerance).any():
                row = int(np.flatnonzero(top > self.sum_tolerance)[0])
                raise XentError(
                    "log-probabilities must be <= 0 (use --input logits for raw scores)",
                    self.locate(start + row),
                )
        elif self.all_like_probs:
            self.all_like_probs = bool(
                (top <= 1).all()
                and (block.min(axis=1) >= 0).all()
                and (np.abs(block.sum(axis=1, dtype=np.float64) - 1) <= self.sum_tolerance).all()
            )

    def _count_off_sum(self, start: int, sums: np.ndarray) -> None:
        off = np.abs(sums - 1) > self.sum_tolerance
        if off.any() and self.first_off_sum < 0:
            self.first_off_sum = start + int(np.flatnonzero(off)[0])
        self.off_sum_rows += int(off.sum())

    def soft_block(self, q: np.ndarray) -> None:
        sums = q.sum(axis=1, dtype=np.float64)
        self.soft_off_sum_rows += int((np.abs(sums - 1) > self.sum_tolerance).sum())

    def warnings(self, rows: int) -> tuple[str, ...]:
        found = []
        if self.kind == "probs" and self.off_sum_rows:
            found.append(
                f"{self.off_sum_rows} of {rows} rows of probabilities do not sum to 1 "
                f"(first: {self.locate(self.first_off_sum)}); they are used as given"
            )
        if self.kind == "logits" and self.all_like_probs and rows:
            found.append(
                "every row of the logits lies in [0, 1] and sums to 1: these look like "
                "probabilities, and softmax will be applied to them again "
                "(use --input probs if they are)"
            )
        if self.soft_off_sum_rows:
            found.append(
                f"{self.soft_off_sum_rows} of {rows} soft-label rows do not sum to 1; "
                "they are used as given, as torch does"
            )
        return tuple(found)


def _index_targets(
    target: np.ndarray, rows: ClassRows, ignore_index: int, locate: Locate
) -> np.ndarray:
    flat = np.asarray(target).reshape(-1)
    if flat.dtype.kind == "f":
        whole = np.isfinite(flat) & (flat == np.round(flat))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise XentError(f"label {flat[bad]!r} is not a class index (an integer)", locate(bad))
        flat = flat.astype(np.int64)
    elif flat.dtype.kind not in "iu":
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
    `locate_logits` / `locate_labels` turn a flat position into the place
    named in error messages (a file and line, say).
    """
    if reduction not in REDUCTIONS:
        raise XentError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if input not in INPUT_KINDS:
        raise XentError(f"input must be one of {', '.join(INPUT_KINDS)}, got {input!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise XentError(f"label smoothing must lie in [0, 1], got {label_smoothing}")
    if backend != "numpy" or device != "cpu":
        raise XentError(f"backend {backend!r} on device {device!r} is not available")
    logits = np.asarray(logits) if not isinstance(logits, np.ndarray) else logits
    target = np.asarray(target) if not isinstance(target, np.ndarray) else target
    math_dtype = np.dtype(dtype) if dtype else compute_dtype(logits.dtype)
    rows = ClassRows(logits, class_axis)
    weights = _weights(weight, rows.classes)

    soft = target.shape == logits.shape and target.dtype.kind == "f" and logits.ndim > 0
    if soft:
        if ignore_index >= 0:
            raise XentError("--ignore-index cannot be used with soft labels (as in torch)")
        soft_rows = ClassRows(target, class_axis)
        flat_target = None
    else:
        if target.shape != rows.shape and not (logits.ndim == 1 and target.size == 1):
            raise XentError(
                f"labels have shape {target.shape} but the logits need {rows.shape} "
                f"(one label per row) or {logits.shape} (soft labels)"
            )
        flat_target = _index_targets(target, rows, ignore_index, locate_labels)

    eps = np.finfo(math_dtype).eps
    checks = _Checks(input, locate_logits, sum_tolerance=max(1e-6, math.sqrt(eps)))
    count = len(rows)
    losses = np.empty(count, dtype=np.float64)
    log_p_target = np.empty(count, dtype=np.float64)
    pred = np.empty(count, dtype=np.int64)
    target_out = np.empty(count, dtype=np.int64)
    block_rows = max(1, BLOCK_ELEMENTS // max(rows.classes, 1))
    soft_blocks = soft_rows.blocks(block_rows) if soft else None
    smoothing = label_smoothing / rows.classes if rows.classes else 0.0

    for start, raw in rows.blocks(block_rows):
        block = np.asarray(raw, dtype=math_dtype)
        stop = start + len(block)
        checks.logits_block(start, block)
        shifted, lse = log_softmax_parts(block, input)
        pred[start:stop] = block.argmax(axis=1)
        span = np.arange(len(block))
        if soft_blocks is not None:
            q = np.asarray(next(soft_blocks)[1], dtype=math_dtype)
            checks.soft_block(q)
            if label_smoothing:
                q = q * (1 - label_smoothing) + smoothing
            mass = q if weights is None else q * weights.astype(math_dtype)
            with np.errstate(invalid="ignore"):
                weighted = np.einsum("ij,ij->i", mass, shifted)
            losses[start:stop] = lse * mass.sum(axis=1) - weighted
            heaviest = q.argmax(axis=1)
            target_out[start:stop] = heaviest
            log_p_target[start:stop] = shifted[span, heaviest] - lse
            continue
        t = flat_target[start:stop]
        kept = t != ignore_index
        safe_t = np.where(kept, t, 0)
        log_p = shifted[span, safe_t] - lse
        nll = -log_p if weights is None else -log_p * weights[safe_t]
        if label_smoothing:
            with np.errstate(invalid="ignore"):
                if weights is None:
                    smooth = lse * rows.classes - shifted.sum(axis=1, dtype=np.float64)
                else:
                    smooth = lse * weights.sum() - shifted.astype(np.float64) @ weights
            nll = (1 - label_smoothing) * nll + smoothing * smooth
        losses[start:stop] = np.where(kept, nll, 0.0)
        log_p_target[start:stop] = np.where(kept, log_p, np.nan)
        target_out[start:stop] = t

    if soft:
        ignored_mask = np.zeros(count, dtype=bool)
        weight_sum = float(count)
    else:
        ignored_mask = target_out == ignore_index
        kept_targets = target_out[~ignored_mask]
        weight_sum = float(
            len(kept_targets) if weights is None else weights[kept_targets].sum(dtype=np.float64)
        )
    total = float(losses.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = float(np.float64(total) / np.float64(weight_sum))
    found = checks.warnings(count)
    if math.isnan(mean) and count and ignored_mask.all():
        found += (f"every one of the {count} positions is ignored: the mean is NaN, as in torch",)
    return Result(
        reduction=reduction,
        sum=total,
        mean=mean,
        weight_sum=weight_sum,
        classes=rows.classes,
        shape=rows.shape,
        target=target_out,
        pred=pred,
        log_p_target=log_p_target,
        losses=losses,
        ignored_mask=ignored_mask,
        soft=soft,
        backend=backend,
        device=device,
        dtype=str(math_dtype),
        warnings=found,
    )

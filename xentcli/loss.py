"""torch's cross-entropy semantics, one block of rows at a time, on numpy or torch.

Every definition here follows ``torch.nn.functional.cross_entropy`` (and its
C++ core, LossNLL.cpp): index targets with class weights, ``ignore_index``
and label smoothing; soft (probability) targets; extra dimensions with the
class axis anywhere. Log-probabilities come from the row max m and
``lse = log(sum(exp(x - m)))``, so that no finite logit overflows; every sum
over rows is accumulated in float64.

The math is written once against a small ops interface (backends.py). On
numpy the blocks are spread over the CPU's cores (numpy releases the GIL in
its ufuncs); on torch they stream through the device in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Union

import numpy as np

from .backends import NumpyOps, TorchOps, select
from .choices import INPUT_KINDS, REDUCTIONS
from .conventions import KERAS_EPSILON, Convention, one_hot_nan_warning, refusal
from .conventions import get as get_convention
from .errors import XentError
from .metrics import MetricOptions, Metrics, block_totals
from .metrics import layout as metric_layout

Ops = Union[NumpyOps, TorchOps]
InputKind = Literal["logits", "probs", "log-probs"]
Reduction = Literal["mean", "sum", "none", "mean-with-sample-weight"]

Locate = Callable[[int], str]
Progress = Callable[[int], None]


def _row_number(position: int) -> str:
    return f"row {position}"


@dataclass(frozen=True)
class LossSpec:
    """Every setting that shapes the number, in one place: the library takes it,
    the Result carries it, and the JSON's options are built from it.

    The data it applies to (class weights, sample weights, the class axis)
    and where it runs (backend, device) are not part of it."""

    input: InputKind = "logits"
    reduction: Reduction = "mean"
    ignore_index: int = -100
    label_smoothing: float = 0.0
    convention: str = "torch"
    dtype: str | None = None  # None: the input's (float16 computed in float32)

    def check(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise XentError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {self.reduction!r}")
        if self.input not in INPUT_KINDS:
            raise XentError(f"input must be one of {', '.join(INPUT_KINDS)}, got {self.input!r}")
        if not 0.0 <= self.label_smoothing <= 1.0:
            raise XentError(f"label smoothing must lie in [0, 1], got {self.label_smoothing}")

    def options(self) -> dict[str, Any]:
        """The settings, as the JSON reports them, with the version of xent that computed them."""
        from . import __version__

        return {**asdict(self), "xent_version": __version__}


@dataclass(frozen=True)
class Result:
    """A reduced loss, the counts around it and, if kept, the per-position numbers.

    Positions are the rows of the batch, flattened over any extra
    dimensions (``shape`` gives their original layout). The per-position
    arrays (``losses``, ``log_p_target``, ``pred``, ``target``,
    ``ignored_mask``) are None when the engine was asked not to keep them.
    For soft labels ``target`` is the class with the most probability mass.
    """

    reduction: Reduction
    sum: float
    mean: float
    weight_sum: float
    rows: int
    classes: int
    shape: tuple[int, ...]
    ignored: int
    correct: int
    soft: bool
    backend: str = "numpy"
    device: str = "cpu"
    device_name: str | None = None
    dtype: str = "float64"
    convention: str = "torch"
    warnings: tuple[str, ...] = field(default=())
    metrics: Metrics | None = None
    losses: np.ndarray | None = None
    log_p_target: np.ndarray | None = None
    pred: np.ndarray | None = None
    target: np.ndarray | None = None
    ignored_mask: np.ndarray | None = None
    row_weights: np.ndarray | None = None  # each position's share of the mean's denominator
    spec: LossSpec = field(default_factory=LossSpec)  # the settings that made it

    @property
    def loss(self) -> float | None:
        """The reduced loss; None for ``reduction="none"`` (see ``losses``)."""
        if self.reduction == "none":
            return None
        return self.sum if self.reduction == "sum" else self.mean

    @property
    def p_target(self) -> np.ndarray | None:
        return None if self.log_p_target is None else np.exp(self.log_p_target)

    @property
    def accuracy(self) -> float:
        counted = self.rows - self.ignored
        return self.correct / counted if counted else math.nan

    @property
    def perplexity(self) -> float:
        with np.errstate(over="ignore"):
            return float(np.exp(self.mean))

    @property
    def bits(self) -> float:
        """The mean loss in bits (per sample): nats / ln 2."""
        return self.mean / math.log(2)


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
        if axis == 0:  # a strided view: blocks are copied one at a time, never the whole array
            array, axis = np.moveaxis(array, 0, -1), array.ndim - 1
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

    def spans(self, rows: int) -> list[tuple[int, int]]:
        """Blocks of about `rows` positions, as (first, last + 1) along axis 0
        (a text file parsed in chunks gives its own: one block per chunk)."""
        if hasattr(self.array, "row_spans"):
            return self.array.row_spans()
        step = max(1, rows // max(self.per_lead, 1))
        return [(lead, min(lead + step, self.array.shape[0])) for lead in range(0, self.array.shape[0], step)]

    def block(self, span: tuple[int, int]) -> tuple[int, np.ndarray]:
        """(first position, the block's rows as positions × classes)."""
        return span[0] * self.per_lead, self._lead_block(*span)

    def blocks(self, rows: int):
        """Every block of about `rows` positions, in order."""
        return (self.block(span) for span in self.spans(rows))

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


def _index_targets(
    target: np.ndarray, rows: ClassRows, ignore_index: int, locate: Locate
) -> np.ndarray:
    flat = np.asarray(target).reshape(-1)
    if flat.dtype.kind == "f":
        whole = np.isfinite(flat) & (flat == np.round(flat))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise XentError(f"label {float(flat[bad]):g} is not a class index (an integer)", locate(bad))
        huge = np.abs(flat) > 2.0**62
        if huge.any():
            bad = int(np.flatnonzero(huge)[0])
            raise XentError(f"label {float(flat[bad]):g} is out of range (far beyond any class index)", locate(bad))
    elif flat.dtype.kind == "u" and flat.dtype.itemsize == 8 and flat.size and flat.max() > np.iinfo(np.int64).max:
        bad = int(np.argmax(flat > np.iinfo(np.int64).max))
        raise XentError(f"label {int(flat[bad])} is out of range (far beyond any class index)", locate(bad))
    elif flat.dtype.kind not in "biu":
        raise XentError(f"class-index labels must be integers, got {flat.dtype}")
    flat = flat.astype(np.int64, copy=False)
    out_of_range = ((flat < 0) | (flat >= rows.classes)) & (flat != ignore_index)
    if out_of_range.any():
        bad = int(np.flatnonzero(out_of_range)[0])
        counted = flat[flat != ignore_index]
        hint = ""
        if flat[bad] == rows.classes and counted.min() >= 1:
            hint = f"; labels 1..{rows.classes}? xent counts classes from 0, as torch does"
        raise XentError(
            f"label {flat[bad]} is out of range for {rows.classes} classes "
            f"(0..{rows.classes - 1}, or the ignore index {ignore_index}){hint}",
            locate(bad),
        )
    return flat


def _checked_vector(
    values: np.ndarray | Sequence[float] | None, length: int, option: str, unit: str
) -> np.ndarray | None:
    """Class or sample weights: `length` finite numbers, or None."""
    if values is None:
        return None
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(vector) != length:
        raise XentError(f"{option} has {len(vector)} values but there are {length} {unit}")
    if not np.isfinite(vector).all():
        raise XentError(f"{option} values must be finite numbers")
    return vector




@dataclass(frozen=True)
class _Spec:
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


@dataclass(frozen=True)
class _LogP:
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
) -> _LogP:
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
            return _LogP(None, ops.log(ops.row_sum(ops.exp_shifted(x, top))), softmax=True)
        s = x - top[:, None]
        e = ops.exp(s)
        lse = ops.log(ops.row_sum(e))
        off_sum = None if bad is None else ops.abs(ops.exp(top + lse) - 1) > tolerance
        return _LogP(s, lse, e, True, bad, off_sum)
    if kind == "probs":
        bad = (ops.row_min(x) < 0) | (top > 1)
        row_sum = ops.row_sum(x)
        off_sum = ops.abs(row_sum - 1) > tolerance
        if rule.probs == "clip":
            return _LogP(ops.log(ops.clip(x, eps, 1 - eps)), 0.0, bad=bad, off_sum=off_sum)
        if rule.probs == "normalize-clip":
            s = ops.log(ops.clip(x / row_sum[:, None], KERAS_EPSILON, 1 - KERAS_EPSILON))
            return _LogP(s, 0.0, bad=bad, off_sum=off_sum)
        return _LogP(ops.log(x), ops.log(row_sum), bad=bad, off_sum=off_sum)
    bad = top > tolerance
    if rule.log_probs == "exp-clip":
        probabilities = ops.exp(x)
        off_sum = ops.abs(ops.row_sum(probabilities) - 1) > tolerance
        return _LogP(ops.log(ops.clip(probabilities, eps, 1 - eps)), 0.0, bad=bad, off_sum=off_sum)
    return _LogP(x, 0.0, bad=bad, off_sum=ops.abs(ops.row_sum(ops.exp(x)) - 1) > tolerance)


def _one_hot_nan(x: Any, target: Any, kept: Any, ops: Ops) -> Any:
    """Rows where Keras's sum of one-hot × log-softmax meets 0 × -inf: a -inf
    logit in a class other than the target."""
    masked = (x == -math.inf).sum(1)
    return kept & (masked > (ops.pick(x, target) == -math.inf))


def _block(
    ops: Ops, spec: _Spec, x: Any, t: Any, q: Any, w: Any, sample_w: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(block totals, per-row values) for one block of rows.

    `t` holds class indices, or `q` soft labels; `w` the class weights and
    `sample_w` the rows' sample weights, or None. The totals count what
    _check_values must look at: rows whose values no loss can use ("bad"),
    rows that do not sum to 1, and rows Keras's one-hot sum makes NaN.
    """
    row_weights = w is not None and spec.convention.class_weights == "per-row"
    if row_weights:
        w, class_w = None, w  # the loss is computed unweighted, then scaled per row

    pred, top = ops.row_argmax(x)  # top is NaN for a row holding one
    smoothing = spec.label_smoothing / spec.classes
    # log p = s - lse; for plain index targets on logits, s stays implicit
    # (x - top) and exp runs in place on a scratch copy.
    full = q is not None or spec.label_smoothing > 0 or spec.input != "logits" or spec.metrics is not None
    log_p_rule = log_probs(ops, x, spec.input, spec.convention, spec.dtype, spec.tolerance, top, full)
    s, e, lse, off_sum = log_p_rule.s, log_p_rule.exp, log_p_rule.lse, log_p_rule.off_sum
    bad = ~ops.isfinite(top)
    if log_p_rule.bad is not None:
        bad = bad | log_p_rule.bad
    one_hot_nan = None

    def log_p_at(index: Any) -> Any:
        return (ops.pick(x, index) - top if s is None else ops.pick(s, index)) - lse

    if q is not None:
        off_sum = ops.abs(ops.row_sum(q) - 1) > spec.tolerance
        if spec.label_smoothing:
            q = q * (1 - spec.label_smoothing) + smoothing
        mass = q if w is None else q * w
        target = q.argmax(1)
        loss = lse * ops.row_sum(mass) - ops.rowdot(mass, s)
        log_p = log_p_at(target)
        correct = pred == target
        kept = ops.all_true(len(target))
        if row_weights:
            loss = loss * class_w[target]
    else:
        target = t
        kept = t != spec.ignore_index
        safe = ops.where(kept, t, 0)
        log_p = log_p_at(safe)
        loss = -log_p if w is None else -log_p * w[safe]
        if spec.label_smoothing:
            smooth = lse * spec.classes - ops.row_sum(s) if w is None else lse * w.sum() - s @ w
            loss = (1 - spec.label_smoothing) * loss + smoothing * smooth
        if row_weights:
            loss = loss * class_w[safe]
        if spec.convention.one_hot_nan and not spec.label_smoothing and log_p_rule.softmax:
            one_hot_nan = _one_hot_nan(x, safe, kept, ops)
            loss = ops.where(one_hot_nan, math.nan, loss)
        loss = ops.where(kept, loss, 0.0)
        log_p = ops.where(kept, log_p, math.nan)
        correct = (pred == t) & kept
    if sample_w is not None:
        loss = loss * sample_w
    totals = {
        "loss": ops.sum64(loss),
        "correct": correct.sum(),
        "bad": bad.sum(),
        "off_sum": 0 if off_sum is None else off_sum.sum(),
        "one_hot_nan": 0 if one_hot_nan is None else one_hot_nan.sum(),
    }
    if spec.metrics is not None:
        totals.update(
            block_totals(
                ops, spec.metrics, x=x, shifted=s, exp=e, lse=lse, target=target, kept=kept,
                correct=correct, loss=loss, input="logits" if log_p_rule.softmax else spec.input,
            )
        )
    rows = {"loss": loss, "log_p_target": log_p, "pred": pred} if spec.keep_rows else {}
    if spec.keep_rows and q is not None:
        rows["target"] = target  # index targets are known already
    return totals, rows


def _run_blocks(
    ops: Ops,
    spec: _Spec,
    rows: ClassRows,
    flat_target: np.ndarray | None,
    soft_rows: ClassRows | None,
    weights: np.ndarray | None,
    sample_weights: np.ndarray | None,
    progress: Progress | None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every block through _block: (totals per block, per-row arrays), on the host."""
    spans = rows.spans(ops.block_rows(spec.classes, spec.dtype.itemsize))
    shapes = {name: ("int64", 1) for name in ("correct", "bad", "off_sum", "one_hot_nan")}
    shapes["loss"] = ("float64", 1)
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
        x = ops.load(raw, spec.dtype)
        if soft_rows is not None:
            q, t = ops.load(soft_rows.block(spans[k])[1], spec.dtype, channel="soft"), None
        else:
            q, t = None, targets[start:stop]
        sample_w = None if row_weights is None else row_weights[start:stop]
        block_totals, block_rows = _block(ops, spec, x, t, q, w, sample_w)
        for name, value in block_totals.items():
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


def _first_row(rows: ClassRows, dtype: np.dtype, test: Callable[[np.ndarray], np.ndarray]) -> int:
    """The first position whose row `test` flags, scanning on the host."""
    for start, raw in rows.blocks(NumpyOps().block_rows(rows.classes, dtype.itemsize)):
        with np.errstate(invalid="ignore"):
            flagged = np.flatnonzero(test(np.asarray(raw, dtype=dtype)))
        if len(flagged):
            return start + int(flagged[0])
    raise AssertionError("a flagged row was counted but not found")


def _unusable(spec: _Spec) -> Callable[[np.ndarray], np.ndarray]:
    """A test flagging the rows of a block that no loss can use (as log_probs flags them)."""

    def test(x: np.ndarray) -> np.ndarray:
        top = x.max(axis=1)
        bad = log_probs(NumpyOps(), x, spec.input, spec.convention, spec.dtype, spec.tolerance, top).bad
        return ~np.isfinite(top) if bad is None else ~np.isfinite(top) | bad

    return test


def _check_values(
    spec: _Spec, rows: ClassRows, totals: dict[str, np.ndarray], soft_rows: ClassRows | None, locate: Locate
) -> list[str]:
    """Fail on values no loss can use; return warnings for doubtful ones.

    The pass over the blocks only counted such rows; finding the first one
    (a second, host-side scan) happens here, on the rare path."""
    if totals["bad"].sum():
        position = _first_row(rows, spec.dtype, _unusable(spec))
        values = rows.take([position])[0]
        if np.isnan(values).any():
            message = f"{spec.input} contain NaN"
        elif np.isposinf(values).any():
            message = f"{spec.input} contain +inf"
        elif spec.input == "probs":
            message = "probabilities must lie in [0, 1] (use --input logits for raw scores)"
        elif spec.input == "log-probs" and values.max() > spec.tolerance:
            message = "log-probabilities must be <= 0 (use --input logits for raw scores)"
        else:
            message = f"{spec.input} contain -inf in every class (no class left)"
        raise XentError(message, locate(position))
    found = []
    nan_rows = int(totals["one_hot_nan"].sum())
    if nan_rows:
        found.append(one_hot_nan_warning(spec.convention, nan_rows, len(rows)))
    off = int(totals["off_sum"].sum())
    if not off:
        return found
    if soft_rows is not None:
        return [*found, f"{off} of {len(rows)} soft-label rows do not sum to 1; they are used as given, as torch does"]
    rule = spec.convention
    if spec.input == "probs":
        what = "rows of probabilities do not sum to 1"
        treatment = "they are used as given" if rule.probs == "clip" else f"{rule.function} divides them by their sum"
    else:
        what = "rows of log-probabilities do not sum to 1 as probabilities"
        treatment = {
            "log-softmax": f"{rule.function} takes them as logits and renormalises them (log_softmax)",
            "exp-clip": f"{rule.function} uses them as given, clipped to [eps, 1 - eps]",
        }.get(rule.log_probs, "they are used as given, as torch's nll_loss does")
    first = _first_row(rows, spec.dtype, lambda x: np.abs(_mass(x, spec) - 1) > spec.tolerance)
    return [*found, f"{off} of {len(rows)} {what} (first: {locate(first)}); {treatment}"]


def _mass(x: np.ndarray, spec: _Spec) -> np.ndarray:
    """Each row's total probability, computed as the pass over the blocks computed it."""
    if spec.input == "probs":
        return x.sum(axis=1)
    if spec.convention.log_probs == "log-softmax":  # e^(m + log Σ e^(x - m))
        top = x.max(axis=1)
        return np.exp(top + np.log(np.exp(x - top[:, None]).sum(axis=1)))
    return np.exp(x).sum(axis=1)


def _mean(total: float, weight_sum: float, rule: Convention) -> float:
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
) -> np.ndarray:
    """Each position's share of what the mean divides by: its weight, or 1 (0 when ignored)."""
    kept = ~ignored_mask
    if rule.denominator == "count":
        return kept.astype(np.float64)
    row_weight = np.ones(len(kept)) if sample_weights is None else sample_weights.copy()
    if weights is not None and flat_target is not None:
        row_weight *= weights.astype(dtype)[np.where(kept, flat_target, 0)]
    return np.where(kept, row_weight, 0.0)


def _soft_argmax(soft_rows: ClassRows) -> np.ndarray:
    """The class with the most mass in each soft-label row, block by block."""
    block_rows = NumpyOps().block_rows(soft_rows.classes, soft_rows.array.dtype.itemsize)
    return np.concatenate([block.argmax(axis=1) for _, block in soft_rows.blocks(block_rows)])


def _looks_like_probabilities(block: np.ndarray, tolerance: float) -> bool:
    """The classic double-softmax mistake: 'logits' that are already probabilities."""
    block = np.asarray(block, dtype=np.float64)
    return bool(
        len(block)
        and block.min() >= 0
        and block.max() <= 1
        and (np.abs(block.sum(axis=1) - 1) <= tolerance).all()
    )


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
    locate_logits: Locate = _row_number,
    locate_labels: Locate = _row_number,
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
    weights = _checked_vector(weight, rows.classes, "--weight", "classes")
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
    flat_target = None if soft else _index_targets(target, rows, ignore_index, locate_labels)
    soft_rows = ClassRows(target, class_axis) if soft else None
    sample_weights = _checked_vector(sample_weight, len(rows), "--sample-weight", "rows")
    ops = select(backend, device, logits.nbytes)
    tolerance = sum_tolerance(math_dtype)
    keep = keep_rows or reduction == "none"
    math_spec = _Spec(input, math_dtype, ignore_index, label_smoothing, rows.classes, tolerance, keep, metrics, rule)
    # Masked (-inf) classes and bad values run through the math as NaN/inf;
    # _check_values then names the first bad row.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        totals, per_row = _run_blocks(ops, math_spec, rows, flat_target, soft_rows, weights, sample_weights, progress)
    found = _check_values(math_spec, rows, totals, soft_rows, locate_logits)
    first_block = next(rows.blocks(max(1, 65536 // rows.classes)), (0, np.empty((0, rows.classes))))[1]
    if input == "logits" and _looks_like_probabilities(first_block, tolerance):
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
        weighted_target = _soft_argmax(soft_rows)  # Keras's class_weight takes argmax q as the class
    denominators = row_denominators(reducing, weighted_target, ignored_mask, weights, sample_weights, math_dtype)
    weight_sum = float(denominators.sum(dtype=np.float64))
    refused = None if part else refusal(rule, reduction, count - ignored, int(np.count_nonzero(denominators)), weight_sum)
    if refused:
        raise XentError(refused)
    total = math.fsum(totals["loss"])
    mean = _mean(total, weight_sum, rule)
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
            row_weights=denominators,
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
    return result, softmax(chosen, spec.input, spec.convention)


def all_ignored(count: int, mean: float, rule: Convention) -> str:
    return f"every one of the {count} positions is ignored: the mean is {mean:g}, as {rule.function} gives"


def combine(results: Sequence[Result]) -> Result:
    """One result for batches read one after another, as if they were one file.

    Sums and counts add up; the mean divides the total by the total weight.
    Per-row arrays are joined when every result kept them.
    """
    first = results[0]
    for result in results[1:]:
        if (result.classes, result.soft, result.dtype, result.convention) != (
            first.classes, first.soft, first.dtype, first.convention
        ):
            raise XentError(
                f"the files do not match: {first.classes} classes, {first.dtype}"
                f"{', soft labels' if first.soft else ''} in the first, "
                f"{result.classes} classes, {result.dtype}{', soft labels' if result.soft else ''} in another"
            )
    total = math.fsum(r.sum for r in results)
    weight_sum = math.fsum(r.weight_sum for r in results)
    rows = sum(r.rows for r in results)
    rule = get_convention(first.convention)
    counted = rows - sum(r.ignored for r in results)
    refused = refusal(rule, first.reduction, counted, counted if weight_sum else 0, weight_sum)
    if refused:
        raise XentError(refused)
    mean = _mean(total, weight_sum, rule)
    arrays = {}
    if all(r.losses is not None for r in results):
        arrays = {
            name: np.concatenate([getattr(r, name) for r in results])
            for name in ("losses", "log_p_target", "pred", "target", "ignored_mask", "row_weights")
        }
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
        soft=first.soft,
        backend=first.backend,
        device=first.device,
        device_name=first.device_name,
        dtype=first.dtype,
        convention=first.convention,
        warnings=tuple(w for r in results for w in r.warnings),
        metrics=_add_metrics(results),
        spec=first.spec,
        **arrays,
    )


def _add_metrics(results: Sequence[Result]) -> Metrics | None:
    if any(r.metrics is None for r in results):
        return None
    total = results[0].metrics
    for result in results[1:]:
        total = total + result.metrics
    return total

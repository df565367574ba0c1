"""The checks of a batch's values after the pass over its blocks: the pass
only counted the rows no loss can use and the doubtful ones; here the first
of them is found (a second, host-side scan, on the rare path) and named, and
the doubtful ones become warnings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..bfloat16 import widened
from ..conventions import Convention, one_hot_nan_warning
from ..errors import XentError
from .backends import NumpyOps
from .block import BlockSpec
from .logprobs import log_probs
from .rows import ClassRows
from .spec import Locate


def _first_row(rows: ClassRows, dtype: np.dtype, test: Callable[[np.ndarray], np.ndarray]) -> int:
    """The first position whose row `test` flags, scanning on the host."""
    for start, raw in rows.blocks(NumpyOps().block_rows(rows.classes, dtype.itemsize)):
        with np.errstate(invalid="ignore"):
            flagged = np.flatnonzero(test(np.asarray(raw, dtype=dtype)))
        if len(flagged):
            return start + int(flagged[0])
    raise AssertionError("a flagged row was counted but not found")


def _unusable(spec: BlockSpec) -> Callable[[np.ndarray], np.ndarray]:
    """A test flagging the rows of a block that no loss can use (as log_probs flags them)."""

    def test(x: np.ndarray) -> np.ndarray:
        top = x.max(axis=1)
        bad = log_probs(NumpyOps(), x, spec.input, spec.convention, spec.dtype, spec.tolerance, top).bad
        return ~np.isfinite(top) if bad is None else ~np.isfinite(top) | bad

    return test


def check_values(
    spec: BlockSpec, rows: ClassRows, totals: dict[str, np.ndarray], soft_rows: ClassRows | None, locate: Locate
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


def _mass(x: np.ndarray, spec: BlockSpec) -> np.ndarray:
    """Each row's total probability, computed as the pass over the blocks computed it."""
    if spec.input == "probs":
        return x.sum(axis=1)
    if spec.convention.log_probs == "log-softmax":  # e^(m + log Σ e^(x - m))
        top = x.max(axis=1)
        return np.exp(top + np.log(np.exp(x - top[:, None]).sum(axis=1)))
    return np.exp(x).sum(axis=1)


def looks_like_probabilities(block: np.ndarray, tolerance: float) -> bool:
    """The classic double-softmax mistake: 'logits' that are already probabilities."""
    block = np.asarray(widened(block), dtype=np.float64)
    return bool(
        len(block)
        and block.min() >= 0
        and block.max() <= 1
        and (np.abs(block.sum(axis=1) - 1) <= tolerance).all()
    )


def all_ignored(count: int, mean: float, rule: Convention) -> str:
    return f"every one of the {count} positions is ignored: the mean is {mean:g}, as {rule.function} gives"

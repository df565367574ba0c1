"""Language-model batches: next-token targets and the loss per sequence.

Labels of shape (..., T) hold one token per position; the sequence axis is
their last. `next_token_targets` makes position t's target the label at
t + 1, as Hugging Face's causal-LM loss does (it drops the last position's
logits and the first label): here the logits stay whole and each
sequence's last position gets the ignore index, so it counts nowhere, and
the memory map of the logits is read as it lies. A mask (1 keep, 0 drop, as
an attention mask) turns dropped labels into the ignore index first.

`per_sequence` splits a result's per-position numbers by sequence: each
sequence's loss is its sum over its denominator (the counted tokens, or
their weights), as the batch's mean is the batch's sum over its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import XentError
from .spec import Locate, Result, row_number


def next_token_targets(
    labels: np.ndarray, ignore_index: int = -100, mask: np.ndarray | None = None, locate_mask: Locate = row_number
) -> np.ndarray:
    """The target of each position: the next position's label (the last of each
    sequence: `ignore_index`); labels where `mask` is 0 are ignored first."""
    y = masked_targets(labels, ignore_index, mask, locate_mask)
    if y.ndim == 0 or y.dtype.kind not in "iu":
        raise XentError(f"--shift takes token ids (integers) in the labels, one per position, got {y.dtype} of shape {y.shape}")
    shifted = np.full_like(y, ignore_index)
    shifted[..., :-1] = y[..., 1:]
    return shifted


def masked_targets(
    labels: np.ndarray, ignore_index: int = -100, mask: np.ndarray | None = None, locate_mask: Locate = row_number
) -> np.ndarray:
    """The labels with those where `mask` is 0 set to `ignore_index` (a copy; token ids
    stored unsigned, as uint16 token files are, become int64 so that -100 fits)."""
    y = np.array(labels, copy=True)
    if y.dtype.kind in "iu":
        y = y.astype(np.int64)
    if mask is not None:
        if y.dtype.kind not in "iu":
            raise XentError(f"--mask ignores class indices (integers), but the labels hold {y.dtype}")
        keep = np.asarray(mask)
        if keep.shape != y.shape:
            raise XentError(f"the mask has shape {keep.shape} but the labels have {y.shape} (one 0/1 per label)")
        valid = np.isin(keep, (0, 1)) if keep.dtype.kind in "biuf" else np.zeros(keep.shape, dtype=bool)
        if not valid.all():
            where = locate_mask(int(np.flatnonzero(~valid.reshape(-1))[0]))
            raise XentError("a mask holds 1 (count) or 0 (ignore), like an attention mask", where)
        y[keep == 0] = ignore_index
    return y


@dataclass(frozen=True)
class Sequences:
    """Per sequence: counted tokens, the loss sum and its denominator."""

    tokens: np.ndarray
    sums: np.ndarray
    denominators: np.ndarray

    @property
    def losses(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.denominators > 0, self.sums / self.denominators, math.nan)

    @property
    def perplexities(self) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(self.losses)

    @property
    def mean(self) -> float:
        """The mean over the sequences that count any token (some eval harnesses report this)."""
        counted = self.denominators > 0
        return float(self.losses[counted].mean()) if counted.any() else math.nan

    def rows(self) -> list[dict[str, float | int]]:
        return [
            {"sequence": k, "tokens": int(t), "loss": float(loss), "perplexity": float(ppl)}
            for k, (t, loss, ppl) in enumerate(zip(self.tokens, self.losses, self.perplexities))
        ]


def per_sequence(result: Result) -> Sequences:
    """The result's positions grouped by sequence: every index of all but the last
    axis of the labels' shape is one sequence (a 1-D batch is one sequence)."""
    if result.losses is None:
        raise XentError("the loss per sequence needs the per-position numbers (keep_rows=True)")
    if result.spec.task != "multiclass":
        raise XentError("--per-sequence is for token-level (multiclass) batches")
    length = result.shape[-1] if result.shape else 1
    count = result.rows // max(length, 1)

    def grouped(values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(count, length).sum(axis=1)

    return Sequences(
        tokens=grouped(~result.ignored_mask).astype(np.int64),
        sums=grouped(result.losses),
        denominators=grouped(result.row_weights),
    )

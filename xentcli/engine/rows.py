"""The rows the loss is computed over: an array of any shape seen as
(positions, classes), and the targets and weight vectors checked against it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..bfloat16 import widened
from ..errors import XentError
from .backends import NumpyOps
from .spec import Locate


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
        self.classes = array.shape[axis]
        self.shape: tuple[int, ...] = array.shape[:axis] + array.shape[axis + 1 :]
        if array.ndim > 2 and axis == array.ndim - 1 and getattr(getattr(array, "flags", None), "c_contiguous", False):
            # (batch, seq, vocab) as it lies in memory: (positions, vocab), a view, so that a block
            # is a few positions, not a whole sequence of a large vocabulary
            array, axis = array.reshape(-1, self.classes), 1
        self.array = array
        self.axis = axis
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
        return widened(np.array(out)).reshape(-1, self.classes)

    def index(self, position: int) -> tuple[int, ...]:
        """The full index (n, d1, ..., dk) of a flat position."""
        return tuple(int(i) for i in np.unravel_index(position, self.shape))



def index_targets(
    target: np.ndarray, rows: ClassRows, ignore_index: int, locate: Locate
) -> np.ndarray:
    flat = np.asarray(target).reshape(-1)
    if flat.dtype.kind == "f":
        # Labels read from text are float64: the common case (finite, within
        # 2^62, whole) costs two reductions, the cast and one compare, with no
        # temporaries of the labels' size (1M labels, memory reused: 3.9 ms to 2.0).
        low, high = (flat.min(), flat.max()) if flat.size else (0.0, 0.0)
        if not (-(2.0**62) <= low and high <= 2.0**62):  # NaN, inf or a huge label somewhere: find the first
            whole = np.isfinite(flat) & (flat == np.round(flat))
            if not whole.all():
                bad = int(np.flatnonzero(~whole)[0])
                raise XentError(f"label {float(flat[bad]):g} is not a class index (an integer)", locate(bad))
            huge = np.abs(flat) > 2.0**62
            bad = int(np.flatnonzero(huge)[0])
            raise XentError(f"label {float(flat[bad]):g} is out of range (far beyond any class index)", locate(bad))
        whole = flat.astype(np.int64)  # exact below 2^62, where a float is whole when its cast is equal
        if not (whole == flat).all():
            bad = int(np.flatnonzero(whole != flat)[0])
            raise XentError(f"label {float(flat[bad]):g} is not a class index (an integer)", locate(bad))
        if low >= 0 and high < rows.classes:
            return whole
        flat = whole
    elif flat.dtype.kind == "u" and flat.dtype.itemsize == 8 and flat.size and flat.max() > np.iinfo(np.int64).max:
        bad = int(np.argmax(flat > np.iinfo(np.int64).max))
        raise XentError(f"label {int(flat[bad])} is out of range (far beyond any class index)", locate(bad))
    elif flat.dtype.kind not in "biu":
        raise XentError(f"class-index labels must be integers, got {flat.dtype}")
    flat = flat.astype(np.int64, copy=False)
    if not flat.size or (flat.min() >= 0 and flat.max() < rows.classes):
        return flat
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


def checked_vector(
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



def soft_argmax(soft_rows: ClassRows) -> np.ndarray:
    """The class with the most mass in each soft-label row, block by block."""
    block_rows = NumpyOps().block_rows(soft_rows.classes, soft_rows.array.dtype.itemsize)
    return np.concatenate([block.argmax(axis=1) for _, block in soft_rows.blocks(block_rows)])

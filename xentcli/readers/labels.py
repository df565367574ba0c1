"""Labels as class indices, by one rule for every format.

- When the class names are known and one of them is a number other than its
  own position (``--classes 1,2,3``), labels are read as names only.
- Otherwise labels that are all integers are 0-based class indices, and any
  other labels are class names, which must then be known.

So a label never changes meaning because some other label is or is not a
number. Integers too large to be a class (beyond 2^53, where float64 stops
counting exactly) are refused as written, before any conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import XentError
from .text import _fastcsv, is_integer, is_number  # _fastcsv: None without the C reader (the engine then casts)

Locate = Callable[[int], str]
EXACT = 2.0**53


def names_are_positions(class_names: Sequence[str] | None) -> bool:
    """Whether no class name is a number other than its own index (so indices and names agree)."""
    return not class_names or all(not is_number(n) or n == str(k) for k, n in enumerate(class_names))


def read_as_indices(cells: Sequence[str], class_names: Sequence[str] | None) -> bool:
    """Whether text labels are 0-based class indices (else class names), by the module's rule."""
    return names_are_positions(class_names) and all(is_integer(c) for c in cells)


def from_cells(cells: Sequence[str], class_names: Sequence[str] | None, locate: Locate) -> np.ndarray:
    """Class indices (int64) or index-valued floats from text labels, by the module's rule."""
    if read_as_indices(cells, class_names):
        values = np.array([float(c) for c in cells], dtype=np.float64)
        check_exact(values, locate, lambda row: cells[row])
        return values
    if not class_names:
        row = next(k for k, cell in enumerate(cells) if not is_integer(cell))
        what = "is not a number" if not is_number(cells[row]) else "is not a class index (an integer)"
        raise XentError(
            f"label {cells[row]!r} {what}, and the class names are unknown: "
            "give them with --classes a,b,c or a header row in the logits file",
            locate(row),
        )
    lookup = {name: index for index, name in enumerate(class_names)}
    indices = np.empty(len(cells), dtype=np.int64)
    for row, name in enumerate(cells):
        index = lookup.get(name)
        if index is None:
            rule = "" if names_are_positions(class_names) else "; the class names are numbers, so labels are read as names"
            raise XentError(f"unknown class {name!r} (known: {', '.join(class_names)}){rule}", locate(row))
        indices[row] = index
    return indices


BINARY_WORDS = {"false": 0.0, "true": 1.0}


def binary_from_cells(cells: Sequence[str], class_names: Sequence[str] | None, locate: Locate) -> np.ndarray:
    """Targets of a binary task: numbers as written (0/1, or probabilities:
    the engine checks them), true/false in any case, or the two class names
    (the second is the positive class)."""
    if all(is_number(c) for c in cells):
        return np.array([float(c) for c in cells], dtype=np.float64)
    lookup = {name: float(k) for k, name in enumerate(class_names)} if class_names else {}
    values = np.empty(len(cells), dtype=np.float64)
    for row, cell in enumerate(cells):
        value = lookup.get(cell, BINARY_WORDS.get(cell.lower()) if not class_names else None)
        if value is None:
            value = float(cell) if is_number(cell) else None
        if value is None:
            known = f"one of {', '.join(class_names)}" if class_names else "true/false"
            raise XentError(
                f"label {cell!r} is not a binary target (0 or 1, {known}); "
                "name the two classes with --classes negative,positive",
                locate(row),
            )
        values[row] = value
    return values


def as_indices(values: np.ndarray, locate: Locate, written: Callable[[int], str]) -> np.ndarray:
    """Numbers read from text as class indices: int64 when every one is whole
    and within 2^53 (the engine checks the range), else refused as written when
    too large, else float64 as they are, for the engine to name the first that
    is not whole. `values` is the reader's own: a contiguous array becomes the
    int64 one in place (1M labels: a cast into 8 MB of fresh memory and a
    compare fewer, 6-14 ms off the critical path here)."""
    if _fastcsv is not None and values.dtype == np.float64 and values.ndim == 1:
        own = values if values.flags.c_contiguous and values.flags.writeable else np.array(values)
        if _fastcsv.indices(own) < 0:
            return own.view(np.int64)
    check_exact(values, locate, written)
    return values


def check_exact(values: np.ndarray, locate: Locate, written: Callable[[int], str]) -> None:
    """Refuse labels too large to be class indices, naming them as the file wrote them."""
    if not values.size or -EXACT < values.min() and values.max() < EXACT:  # no temporaries when all is well
        return
    with np.errstate(invalid="ignore"):  # NaN fails the test above too: it is not large
        large = np.abs(values) >= EXACT
    if large.any():
        row = int(np.flatnonzero(large)[0])
        raise XentError(f"label {written(row)} is out of range (far beyond any class index)", locate(row))


def from_array(
    array: np.ndarray, class_names: Sequence[str] | None, locate: Locate, binary: bool = False
) -> np.ndarray:
    """Labels from an array: numbers as they are, strings through the names rule
    (the binary rule for a binary task)."""
    if array.dtype.kind in "US":
        flat = array.reshape(-1)
        cells = [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in flat.tolist()]
        read = binary_from_cells if binary else from_cells
        return read([c.strip() for c in cells], class_names, locate).reshape(array.shape)
    if array.dtype.kind not in "biuf":
        raise XentError(f"labels must be integers, probabilities or class names, got {array.dtype}")
    if array.dtype.kind == "u" and array.dtype.itemsize == 8:
        flat = np.asarray(array).reshape(-1)
        large = flat > np.iinfo(np.int64).max
        if large.any():
            row = int(np.flatnonzero(large)[0])
            raise XentError(f"label {int(flat[row])} is out of range (far beyond any class index)", locate(row))
    return array

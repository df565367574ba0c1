"""Columnar files (Parquet, Arrow IPC) as a Frame: named columns read a chunk at
a time (Parquet's row groups, Arrow's record batches), through pyarrow, which
is an optional extra and imported only here, only when such a file is read.

Logits are one numeric column per class (the column names are the class
names) or one list / fixed-size-list column of C numbers per row. The
engine reads them through `ColumnMatrix`, a read-only (rows, classes) array
that reads only the chunks a slice touches, so memory holds a chunk or two
whatever the file's size.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import XentError

EXTRA = "pip install 'xentcli[parquet]'"
INDEX_COLUMN = re.compile(r"^__index_level_\d+__$")  # pandas' index, as to_parquet writes it


def pyarrow(name: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise XentError(f"reading Parquet and Arrow files needs pyarrow: {EXTRA}", name) from None
    return pyarrow


class Frame:
    """A columnar file's columns, read by chunks of rows. `read(first, last, columns)`
    gives the chunks first..last (inclusive) as a pyarrow Table."""

    def __init__(self, name: str, schema: Any, chunk_rows: Sequence[int], read: Callable[[int, int, list[str]], Any]):
        self.name = name
        self.schema = schema
        self.names = list(schema.names)
        offsets = np.concatenate([[0], np.cumsum(np.asarray(chunk_rows, dtype=np.int64))])
        self.offsets = offsets
        self.rows = int(offsets[-1])
        self._read = read
        self._lock = threading.Lock()  # pyarrow's file readers are not shared across threads
        self._widths: dict[str, int | None] = {}

    def spans(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:]) if b > a]

    def chunk_of(self, row: int) -> int:
        return int(np.searchsorted(self.offsets, row, side="right") - 1)

    def read(self, first: int, last: int, columns: list[str]) -> Any:
        with self._lock:
            return self._read(first, last, columns)

    def column(self, name: str) -> np.ndarray:
        """A whole column as numpy: numbers as they are, strings as str (labels, ids)."""
        values = self.read(0, len(self.offsets) - 2, [name]).column(0)
        kind = self.schema.field(name).type
        pa = pyarrow(self.name)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
            cells = values.to_pylist()
            if any(cell is None for cell in cells):
                row = next(k for k, cell in enumerate(cells) if cell is None)
                raise XentError(f"column {name!r} has an empty (null) value", self.locate(row))
            return np.array(cells, dtype=str)
        if values.null_count:
            row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
            raise XentError(f"column {name!r} has an empty (null) value", self.locate(row))
        return values.to_numpy()

    def locate(self, row: int) -> str:
        return f"{self.name}: row {row}"

    def numeric(self, name: str) -> bool:
        pa = pyarrow(self.name)
        kind = self.schema.field(name).type
        return pa.types.is_floating(kind) or pa.types.is_integer(kind)

    def list_width(self, name: str) -> int | None:
        """C for a column of lists of numbers (fixed-size: from its type; else from its first
        row, read once), else None."""
        if name not in self._widths:
            pa = pyarrow(self.name)
            kind = self.schema.field(name).type
            width = None
            if pa.types.is_fixed_size_list(kind):
                width = kind.list_size
            elif (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and self.rows:
                first = self.read(0, 0, [name]).column(0)[0].as_py()
                width = None if first is None else len(first)
            self._widths[name] = width
        return self._widths[name]


class ColumnMatrix:
    """Some columns of a Frame (or its one list column) as a read-only (rows,
    classes) array, read where it is sliced, a chunk at a time."""

    ndim = 2

    def __init__(self, frame: Frame, columns: list[str], width: int | None = None) -> None:
        self.frame = frame
        self.columns = columns
        self.width = width  # a list column of this many numbers per row, else one column per class
        classes = width if width is not None else len(columns)
        self.shape = (frame.rows, classes)
        pa = pyarrow(frame.name)
        kinds = [frame.schema.field(c).type for c in columns]
        if width is not None:
            kinds = [k.value_type for k in kinds]
        floats32 = all(pa.types.is_float32(k) or pa.types.is_float16(k) for k in kinds)
        self.dtype = np.dtype(np.float32 if floats32 else np.float64)
        self.size = frame.rows * classes
        self.nbytes = self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def row_spans(self) -> list[tuple[int, int]]:
        return self.frame.spans()

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a ColumnMatrix is read by slices of rows")
        start, stop, _ = key.indices(self.shape[0])
        if stop <= start:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        first, last = self.frame.chunk_of(start), self.frame.chunk_of(stop - 1)
        table = self.frame.read(first, last, self.columns)
        offset = int(self.frame.offsets[first])
        block = self._numbers(table, offset)
        return block[start - offset : stop - offset]

    def _numbers(self, table: Any, offset: int) -> np.ndarray:
        if self.width is None:
            out = np.empty((table.num_rows, len(self.columns)), dtype=self.dtype)
            for k, column in enumerate(table.columns):
                if column.null_count:
                    row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
                    raise XentError(f"column {self.columns[k]!r} has an empty (null) value", self.frame.locate(offset + row))
                out[:, k] = column.to_numpy()
            return out
        pa = pyarrow(self.frame.name)
        lists = table.column(0).combine_chunks()
        lengths = pa.compute.list_value_length(lists).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero((lengths != self.width) | lists.is_null().to_numpy(zero_copy_only=False))
        if wrong.size:
            row = int(wrong[0])
            raise XentError(
                f"row holds {'no list' if lists[row].as_py() is None else len(lists[row].as_py())} numbers "
                f"in {self.columns[0]!r}, the first row {self.width}",
                self.frame.locate(offset + row),
            )
        values = lists.flatten()
        if values.null_count:
            raise XentError(f"column {self.columns[0]!r} holds an empty (null) number", self.frame.locate(offset))
        return values.to_numpy(zero_copy_only=False).astype(self.dtype, copy=False).reshape(-1, self.width)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)
        for a, b in self.row_spans():
            out[a:b] = self[a:b]
        return out if dtype is None else out.astype(dtype)


def logit_columns(frame: Frame, candidates: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the logit columns among `candidates`, the others worth a notice): the one or
    more list columns if there are any, else the numeric columns; row ids (pandas'
    index, `id`, `sample_id`, ...) and other types are never logits."""
    from .text import ID_NAMES

    ids = [n for n in candidates if INDEX_COLUMN.match(n) or ID_NAMES.match(n)]
    lists = [n for n in candidates if n not in ids and frame.list_width(n) is not None]
    other = [n for n in candidates if n not in ids and n not in lists and not frame.numeric(n)]
    chosen = lists if lists else [n for n in candidates if n not in ids and n not in other]
    shown = [n for n in ids if not INDEX_COLUMN.match(n)] + other + (list(candidates) if lists else [])
    return chosen, [n for n in dict.fromkeys(shown) if n not in chosen]


def select(names: Sequence[str], pattern: str | Sequence[str]) -> list[str]:
    """--logits-cols: a glob (`p_*`) or a list of names, in the file's order for a glob."""
    wanted = [p.strip() for p in pattern.split(",")] if isinstance(pattern, str) else list(pattern)
    chosen: list[str] = []
    for item in wanted:
        found = [n for n in names if fnmatch.fnmatchcase(n, item)] if any(ch in item for ch in "*?[") else (
            [item] if item in names else [])
        if not found:
            raise XentError(f"--logits-cols {item!r} matches no column (columns: {', '.join(names)})")
        chosen += [n for n in found if n not in chosen]
    return chosen

"""Delimited text (CSV, TSV, whitespace): the delimiter, the header, the id columns, the numbers.

A header is a row of names. Numbers, empty cells, ``NA`` or ``0x1p3`` in
the first row make it data (and the reader names the bad cell), with one
exception: pandas writes its default column index ``0,1,…,C-1`` as the
header of a frame without column names, recognised when the rows below
hold numbers that are not integers. Where the first row could be either
(``0`` above integer labels, ``label`` above class names) the header is
left undecided here, for the batch to settle by counting rows.
"""

from __future__ import annotations

import bisect
import math
import mmap
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Union

import numpy as np

from .. import prefetch
from ..errors import XentError

try:
    from .. import _fastcsv
except ImportError:  # the C reader is optional: numpy's loadtxt reads the same files
    _fastcsv = None

DELIMITERS = ("\t", ";", ",")
DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
THOUSANDS = re.compile(r"^[-+]?\d{1,3}([,. '\u202f]\d{3})+([.,]\d+)?$")
NUMPY_REPR = re.compile(r"np\.\w+\(.*\)$")  # numpy 2 writes repr(np.float64(0.5)) as np.float64(0.5)
HEX_FLOAT = re.compile(r"^[-+]?0x[0-9a-f]*\.?[0-9a-f]*(p[-+]?\d+)?$", re.IGNORECASE)
MISSING = {"na", "n/a", "nan", "null", "none", "nil", "inf", "-inf", "+inf", "infinity", "-infinity", "?", "-"}
# Column names that hold row identifiers, never classes (pandas names an unnamed index "Unnamed: 0").
ID_NAMES = re.compile(r"^(?!(class|label|target|category)[_ -]id$)(id|index|idx|row|row_?id|unnamed: \d+|.+[_ -]id)$", re.IGNORECASE)
NOT_BLANK = re.compile(rb"[^ \t\r\n]")  # as the C reader sees a line: blank holds only spaces, tabs, CR
UTF8_BOM = b"\xef\xbb\xbf"
PARSE_THREADS = min(8, os.cpu_count() or 1)
PARSE_CHUNK_BYTES = 1 << 18  # a thread per 256 KiB, up to PARSE_THREADS: 1M labels (2 MB) on 2 cores 9 -> 5 ms
# Text above this size is parsed a chunk of lines at a time, as the engine asks for
# rows, so memory stays near STREAM_CHUNK_BYTES per core whatever the file's size,
# and the loss of a chunk is computed while its numbers are still in cache: a
# 95 MB CSV took 305 ms end to end in chunks of 1 MiB, 341 ms parsed whole
# (benchmarks/bench.py's CSV, 2 cores), and its parse shows in the progress bar.
STREAM_BYTES = prefetch.STREAM_BYTES
STREAM_CHUNK_BYTES = prefetch.CHUNK_BYTES
TRUE_FALSE = {"true": 1.0, "false": 0.0}
HEADER_CELLS = 4096
WORD = re.compile(r"\S+")

Buffer = Union[bytes, mmap.mmap]


def is_number(cell: str) -> bool:
    """A number as numpy and the C reader read it: ASCII only (Python's float() also takes other digits)."""
    if "_" in cell or not cell.isascii():
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def is_integer(cell: str) -> bool:
    return is_number(cell) and float(cell).is_integer()


def _numeric(cell: str) -> bool:
    """A number, or a localised one (1,5 or 1,234.5) that the reader will explain."""
    return bool(is_number(cell) or DECIMAL_COMMA.match(cell) or THOUSANDS.match(cell))


def is_data_line(line: str) -> bool:
    """Not blank and not a comment, exactly as the C reader decides (a form feed is data)."""
    stripped = line.lstrip(" \t")
    return bool(stripped) and stripped[0] not in "\r#"


def _fraction(cell: str) -> bool:
    """A finite number that is not whole: what a row of logits or probabilities holds."""
    return is_number(cell) and math.isfinite(float(cell)) and not float(cell).is_integer()


def is_name(cell: str) -> bool:
    """A cell that names something: text that no reader would take for a number or a gap
    (nor digits of another script, which look like a number to a reader of that script)."""
    return (
        bool(cell) and not _numeric(cell) and cell.lower() not in MISSING and not HEX_FLOAT.match(cell)
        and not cell.lstrip("+-").replace(".", "", 1).isnumeric()
    )


def clean(cell: str) -> str:
    return cell.strip().strip('"')


def is_positional(cells: Sequence[str]) -> bool:
    """pandas' default column labels 0, 1, …, C-1: positions, not names."""
    return bool(cells) and all(cell == str(k) for k, cell in enumerate(cells))


def header_verdict(first: list[str], second: list[str] | None) -> bool | None:
    """Whether the first row is a header: True, False, or None when only the row
    counts can tell (pandas' ``0`` above integers, ``label`` above names).

    A header holds names, and may hold class numbers (pandas' column index
    ``0,1,2``, or scikit-learn's ``classes_`` such as ``1,2,3``), each once."""
    lead = next((k for k, cell in enumerate(first) if cell), len(first))
    cells = first[lead:]
    if not cells:
        return False
    names = [is_name(cell) for cell in cells]
    numbers = [not name and cell.isdigit() for name, cell in zip(names, cells)]
    if not all(n or w for n, w in zip(names, numbers)):
        return False  # a fraction, a gap, NA: data (and a bad cell the reader will name)
    counted = [cell for cell, w in zip(cells, numbers) if w]
    if len(set(counted)) != len(counted):
        return False  # a repeated number is data, not a class
    if second is None or len(second) != len(first):
        return any(names) or (lead > 0)
    below = second[lead:]
    if any(n and _numeric(b) for n, b in zip(names, below)):
        return True  # a name above a number
    if len(cells) > 1 and any(w and _fraction(b) for w, b in zip(numbers, below)):
        return True  # class numbers above non-integer numbers (a row of logits or probabilities)
    if lead:
        return True  # pandas' index column (an empty first cell) under names
    if all(names) or is_positional(cells):
        return None  # names above names, or pandas' 0,1,… above whole numbers: the row counts decide
    return False


@dataclass(frozen=True)
class TextTable:
    """The rows of a delimited text file, parsed on demand.

    Numbers take the C fast path (all columns at once, in parallel chunks of
    lines) when the extension is built and the file is plain; anything else
    goes through numpy's loadtxt on the decoded lines, which also explains
    what is wrong, with its line number. ``id_columns`` hold row
    identifiers (pandas' index, ``id``, ``--id-col``): never classes.
    """

    name: str
    data: Buffer
    body_start: int
    header: tuple[str, ...] | None
    delimiter: str | None
    width: int
    id_columns: tuple[int, ...] = ()
    header_start: int | None = None
    # None: the first row may be a header or data, for the batch to decide by row counts.
    undecided: bool = False
    # The first column holds 0, 1, ..., N-1 in a file without a header: pandas' index
    # written with header=False (to_csv keeps the index by default), an id column.
    row_numbers: bool = False
    _cells: dict[int, list[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def _numbered_lines(self) -> tuple[list[str], list[int]]:
        """The data lines (blank and # lines left out) and their line numbers."""
        first_line = count_newlines(self.data, 0, self.body_start) + 1
        text = decode(self.name, self.data[self.body_start :], first_line)
        lines, numbers = [], []
        for number, line in enumerate(text.split("\n"), start=first_line):
            if is_data_line(line):
                lines.append(line.rstrip("\r"))
                numbers.append(number)
        return lines, numbers

    @property
    def body(self) -> list[str]:
        return self._numbered_lines[0]

    @property
    def rows(self) -> int:
        if self.streams:
            return self._stream.rows
        fast = self._fast_indices if self._fast_indices is not None else self._fast_numbers
        return len(fast) if fast is not None else len(self.body)

    def locate(self, row: int) -> str:
        if self.streams:
            return f"{self.name}:{self._stream.line_of(row)}"
        return f"{self.name}:{self._numbered_lines[1][row]}"

    @property
    def header_line(self) -> int:
        start = self.body_start if self.header_start is None else self.header_start
        return count_newlines(self.data, 0, start) + 1

    def first_row(self) -> list[str]:
        """The first data line's cells (found without decoding the rest of the file)."""
        line = _first_lines(self.name, self.data, 1, self.body_start)[0][1]
        return [clean(cell) for cell in split(line, self.delimiter)]

    def with_header(self, ids: Sequence[str] = ()) -> TextTable:
        """The same table with its first data line read as a header."""
        header = tuple(self.first_row())
        table = replace(
            self,
            body_start=self.data.find(b"\n", self.body_start) + 1,
            header=header,
            header_start=self.body_start,
            undecided=False,
        )
        return replace(table, id_columns=id_columns(header, ids))

    def decided(self, ids: Sequence[str] = ()) -> TextTable:
        """The first row kept as data (and a first column of row numbers found, as parse_text does)."""
        return replace(self, undecided=False).numbered(ids)

    def numbered(self, ids: Sequence[str] = ()) -> TextTable:
        """The table with a first column 0, 1, …, N-1 above no header taken as row
        ids: pandas' index, which to_csv writes by default, also with header=False
        (read as a class of logits it gave a wrong loss, exit 0). `--id-col none`
        keeps it a class. The numbers parsed to check it are kept."""
        if self.header is not None or self.width < 2 or self.id_columns or "none" in ids:
            return self
        lines = _first_lines(self.name, self.data, 5, self.body_start)
        firsts = [clean(split(line, self.delimiter, 1)[0]) for _, line in lines]
        if len(firsts) < 3 or firsts != [str(k) for k in range(len(firsts))]:
            return self
        column = self.column(0)  # the whole table parsed, or a chunk at a time when it streams
        if not (isinstance(column, np.ndarray) and np.array_equal(column, np.arange(len(column)))):
            return self
        table = replace(self, id_columns=(0,), row_numbers=True)
        for parsed in ("_fast_numbers", "_stream"):  # cached_property values: the same file, the same numbers
            if parsed in self.__dict__:
                table.__dict__[parsed] = self.__dict__[parsed]
        return table

    def data_columns(self) -> list[int]:
        """The columns that are not row ids (a range when there are none: a 25M-column row stays cheap)."""
        if not self.id_columns:
            return range(self.width)
        return [c for c in range(self.width) if c not in self.id_columns]

    @cached_property
    def _fast_numbers(self) -> np.ndarray | None:
        """Every column as float64 through the C reader, or None where it cannot."""
        if _fastcsv is None or (self.delimiter is not None and len(self.delimiter.encode()) != 1):
            return None
        return _parse_fast(self.data, self.body_start, self.delimiter, self.width)

    @cached_property
    def _fast_indices(self) -> np.ndarray | None:
        """A one-column table of plain integers (a sign and 1 to 15 digits a
        line: class indices) as int64 through the C reader, or None where it is
        anything else. 1M labels: parsed in a third of the time, and no float64
        array to check and cast."""
        if _fastcsv is None or self.width != 1 or self.streams:
            return None
        return _parse_fast(self.data, self.body_start, None, 1, indices=True)

    def indices(self) -> np.ndarray | None:
        """The numbers of a one-column table of plain integers, as int64 (else None):
        class indices, the same as the float64 numbers read as such."""
        return self._fast_indices

    def parse_ahead(self) -> None:
        """Parse the numbers now, if the C reader takes the file whole (small
        enough not to stream): a helper thread does this while the logits are read."""
        if not self.streams and not self.undecided and self._fast_indices is None:
            self._fast_numbers

    @property
    def streams(self) -> bool:
        """Whether the numbers are parsed a chunk at a time (a large file, with the C reader)."""
        return _fastcsv is not None and len(self.data) - self.body_start > STREAM_BYTES and (
            self.delimiter is None or len(self.delimiter.encode()) == 1
        )

    @cached_property
    def _stream(self) -> TextStream:
        return TextStream(self)

    def numbers(self, columns: Sequence[int]) -> np.ndarray | TextMatrix:
        """The given columns as a float64 (rows, len(columns)) array, or, for a
        large file, a TextMatrix that parses them a block of rows at a time."""
        if self.streams:
            return TextMatrix(self._stream, columns)
        fast = self._fast_numbers
        if fast is not None:
            if isinstance(columns, range) and columns.step == 1:
                return fast[:, columns.start : columns.stop]
            return fast[:, list(columns)]
        columns = list(columns)
        # loadtxt would read only `columns` of a longer row: check every width first.
        for row, line in enumerate(self.body):
            found = len(split(line, self.delimiter))
            if found != self.width:
                self._ragged(row, found)
        try:
            return np.loadtxt(
                self.body,
                delimiter=self.delimiter,
                usecols=columns,
                dtype=np.float64,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding=None,
            )
        except ValueError as error:
            self._diagnose(columns)
            raise XentError(f"cannot read the numbers ({error})", self.name) from None

    def flags(self, columns: Sequence[int]) -> np.ndarray | None:
        """The columns as 0/1 when every cell is true/false (pandas' get_dummies), else None."""
        rows = []
        for row, line in enumerate(self._lines()):
            parts = split(line, self.delimiter)
            if len(parts) != self.width:
                self._ragged(row, len(parts))
            values = [TRUE_FALSE.get(clean(parts[c]).lower()) for c in columns]
            if None in values:
                return None
            rows.append(values)
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))

    def column(self, column: int) -> list[str] | np.ndarray:
        """One column: float64 numbers if the file is all numbers, else its text
        cells. The numbers of a one-column table are the caller's to change."""
        if self.streams:
            try:
                return np.asarray(TextMatrix(self._stream, [column]))[:, 0]
            except XentError:
                return self.cells(column)
        if self._fast_numbers is not None:
            if self.width == 1:  # the caller's own (labels become int64 in place); parsed again if asked again
                return self.__dict__.pop("_fast_numbers")[:, 0]
            return self._fast_numbers[:, column]
        return self.cells(column)

    def cells(self, column: int) -> list[str]:
        """One column's text cells, unquoted (read once: ids are looked at more than once)."""
        if column not in self._cells:
            cells = []
            for row, line in enumerate(self._lines()):
                parts = split(line, self.delimiter)
                if len(parts) != self.width:
                    self._ragged(row, len(parts))
                cells.append(clean(parts[column]))
            self._cells[column] = cells
        return self._cells[column]

    def _lines(self) -> Iterator[str]:
        """The data lines, decoded one chunk at a time for a large file."""
        if not self.streams:
            yield from self.body
            return
        for k in range(len(self._stream.chunks)):
            yield from self._stream.lines(k)[0]

    def _ragged(self, row: int, found: int) -> None:
        raise XentError(f"row has {found} columns but the first row has {self.width}", self.locate(row))

    def _diagnose(self, columns: Sequence[int]) -> None:
        for row, line in enumerate(self.body):
            self.diagnose_line(line, columns, lambda: self.locate(row))

    def diagnose_line(self, line: str, columns: Sequence[int], where: Callable[[], str]) -> None:
        """Raise the XentError that says what is wrong with one data line, if anything."""
        parts = split(line, self.delimiter)
        if len(parts) != self.width:
            raise XentError(f"row has {len(parts)} columns but the first row has {self.width}", where())
        for column in columns:
            cell = clean(parts[column])
            if not is_number(cell):
                hint = ""
                if DECIMAL_COMMA.match(cell):
                    hint = " (a decimal comma? write 1.5, not 1,5)"
                elif THOUSANDS.match(cell):
                    hint = " (a thousands separator? write 1234.5, not 1,234.5)"
                elif NUMPY_REPR.match(cell):
                    hint = " (numpy's repr of a number: write float(v) or str(v), or save with np.savetxt)"
                elif cell[:1].isalpha() and cell.lower() not in MISSING:
                    hint = " (a column of labels or ids? name it with --label-col or --id-col)"
                elif any(ch.isdigit() for ch in cell) and not cell.isascii():
                    hint = " (digits other than 0-9 are not read)"
                raise XentError(f"{cell!r} is not a number{hint}", f"{where()}:{column + 1}")


class TextStream:
    """A large text table cut into chunks of whole lines, each with the number of
    its data rows (counted by the C reader), so that any rows can be parsed alone."""

    def __init__(self, table: TextTable) -> None:
        self.table = table
        data, start, end = table.data, table.body_start, len(table.data)
        # The lines above the rows (a header, perhaps decided after parse_text,
        # which leaves a large file's NUL bytes to this count) are checked here.
        _refuse_nul(table.name, data, 0, start)
        # Chunks are cut after the header at the places counted from the file's
        # start, so that the blocks (and every digit of a sum over them) do not
        # depend on whether the rows were counted during start-up (prefetch).
        early = prefetch.counted(data)
        cuts = early.cuts if early is not None else prefetch.cuts_of(data, 0, end, STREAM_CHUNK_BYTES)
        later = bisect.bisect_right(cuts, start)
        bounds = [start, *cuts[later:]]
        if early is not None:  # counted while xent started up: only the first chunk, cut at the header, again
            first, _ = self._count(data, bounds[:2])
            counts, nul = [*first, *early.counts[later:]], early.nul
        else:
            counts, nul = self._count(data, bounds)
        if nul >= 0:  # parse_text left this check to the count
            raise XentError("not a text file (it holds NUL bytes)", f"{table.name}:{count_newlines(data, 0, nul) + 1}")
        self.chunks = [(a, b, n) for a, b, n in zip(bounds[:-1], bounds[1:], counts)]
        self.offsets = np.cumsum([0, *counts])
        self.rows = int(self.offsets[-1])
        self._last: tuple[int, Sequence[int], np.ndarray] | None = None
        self._first: tuple[int, Sequence[int], np.ndarray] | None = None

    @staticmethod
    def _count(data: Buffer, bounds: list[int]) -> tuple[list[int], int]:
        """The data rows between each pair of bounds, and the first NUL byte (-1 if none):
        each thread counts a run of chunks, in one call."""
        edges = np.array(bounds, dtype=np.int64)
        counts = np.empty(len(bounds) - 1, dtype=np.int64)
        runs = np.linspace(0, len(counts), max(1, min(PARSE_THREADS, len(counts))) + 1).astype(int)

        def count(k: int) -> int:
            first, last = runs[k], runs[k + 1]
            return _fastcsv.count_rows(data, edges[first : last + 1], counts[first:last])

        if len(runs) == 2:  # one run (a chunk counted again after the start-up count): no thread to start
            nuls = [count(0)]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(runs) - 1) as pool:
                nuls = list(pool.map(count, range(len(runs) - 1)))
        return counts.tolist(), next((at for at in nuls if at >= 0), -1)

    def chunk_of(self, row: int) -> int:
        return int(np.searchsorted(self.offsets, row, side="right")) - 1

    def parse(self, k: int, columns: Sequence[int]) -> np.ndarray:
        """Chunk k's rows, the given columns, as float64; a bad line is named.
        The last chunk parsed is kept, for reading rows one at a time (the table's),
        and the first, which the engine looks at again once the pass is over."""
        for kept in (self._last, self._first):
            if kept is not None and kept[0] == k and kept[1] == columns:
                return kept[2]
        block = self._parse(k, columns)
        self._last = (k, columns, block)
        if k == 0:
            self._first = self._last
        return block

    def _parse(self, k: int, columns: Sequence[int]) -> np.ndarray:
        start, end, rows = self.chunks[k]
        table = self.table
        out = np.empty((rows, table.width), dtype=np.float64)
        code = -1 if table.delimiter is None else ord(table.delimiter)
        parsed, error = _fastcsv.parse(memoryview(table.data)[start:end], code, table.width, out)
        if error >= 0 or parsed != rows:
            # Text, quotes or true/false in some column: this chunk's lines, the given columns, by numpy.
            return self._parse_slowly(k, columns)
        if isinstance(columns, range) and columns.step == 1:
            return out[:, columns.start : columns.stop]
        return out[:, list(columns)]

    def lines(self, k: int) -> tuple[list[str], list[int]]:
        """Chunk k's data lines and their line numbers."""
        start, end, _ = self.chunks[k]
        number = count_newlines(self.table.data, 0, start) + 1
        lines, numbers = [], []
        for offset, line in enumerate(decode(self.table.name, self.table.data[start:end], number).split("\n")):
            if is_data_line(line):
                lines.append(line.rstrip("\r"))
                numbers.append(number + offset)
        return lines, numbers

    def _parse_slowly(self, k: int, columns: Sequence[int]) -> np.ndarray:
        table = self.table
        lines, numbers = self.lines(k)
        for line, number in zip(lines, numbers):
            table.diagnose_line(line, columns, lambda: f"{table.name}:{number}")
        try:
            return np.loadtxt(
                lines, delimiter=table.delimiter, usecols=list(columns), dtype=np.float64, ndmin=2,
                comments=None, quotechar='"', encoding=None,
            ).reshape(len(lines), len(columns))
        except ValueError as error:
            raise XentError(f"cannot read the numbers ({error})", table.name) from None

    def line_of(self, row: int) -> int:
        """The line number of a data row."""
        k = self.chunk_of(row)
        start, end, _ = self.chunks[k]
        skip = row - int(self.offsets[k])
        number = count_newlines(self.table.data, 0, start) + 1
        for line in bytes(self.table.data[start:end]).split(b"\n"):
            text = line.strip()
            if text and not text.startswith(b"#"):
                if skip == 0:
                    return number
                skip -= 1
            number += 1
        return number


class TextMatrix:
    """Some columns of a large text table as a read-only (rows, columns) float64
    array that is parsed only where it is sliced: ``matrix[a:b]`` parses the
    chunks holding rows a..b-1. The engine reads it in the chunks' own blocks
    (``row_spans``), so memory stays bounded whatever the file's size."""

    dtype = np.dtype(np.float64)
    ndim = 2

    def __init__(self, stream: TextStream, columns: Sequence[int]) -> None:
        self.stream = stream
        self.columns = columns
        self.shape = (stream.rows, len(self.columns))
        self.nbytes = stream.rows * len(self.columns) * 8
        self.size = stream.rows * len(self.columns)

    def __len__(self) -> int:
        return self.shape[0]

    def row_spans(self) -> list[tuple[int, int]]:
        offsets = self.stream.offsets
        return [(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:]) if b > a]

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a TextMatrix is read by slices of rows")
        start, stop, _ = key.indices(self.shape[0])
        if stop <= start:
            return np.empty((0, self.shape[1]))
        first, last = self.stream.chunk_of(start), self.stream.chunk_of(stop - 1)
        parts = [self.stream.parse(k, self.columns) for k in range(first, last + 1)]
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        offset = int(self.stream.offsets[first])
        return block[start - offset : stop - offset]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float64)
        for a, b in self.row_spans():
            out[a:b] = self[a:b]
        return out if dtype is None else out.astype(dtype)


def id_columns(header: Sequence[str] | None, ids: Sequence[str] = ()) -> tuple[int, ...]:
    """The columns of a header that hold row identifiers: pandas' unnamed index
    columns, names like ``id`` or ``sample_id``, and those named by --id-col."""
    if header is None:
        return ()
    lead = next((k for k, cell in enumerate(header) if cell), 0)
    by_name = "none" not in ids  # --id-col none: only pandas' unnamed index columns are ids
    return tuple(
        k for k, cell in enumerate(header) if k < lead or (by_name and ID_NAMES.match(cell)) or cell in ids
    )


def _parse_fast(data: Buffer, start: int, delimiter: str | None, width: int, indices: bool = False) -> np.ndarray | None:
    """data[start:] through the C reader, in one chunk of whole lines per core
    (`indices`: one column of plain integers, as int64)."""
    end = len(data)
    parts = max(1, min(PARSE_THREADS, (end - start) // PARSE_CHUNK_BYTES))
    bounds = [start]
    for k in range(1, parts):
        cut = data.find(b"\n", start + (end - start) * k // parts)
        if cut < 0 or cut + 1 <= bounds[-1]:
            break
        bounds.append(cut + 1)
    bounds.append(end)
    spans = list(zip(bounds[:-1], bounds[1:]))
    view = memoryview(data)
    code = -1 if delimiter is None else ord(delimiter)

    def capacity(k: int) -> int:
        a, b = spans[k]
        return count_newlines(data, a, b) + (0 if b > a and data[b - 1 : b] == b"\n" else 1)

    def parse(k: int) -> tuple[int, int]:
        a, b = spans[k]
        if indices:
            return _fastcsv.parse_indices(view[a:b], out[offsets[k] : offsets[k + 1]])
        return _fastcsv.parse(view[a:b], code, width, out[offsets[k] : offsets[k + 1]])

    def empty(rows: int) -> np.ndarray:
        return np.empty(rows, dtype=np.int64) if indices else np.empty((rows, width), dtype=np.float64)

    if len(spans) == 1:  # a small file: no threads to start
        capacities = [capacity(0)]
        out = empty(capacities[0])
        offsets = [0, capacities[0]]
        results = [parse(0)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(spans)) as pool:
            capacities = list(pool.map(capacity, range(len(spans))))
            out = empty(sum(capacities))
            offsets = np.cumsum([0, *capacities])
            results = list(pool.map(parse, range(len(spans))))
    if any(error >= 0 for _, error in results):
        return None
    if all(rows == capacity for (rows, _), capacity in zip(results, capacities)):
        return out
    # Blank or comment lines left room unused: keep the parsed rows only.
    return np.concatenate([out[offsets[k] : offsets[k] + rows] for k, (rows, _) in enumerate(results)])


def count_newlines(data: Buffer, start: int, end: int) -> int:
    """How many b"\\n" lie in data[start:end] (without copying a memory map)."""
    if _fastcsv is not None:
        return _fastcsv.count_newlines(data, start, end)
    return data.count(b"\n", start, end)


def decode(name: str, data: bytes, first_line: int = 1) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + data[: error.start].count(b"\n")
        raise XentError("not UTF-8 text (is it a binary file?)", f"{name}:{line}") from None


def split(line: str, delimiter: str | None, most: int = -1) -> list[str]:
    return line.split(delimiter, most) if delimiter else line.split(None, most)


def count_cells(line: str, delimiter: str | None) -> int:
    """How many cells a line holds, without making a string of each."""
    if delimiter:
        return line.count(delimiter) + 1
    return sum(1 for _ in WORD.finditer(line))


def _sniff_delimiter(sample: list[str]) -> str | None:
    """The first of tab, ';', ',' found the same number of times on every line,
    else the first found on the first line; else whitespace (None)."""
    for candidate in DELIMITERS:
        counts = {line.count(candidate) for line in sample}
        if len(counts) == 1 and counts != {0}:
            return candidate
    return next((c for c in DELIMITERS if c in sample[0]), None)


def _first_lines(name: str, data: Buffer, count: int, position: int = 0) -> list[tuple[int, str]]:
    """(byte offset, text) of the first `count` lines that are not blank or comments.

    Runs of blank lines are skipped by a regular expression, not line by line,
    so a file of a billion empty lines is found empty in seconds."""
    found: list[tuple[int, str]] = []
    first = position
    while position < len(data) and len(found) < count:
        match = NOT_BLANK.search(data, position)
        if match is None:
            break
        start = max(data.rfind(b"\n", first, match.start()) + 1, first)
        end = data.find(b"\n", match.start())
        end = len(data) if end < 0 else end
        if data[match.start() : match.start() + 1] != b"#":
            line = decode(name, data[start:end], count_newlines(data, 0, start) + 1).rstrip("\r")
            found.append((start, line))
        position = end + 1
    return found


def parse_text(
    name: str,
    data: Buffer,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    ids: Sequence[str] = (),
) -> TextTable:
    """Find the header (if any), the delimiter and where the data rows start.

    `data` is the file's bytes, or a read-only memory map of them; `ids`
    names columns (--id-col) that hold row identifiers."""
    if delimiter == '"':
        raise XentError("the delimiter cannot be a quote character")
    start = len(UTF8_BOM) if data[: len(UTF8_BOM)] == UTF8_BOM else 0
    # A file that will stream has its NUL bytes found by the threads that count its rows (TextStream);
    # here, only those of its first 64 KiB, which hold the lines read to find the header and delimiter.
    may_stream = _fastcsv is not None and len(data) - start > STREAM_BYTES and (delimiter is None or len(delimiter.encode()) == 1)
    _refuse_nul(name, data, start, start + (1 << 16) if may_stream else None)
    if data.find(b"\n", start) < 0 and data.find(b"\r", start) >= 0:
        data, start = bytes(data[start:]).replace(b"\r", b"\n"), 0  # old Mac line ends
    sample = _first_lines(name, data, 5, start)
    if not sample:
        raise XentError("the file is empty (no data rows)", name)
    if delimiter is None:
        delimiter = _sniff_delimiter([line for _, line in sample])
    # The header is judged on the first cells only: a line of 25M numbers is never split into 25M strings.
    cells = [[clean(cell) for cell in split(line, delimiter, HEADER_CELLS)[:HEADER_CELLS]] for _, line in sample[:2]]
    first, second = cells[0], (cells[1] if len(cells) > 1 else None)
    verdict = header if header is not None else header_verdict(first, second)
    if ids and header is None and verdict is not True and any(cell in ids for cell in first):
        verdict = True  # --id-col names a column of this row: it is the header
    has_header = verdict is True
    if has_header and len(sample) < 2:
        raise XentError("the file has a header but no data rows", name)
    data_line = sample[1][1] if has_header else sample[0][1]
    header_start = sample[0][0]
    width = count_cells(data_line, delimiter)
    if has_header:
        first = [clean(cell) for cell in split(sample[0][1], delimiter)]
    if has_header and len(first) != width:
        line = count_newlines(data, 0, header_start) + 1
        raise XentError(
            f"the header has {len(first)} names but the first data row has {width} columns", f"{name}:{line}"
        )
    body_start = data.find(b"\n", header_start) + 1 if has_header else header_start
    names = tuple(first) if has_header else None
    table = TextTable(
        name=name,
        data=data,
        body_start=body_start,
        header=names,
        delimiter=delimiter,
        width=width,
        id_columns=id_columns(names, ids),
        header_start=header_start if has_header else None,
        undecided=verdict is None,
    )
    if may_stream and not table.streams:
        _refuse_nul(name, data, start)
    if verdict is False:  # decided: no header (an undecided table is looked at when the batch decides)
        table = table.numbered(ids)
    return table


def _refuse_nul(name: str, data: Buffer, start: int, end: int | None = None) -> None:
    nul = data.find(b"\x00", start, len(data) if end is None else end)
    if nul >= 0:
        raise XentError("not a text file (it holds NUL bytes)", f"{name}:{count_newlines(data, 0, nul) + 1}")

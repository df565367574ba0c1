"""Readers: CSV/TSV/text (optionally compressed), NPY, NPZ, .pt and stdin -> a Batch.

A Batch holds the logits, the targets, the class names and, for error
messages, where each row came from (``file:line`` for text, ``file[i, j]``
for arrays). Nothing read here is ever executed: NPY/NPZ are loaded with
``allow_pickle=False``, .pt files with torch's ``weights_only=True``, and
text is parsed as numbers or plain strings.
"""

from __future__ import annotations

import glob
import importlib
import io
import mmap
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

from .errors import XentError

try:
    from . import _fastcsv
except ImportError:  # the C reader is optional: numpy's loadtxt reads the same files
    _fastcsv = None

STDIN = "-"
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}  # suffix -> stdlib module
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
LABEL_KEYS = ("labels", "targets", "target", "label", "y")
DELIMITERS = ("\t", ";", ",")
DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
THOUSANDS = re.compile(r"^[-+]?\d{1,3}([,. '\u202f]\d{3})+([.,]\d+)?$")
UTF8_BOM = b"\xef\xbb\xbf"
PARSE_THREADS = min(8, os.cpu_count() or 1)
PARSE_CHUNK_BYTES = 1 << 22

# The seed notebook's batch: torch.randn(3, 5) as it printed it, targets [3, 0, 2].
EXAMPLE_LOGITS = np.array(
    [
        [0.0590, 0.3317, 1.2978, -1.3694, 0.2554],
        [0.9160, 2.4308, -1.3641, -0.4327, 0.0316],
        [-0.7676, -0.6493, 0.0933, -0.9304, -1.1471],
    ]
)
EXAMPLE_TARGETS = np.array([3, 0, 2])
EXAMPLE_NAME = "<bundled example>"

Locate = Callable[[int], str]
Buffer = Union[bytes, mmap.mmap]


@dataclass(frozen=True)
class Batch:
    """What the engine needs, plus names and provenance for the renderers."""

    logits: np.ndarray
    target: np.ndarray
    class_axis: int
    logits_name: str
    labels_name: str
    class_names: tuple[str, ...] | None
    locate_logits: Locate
    locate_labels: Locate


def class_name(names: Sequence[str] | None, index: int, with_index: bool = False) -> str:
    """A class's name ("2 bird" with its index), or its index when it has none."""
    if not names or not 0 <= index < len(names):
        return str(index)
    return f"{index} {names[index]}" if with_index else names[index]


def _is_number(cell: str) -> bool:
    if "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _array_locator(name: str, shape: tuple[int, ...]) -> Locate:
    def locate(position: int) -> str:
        if not shape:
            return name
        index = ", ".join(str(int(i)) for i in np.unravel_index(position, shape))
        return f"{name}[{index}]"

    return locate


@dataclass(frozen=True)
class TextTable:
    """The rows of a delimited text file, parsed on demand.

    Numbers take the C fast path (all columns at once, in parallel chunks of
    lines) when the extension is built and the file is plain; anything else
    goes through numpy's loadtxt on the decoded lines, which also explains
    what is wrong, with its line number.
    """

    name: str
    data: Buffer
    body_start: int
    header: tuple[str, ...] | None
    delimiter: str | None
    width: int
    row_id: bool
    header_start: int | None = None

    @cached_property
    def _numbered_lines(self) -> tuple[list[str], list[int]]:
        """The data lines (blank and # lines left out) and their line numbers."""
        first_line = count_newlines(self.data, 0, self.body_start) + 1
        text = _decode(self.name, self.data[self.body_start :], first_line)
        lines, numbers = [], []
        for number, line in enumerate(text.split("\n"), start=first_line):
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line.rstrip("\r"))
                numbers.append(number)
        return lines, numbers

    @property
    def body(self) -> list[str]:
        return self._numbered_lines[0]

    def locate(self, row: int) -> str:
        return f"{self.name}:{self._numbered_lines[1][row]}"

    def first_line_as_header(self) -> TextTable:
        """The same table with its first data line read as a header."""
        line = self.body[0]
        return replace(
            self,
            body_start=self.data.find(b"\n", self.body_start) + 1,
            header=tuple(cell.strip().strip('"') for cell in _split(line, self.delimiter)),
            header_start=self.body_start,
        )

    def data_columns(self) -> list[int]:
        return list(range(1 if self.row_id else 0, self.width))

    @cached_property
    def _fast_numbers(self) -> np.ndarray | None:
        """Every column as float64 through the C reader, or None where it cannot."""
        if _fastcsv is None or (self.delimiter is not None and len(self.delimiter.encode()) != 1):
            return None
        return _parse_fast(self.data, self.body_start, self.delimiter, self.width)

    def numbers(self, columns: Sequence[int]) -> np.ndarray:
        """The given columns as a float64 (rows, len(columns)) array."""
        columns = list(columns)
        fast = self._fast_numbers
        if fast is not None:
            if columns == list(range(columns[0], columns[-1] + 1)):
                return fast[:, columns[0] : columns[-1] + 1]
            return fast[:, columns]
        # loadtxt would read only `columns` of a longer row: check every width first.
        for row, line in enumerate(self.body):
            found = len(_split(line, self.delimiter))
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
        except ValueError:
            self._diagnose(columns, numeric=True)
            raise

    def column(self, column: int) -> list[str] | np.ndarray:
        """One column: float64 numbers if the file is all numbers, else its text cells."""
        if self._fast_numbers is not None:
            return self._fast_numbers[:, column]
        cells = []
        for row, line in enumerate(self.body):
            parts = _split(line, self.delimiter)
            if len(parts) != self.width:
                self._ragged(row, len(parts))
            cells.append(parts[column])
        return cells

    def _ragged(self, row: int, found: int) -> None:
        raise XentError(
            f"row has {found} columns but the first row has {self.width}", self.locate(row)
        )

    def _diagnose(self, columns: Sequence[int], numeric: bool) -> None:
        for row, line in enumerate(self.body):
            parts = _split(line, self.delimiter)
            if len(parts) != self.width:
                self._ragged(row, len(parts))
            for column in columns:
                cell = parts[column].strip().strip('"')
                if numeric and not _is_number(cell):
                    hint = ""
                    if DECIMAL_COMMA.match(cell):
                        hint = " (a decimal comma? write 1.5, not 1,5)"
                    elif THOUSANDS.match(cell):
                        hint = " (a thousands separator? write 1234.5, not 1,234.5)"
                    elif cell[:1].isalpha():
                        hint = " (a column of labels? name it with --label-col)"
                    raise XentError(
                        f"{cell!r} is not a number{hint}",
                        f"{self.locate(row)}:{column + 1}",
                    )


def _parse_fast(data: bytes, start: int, delimiter: str | None, width: int) -> np.ndarray | None:
    """data[start:] through the C reader, in one chunk of whole lines per core."""
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
        return _fastcsv.parse(view[a:b], code, width, out[offsets[k] : offsets[k + 1]])

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(spans)) as pool:
        capacities = list(pool.map(capacity, range(len(spans))))
        out = np.empty((sum(capacities), width), dtype=np.float64)
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


def _decode(name: str, data: bytes, first_line: int = 1) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + data[: error.start].count(b"\n")
        raise XentError("not UTF-8 text (is it a binary file?)", f"{name}:{line}") from None


def _split(line: str, delimiter: str | None) -> list[str]:
    return line.split(delimiter) if delimiter else line.split()


def _sniff_delimiter(sample: list[str]) -> str | None:
    """The first of tab, ';', ',' found the same number of times on every line,
    else the first found on the first line; else whitespace (None)."""
    for candidate in DELIMITERS:
        counts = {line.count(candidate) for line in sample}
        if len(counts) == 1 and counts != {0}:
            return candidate
    return next((c for c in DELIMITERS if c in sample[0]), None)


def _numeric(cell: str) -> bool:
    """A number, or a localised one (1,5 or 1,234.5) that the reader will explain."""
    return bool(_is_number(cell) or DECIMAL_COMMA.match(cell) or THOUSANDS.match(cell))


def _is_header(first: list[str], second: list[str] | None) -> bool:
    """Whether the first row names the columns: it has a text cell where the next
    row has a number (a column of class names is text in every row)."""
    text = [not _numeric(cell) for cell in first]
    if second is None or len(second) != len(first):
        return any(text)
    return any(is_text and _numeric(below) for is_text, below in zip(text, second))


def _first_lines(name: str, data: Buffer, count: int, position: int = 0) -> list[tuple[int, str]]:
    """(byte offset, text) of the first `count` lines that are not blank or comments."""
    found: list[tuple[int, str]] = []
    number = 1
    while position < len(data) and len(found) < count:
        end = data.find(b"\n", position)
        end = len(data) if end < 0 else end
        line = _decode(name, data[position:end], number).rstrip("\r")
        if line.strip() and not line.lstrip().startswith("#"):
            found.append((position, line))
        position, number = end + 1, number + 1
    return found


def parse_text(
    name: str, data: Buffer, *, delimiter: str | None = None, header: bool | None = None
) -> TextTable:
    """Find the header (if any), the delimiter and where the data rows start.

    `data` is the file's bytes, or a read-only memory map of them."""
    start = len(UTF8_BOM) if data[: len(UTF8_BOM)] == UTF8_BOM else 0
    nul = data.find(b"\x00", start)
    if nul >= 0:
        line = count_newlines(data, 0, nul) + 1
        raise XentError("not a text file (it holds NUL bytes)", f"{name}:{line}")
    if data.find(b"\n", start) < 0 and data.find(b"\r", start) >= 0:
        data, start = bytes(data[start:]).replace(b"\r", b"\n"), 0  # old Mac line ends
    sample = _first_lines(name, data, 5, start)
    if not sample:
        raise XentError("the file is empty (no data rows)", name)
    if delimiter is None:
        delimiter = _sniff_delimiter([line for _, line in sample])
    cells = [[cell.strip().strip('"') for cell in _split(line, delimiter)] for _, line in sample[:2]]
    first, second = cells[0], (cells[1] if len(cells) > 1 else None)
    has_header = header if header is not None else _is_header(first, second)
    if has_header and len(sample) < 2:
        raise XentError("the file has a header but no data rows", name)
    data_line = sample[1][1] if has_header else sample[0][1]
    header_start = sample[0][0]
    width = len(_split(data_line, delimiter))
    if has_header and len(first) != width:
        line = count_newlines(data, 0, header_start) + 1
        raise XentError(
            f"the header has {len(first)} names but the first data row has {width} columns", f"{name}:{line}"
        )
    body_start = data.find(b"\n", header_start) + 1 if has_header else header_start
    return TextTable(
        name=name,
        data=data,
        body_start=body_start,
        header=tuple(first) if has_header else None,
        delimiter=delimiter,
        width=width,
        row_id=has_header and first[0] == "",
        header_start=header_start if has_header else None,
    )


def _read_bytes(path: str, stdin: BinaryIO | None, mapped: bool = False) -> tuple[str, Buffer]:
    """The bytes of a file or stdin; with `mapped`, a read-only memory map of a
    non-empty file instead (the C reader parses it in place, uncopied)."""
    if path == STDIN:
        stream = stdin if stdin is not None else sys.stdin.buffer
        return "<stdin>", stream.read()
    with _file_errors(path):
        if mapped and _fastcsv is not None:
            with open(path, "rb") as file:
                if os.fstat(file.fileno()).st_size:
                    return path, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        return path, Path(path).read_bytes()


@contextmanager
def _file_errors(path: str) -> Iterator[None]:
    """The OS's complaints about opening `path`, as one clear XentError."""
    try:
        yield
    except FileNotFoundError:
        raise XentError("no such file", path) from None
    except IsADirectoryError:
        raise XentError("is a directory, not a file", path) from None
    except OSError as error:
        raise XentError(f"cannot read: {error.strerror}", path) from None


def _decompress(name: str, suffix: str, data: bytes) -> bytes:
    module = importlib.import_module(COMPRESSED[suffix])
    try:
        return module.decompress(data)
    except Exception as error:  # each module has its own error types (OSError, LZMAError, ...)
        raise XentError(f"cannot decompress ({error})", name) from None


def _load_npz(name: str, source: str | io.BytesIO) -> _Archive:
    try:
        archive = np.load(source, allow_pickle=False)
    except Exception as error:  # ValueError, OSError, EOFError, zipfile.BadZipFile, ...
        raise _refusal(name, "not a valid NPZ file", error) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise XentError("not an NPZ archive", name)
    return _Archive(name, archive)


def _load_torch(name: str, path: str) -> _Source:
    """A tensor, or a dict of tensors, saved by torch.save: weights_only, never full unpickling."""
    try:
        import torch
    except ImportError:
        raise XentError(f"reading {Path(path).suffix} files needs PyTorch: pip install 'xentcli[torch]'", name) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a corrupt or unsafe file
        raise XentError(
            "not a file of tensors that torch loads with weights_only=True "
            "(corrupt, or it holds other Python objects, which xent never unpickles)",
            name,
        ) from None

    def as_array(value: Any, where: str) -> np.ndarray:
        if not isinstance(value, torch.Tensor):
            raise XentError(f"holds a {type(value).__name__}, not a tensor", where)
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.detach().numpy()

    if isinstance(loaded, dict):
        return _Source(name, archive=_Archive(name, {str(k): as_array(v, f"{name}[{k}]") for k, v in loaded.items()}))
    return _Source(name, array=as_array(loaded, name))


def _load_npy(name: str, source: str | io.BytesIO) -> np.ndarray:
    try:
        mode = "r" if isinstance(source, str) else None
        array = np.load(source, mmap_mode=mode, allow_pickle=False)
    except Exception as error:  # a corrupt header can raise nearly anything
        raise _refusal(name, "not a valid NPY file", error) from None
    if not isinstance(array, np.ndarray):
        raise XentError("not an NPY file", name)
    if array.dtype.hasobject or array.dtype.fields:
        raise XentError(f"unsupported dtype {array.dtype}", name)
    return array


def _refusal(where: str, what: str, error: Exception) -> XentError:
    """The XentError for an array numpy would not load; pickles are named as such."""
    text = str(error)
    if "pickle" in text or "object" in text.lower():
        return XentError("holds Python objects (pickled data), which xent never loads", where)
    return XentError(f"{what} ({type(error).__name__}: {text.splitlines()[0] if text else ''})", where)


class _Archive:
    """Named arrays (an NPZ file, or a dict saved by torch), loaded on demand."""

    def __init__(self, name: str, arrays: Mapping[str, Any]) -> None:
        self.name = name
        self.archive = arrays
        self.keys = list(arrays.keys())

    def get(self, key: str) -> np.ndarray:
        where = f"{self.name}[{key}]"
        if key not in self.keys:
            raise XentError(f"no array named {key!r}; the archive holds {', '.join(self.keys)}", where)
        try:
            array = self.archive[key]
        except Exception as error:  # a corrupt member can raise nearly anything
            raise _refusal(where, "cannot read the array", error) from None
        if array.dtype.hasobject or array.dtype.fields:
            raise XentError(f"unsupported dtype {array.dtype}", where)
        return array

    def logits_key(self, key: str | None) -> str:
        if key is not None:
            return key
        if "logits" in self.keys:
            return "logits"
        if len(self.keys) == 1:
            return self.keys[0]
        raise XentError(
            f"the archive holds {len(self.keys)} arrays ({', '.join(self.keys)}): "
            "choose the logits with --key",
            self.name,
        )

    def labels_key(self) -> str | None:
        return next((k for k in LABEL_KEYS if k in self.keys), None)


@dataclass(frozen=True)
class _Source:
    """One input, read: an array, an archive, or a text table."""

    name: str
    array: np.ndarray | None = None
    archive: _Archive | None = None
    table: TextTable | None = None


def read_source(
    path: str,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    stdin: BinaryIO | None = None,
) -> _Source:
    """Read one input file (or stdin) by its extension or, for stdin, its content."""
    if path != STDIN and Path(path).is_dir():
        raise XentError("is a directory, not a file", path)
    suffixes = [s.lower() for s in Path(path).suffixes] if path != STDIN else []
    compressed = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSED else None
    kind = (suffixes[-2] if compressed and len(suffixes) > 1 else suffixes[-1]) if suffixes else None
    if kind == ".npy" and not compressed:
        _check_readable(path)
        return _Source(path, array=_load_npy(path, path))
    if kind == ".npz" and not compressed:
        _check_readable(path)
        return _Source(path, archive=_load_npz(path, path))
    if kind in (".pt", ".pth") and not compressed:
        _check_readable(path)
        return _load_torch(path, path)
    if path != STDIN and kind not in TEXT_SUFFIXES:
        known = ", ".join((".npy", ".npz", ".pt") + TEXT_SUFFIXES)
        raise XentError(f"unknown file type (expected {known}, optionally .gz/.bz2/.xz)", path)
    name, data = _read_bytes(path, stdin, mapped=not compressed)
    if compressed:
        data = _decompress(name, compressed, data)
    elif path == STDIN and data.startswith(GZIP_MAGIC):
        data = _decompress(name, ".gz", data)
    if path == STDIN and data.startswith(NPY_MAGIC):
        return _Source(name, array=_load_npy(name, io.BytesIO(data)))
    if path == STDIN and data.startswith(ZIP_MAGIC):
        return _Source(name, archive=_load_npz(name, io.BytesIO(data)))
    return _Source(name, table=parse_text(name, data, delimiter=delimiter, header=header))


def expand_paths(spec: str) -> list[str]:
    """The files a LOGITS or LABELS argument names: a path, a glob (sorted), or a,b,c."""
    if spec == STDIN or Path(spec).exists():
        return [spec]
    if any(char in spec for char in "*?["):
        found = sorted(glob.glob(spec))
        if not found:
            raise XentError("no file matches this pattern", spec)
        return found
    if "," in spec:
        return [part for part in spec.split(",") if part]
    return [spec]


def _check_readable(path: str) -> None:
    """Fail early, with a clear message, when a path cannot be opened."""
    with _file_errors(path), open(path, "rb"):
        pass


def _column_index(table: TextTable, column: str) -> int:
    if table.header and column in table.header:
        return table.header.index(column)
    try:
        index = int(column)
    except ValueError:
        known = ", ".join(c for c in table.header or () if c) or "none: the file has no header"
        raise XentError(f"no column named {column!r} (columns: {known})", table.name) from None
    first = 1 if table.row_id else 0
    if not 0 <= index < table.width - first:
        raise XentError(
            f"column index {index} is out of range (0..{table.width - first - 1})", table.name
        )
    return index + first


def _names_to_indices(
    names: Sequence[str], class_names: Sequence[str] | None, locate: Locate
) -> np.ndarray:
    if not class_names:
        row = next(k for k, name in enumerate(names) if not _is_number(name))
        raise XentError(
            f"label {names[row]!r} is not a number, and the class names are unknown: "
            "give them with --classes a,b,c or a header row in the logits file",
            locate(row),
        )
    lookup = {name: index for index, name in enumerate(class_names)}
    indices = np.empty(len(names), dtype=np.int64)
    for row, name in enumerate(names):
        index = lookup.get(name)
        if index is None:
            raise XentError(f"unknown class {name!r} (known: {', '.join(class_names)})", locate(row))
        indices[row] = index
    return indices


def _label_cells(
    cells: list[str] | np.ndarray, class_names: Sequence[str] | None, locate: Locate
) -> np.ndarray:
    """Class indices from a column: numbers already, or text cells of numbers or class names."""
    if isinstance(cells, np.ndarray):
        return cells
    cells = [c.strip().strip('"') for c in cells]
    if all(_is_number(c) for c in cells):
        return np.array([float(c) for c in cells], dtype=np.float64)
    return _names_to_indices(cells, class_names, locate)


def _labels_from_table(
    table: TextTable, class_names: Sequence[str] | None, header: bool | None
) -> tuple[np.ndarray, Locate]:
    columns = table.data_columns()
    named = [c for c in columns if table.header and table.header[c].lower() in LABEL_KEYS]
    if len(columns) > 1 and not named:
        return table.numbers(columns), table.locate  # soft labels
    column = named[0] if named else columns[0]
    cells = table.column(column)
    # A file of class names under a title line ("label", then "cat", "dog"):
    # the title is not a class, the next line is.
    if header is None and table.header is None and class_names and isinstance(cells, list) and len(cells) > 1:
        first, second = (c.strip().strip('"') for c in cells[:2])
        if first not in class_names and second in class_names:
            table = table.first_line_as_header()
            cells = table.column(column)
    return _label_cells(cells, class_names, table.locate), table.locate


def _logits_from_table(
    table: TextTable, label_col: str | None, classes: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...] | None, np.ndarray | None]:
    """(logits, class names, labels from --label-col or None)."""
    columns = table.data_columns()
    labels = None
    if label_col is not None:
        label_index = _column_index(table, label_col)
        columns.remove(label_index)
    if not columns:
        raise XentError("no columns left for the logits", table.name)
    class_names = tuple(classes) if classes else _header_names(table, columns)
    if label_col is not None:
        labels = _label_cells(table.column(label_index), class_names, table.locate)
    return table.numbers(columns), class_names, labels


def _header_names(table: TextTable, columns: Sequence[int]) -> tuple[str, ...] | None:
    if table.header is None:
        return None
    return tuple(table.header[c] for c in columns)


def position_shape(shape: tuple[int, ...], class_axis: int) -> tuple[int, ...]:
    """The shape of the positions: the array's shape without its class axis."""
    if len(shape) <= 1:
        return (1,)
    axis = class_axis % len(shape)
    return shape[:axis] + shape[axis + 1 :]


def load_batch(
    logits_path: str | None,
    labels_path: str | None = None,
    *,
    key: str | None = None,
    label_col: str | None = None,
    classes: Sequence[str] | None = None,
    class_axis: int = 1,
    delimiter: str | None = None,
    header: bool | None = None,
    stdin: BinaryIO | None = None,
) -> Batch:
    """Read the logits and the labels into a Batch (the bundled example if no paths)."""
    if logits_path is None:
        return example_batch()
    if logits_path == STDIN and labels_path == STDIN:
        raise XentError("only one of LOGITS and LABELS can be read from stdin ('-')")
    source = read_source(logits_path, delimiter=delimiter, header=header, stdin=stdin)
    labels: np.ndarray | None = None
    locate_labels: Locate | None = None
    labels_name = labels_path or source.name
    if source.table is not None:
        logits, class_names, labels = _logits_from_table(source.table, label_col, classes)
        locate_logits: Locate = source.table.locate
        locate_labels = source.table.locate
    else:
        if label_col is not None:
            raise XentError("--label-col applies to text files; this input is an array", source.name)
        class_names = tuple(classes) if classes else None
        logits_name = source.name
        if source.archive is not None:
            logits_key = source.archive.logits_key(key)
            logits = source.archive.get(logits_key)
            logits_name = f"{source.name}[{logits_key}]"
            found = source.archive.labels_key()
            if labels_path is None and found is not None:
                labels = source.archive.get(found)
                labels_name = f"{source.name}[{found}]"
                locate_labels = _array_locator(labels_name, labels.shape)
        else:
            logits = source.array
        locate_logits = _array_locator(logits_name, position_shape(logits.shape, class_axis))

    if labels is None:
        if labels_path is None:
            raise XentError("no labels: give a LABELS file, or --label-col for a column of LOGITS")
        labels_source = read_source(labels_path, delimiter=delimiter, header=header, stdin=stdin)
        labels_name = labels_source.name
        labels, locate_labels = _labels_from_source(labels_source, class_names, header)

    if logits.dtype.kind != "f":
        raise XentError(f"logits must be floating point numbers, got {logits.dtype}", source.name)
    if class_names is not None and logits.ndim > 0 and len(class_names) != logits.shape[class_axis % logits.ndim]:
        raise XentError(
            f"{len(class_names)} class names ({', '.join(class_names)}) "
            f"but the logits have {logits.shape[class_axis % logits.ndim]} classes"
        )
    soft = labels.shape == logits.shape
    logits_rows = position_shape(logits.shape, class_axis)[0] if not soft else len(logits)
    label_rows = len(labels) if labels.ndim > 0 else 1
    if logits_rows != label_rows:
        raise XentError(
            f"{labels_name} has {label_rows} rows of labels "
            f"but {source.name} has {logits_rows} rows of logits"
        )
    return Batch(
        logits=logits,
        target=labels,
        class_axis=class_axis,
        logits_name=source.name,
        labels_name=labels_name,
        class_names=class_names,
        locate_logits=locate_logits,
        locate_labels=locate_labels,
    )


def _labels_from_source(
    source: _Source, class_names: Sequence[str] | None, header: bool | None
) -> tuple[np.ndarray, Locate]:
    if source.table is not None:
        return _labels_from_table(source.table, class_names, header)
    if source.archive is not None:
        key = source.archive.labels_key()
        if key is None and len(source.archive.keys) == 1:
            key = source.archive.keys[0]
        if key is None:
            raise XentError(
                f"cannot tell which array holds the labels ({', '.join(source.archive.keys)}); "
                f"name it one of {', '.join(LABEL_KEYS)}",
                source.name,
            )
        array, name = source.archive.get(key), f"{source.name}[{key}]"
    else:
        array, name = source.array, source.name
    locate = _array_locator(name, array.shape)
    if array.dtype.kind in "US":
        cells = [str(c) for c in array.reshape(-1)]
        return _names_to_indices(cells, class_names, locate).reshape(array.shape), locate
    if array.dtype.kind not in "biuf":
        raise XentError(f"labels must be integers, probabilities or class names, got {array.dtype}", name)
    return array, locate


def example_batch() -> Batch:
    """The seed notebook's 3×5 batch with targets [3, 0, 2]."""

    def locate(row: int) -> str:
        return f"{EXAMPLE_NAME} row {row}"

    return Batch(
        logits=EXAMPLE_LOGITS,
        target=EXAMPLE_TARGETS,
        class_axis=1,
        logits_name=EXAMPLE_NAME,
        labels_name=EXAMPLE_NAME,
        class_names=None,
        locate_logits=locate,
        locate_labels=locate,
    )


def read_vector(text: str, option: str = "--weight") -> np.ndarray:
    """Numbers from a file (any input format) or an inline list ``1,2,0.5``."""
    if Path(text).suffix.lower() in (".csv", ".tsv", ".txt", ".dat", ".npy", ".npz", ".pt", ".gz") and not Path(text).exists():
        raise XentError("no such file", text)
    if Path(text).exists() or text == STDIN:
        source = read_source(text)
        if source.table is not None:
            return source.table.numbers(source.table.data_columns()).reshape(-1)
        array = source.array if source.archive is None else source.archive.get(source.archive.logits_key(None))
        if array.dtype.kind not in "biuf":
            raise XentError(f"{option} must be numbers, got {array.dtype}", source.name)
        return np.asarray(array, dtype=np.float64).reshape(-1)
    try:
        return np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError:
        raise XentError(f"{option} takes a file or a comma-separated list of numbers; {text!r} is neither") from None

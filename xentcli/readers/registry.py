"""One registry of input formats: suffix, magic bytes, and the module that reads them.

A path is read by its suffix; where the suffix says nothing (no suffix,
``.bin``, ``/dev/fd/63``, stdin) the first bytes decide, and text is the
last resort. Compression (gzip, bz2, xz) wraps any format and is undone
first, up to ``max_bytes``. Each reader module has ``read(name, data,
options)`` for bytes and, where it can map a file instead, ``read_path``.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from ..bfloat16 import BFLOAT16
from ..choices import DEFAULT_MAX_BYTES
from ..errors import XentError

STDIN = "-"
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(path: str) -> bool:
    """Whether a path names a URL (read through fsspec: readers/remote.py); file:// is a path."""
    return bool(SCHEME.match(path)) and not path.lower().startswith("file://")


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]
    magic: tuple[bytes, ...]
    module: str


NPY = Format("npy", (".npy",), (b"\x93NUMPY",), "npy")
SAFETENSORS = Format("safetensors", (".safetensors",), (), "safetensors")
PARQUET = Format("parquet", (".parquet", ".pq"), (b"PAR1",), "parquet")
ARROW = Format("arrow", (".arrow", ".feather", ".ipc"), (b"ARROW1",), "arrow")
NPZ = Format("npz", (".npz",), (b"PK\x03\x04", b"PK\x05\x06"), "npz")  # a zip: NPZ, or torch's (see _by_magic)
TORCH = Format("torch", (".pt", ".pth"), (), "pt")
TEXT = Format("text", (".csv", ".tsv", ".txt", ".dat"), (), "textfile")
FORMATS = (NPY, NPZ, TORCH, SAFETENSORS, PARQUET, ARROW, TEXT)
# suffix -> (stdlib module, magic bytes)
COMPRESSIONS = {".gz": ("gzip", b"\x1f\x8b"), ".bz2": ("bz2", b"BZh"), ".xz": ("lzma", b"\xfd7zXZ\x00")}
# Suffixes of formats xent does not read (yet), and what to say about them.
REFUSED = {
    ".pkl": "a pickle, which xent never loads (save arrays with np.save)",
    ".pickle": "a pickle, which xent never loads (save arrays with np.save)",
    ".json": "JSON, which xent does not read (write CSV or NPY)",
    ".h5": "HDF5, which xent does not read (write NPY)",
    ".hdf5": "HDF5, which xent does not read (write NPY)",
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read text (delimiter, header, id columns) and how much to inflate at most."""

    delimiter: str | None = None
    header: bool | None = None
    ids: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    stdin: BinaryIO | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Source:
    """One input, read: an array, an archive of named arrays, or a text table."""

    name: str
    array: np.ndarray | None = None
    archive: Archive | None = None
    table: Any = None  # text.TextTable
    frame: Any = None  # columnar.Frame: Parquet, Arrow
    notices: tuple[str, ...] = ()  # how it was read, where a user should hear it (bfloat16 from 2-byte voids)


class Archive:
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
        except XentError:
            raise
        except Exception as error:  # a corrupt member can raise nearly anything
            raise refusal(where, "cannot read the array", error) from None
        return checked(array, where)


def checked(array: Any, where: str) -> np.ndarray:
    """An array of plain numbers or strings: no Python objects, no records."""
    if not isinstance(array, np.ndarray):
        raise XentError("not an array", where)
    if array.dtype == BFLOAT16:
        return array
    if array.dtype.hasobject or array.dtype.fields:
        raise XentError(f"unsupported dtype {array.dtype}", where)
    return array


def refusal(where: str, what: str, error: Exception) -> XentError:
    """The XentError for an array numpy would not load; pickles are named as such."""
    text = str(error)
    if "pickle" in text or "object" in text.lower():
        return XentError("holds Python objects (pickled data), which xent never loads", where)
    return XentError(f"{what} ({type(error).__name__}: {text.splitlines()[0] if text else ''})", where)


def _module(fmt: Format) -> Any:
    return importlib.import_module(f"{__package__}.{fmt.module}")


def _by_suffix(suffix: str | None) -> Format | None:
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def _by_magic(head: bytes) -> Format:
    if head.startswith(NPZ.magic) and _holds_torch(head):
        return TORCH
    return next((f for f in FORMATS if any(head.startswith(m) for m in f.magic)), TEXT)


def _holds_torch(data: bytes) -> bool:
    """A zip from torch.save holds a pickle (``*/data.pkl``) beside its tensors."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _compression(head: bytes) -> str | None:
    return next((s for s, (_, magic) in COMPRESSIONS.items() if head.startswith(magic)), None)


def read_source(path: str, options: ReadOptions = ReadOptions()) -> Source:
    """Read one input file (or stdin): by its suffix, else by its first bytes."""
    if path == STDIN:
        return _read_data("<stdin>", _read_stream(_stdin(options), "<stdin>", options.max_bytes), None, options)
    if is_url(path):
        return _read_url(path, options)
    with file_errors(path):
        mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise XentError("is a directory, not a file", path)
    suffixes = [s.lower() for s in Path(path).suffixes]
    compressed = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else None
    inner = suffixes[-2] if compressed and len(suffixes) > 1 else (None if compressed else (suffixes or [None])[-1])
    if inner in REFUSED:
        raise XentError(f"{inner} is {REFUSED[inner]}", path)
    fmt = _by_suffix(inner)
    if not stat.S_ISREG(mode):  # a pipe, a FIFO, /dev/fd/N, a device: read once, as a stream
        with file_errors(path), open(path, "rb") as stream:
            return _read_data(path, _read_stream(stream, path, options.max_bytes), fmt, options)
    if compressed is None and fmt is None:
        with file_errors(path), open(path, "rb") as file:
            head = file.read(8)
        compressed = _compression(head)
        if compressed is None and not head.startswith(NPZ.magic):
            fmt = _by_magic(head)
    if compressed is not None or fmt is None:  # to inflate, or a zip to tell NPZ from torch's by its members
        with file_errors(path):
            data = Path(path).read_bytes()
        return _read_data(path, data, fmt, options, compressed)
    module = _module(fmt)
    if hasattr(module, "read_path"):
        return module.read_path(path, options)
    with file_errors(path):
        data = Path(path).read_bytes()
    return module.read(path, data, options)


def _read_url(url: str, options: ReadOptions) -> Source:
    """A file behind a URL: NPY and Parquet by ranges, anything else whole (up to --max-bytes)."""
    from urllib.parse import urlsplit

    from . import remote

    name = remote.redacted(url)
    suffixes = [s.lower() for s in PurePosixPath(urlsplit(url).path).suffixes]
    compressed = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else None
    inner = suffixes[-2] if compressed and len(suffixes) > 1 else (None if compressed else (suffixes or [None])[-1])
    if inner in REFUSED:
        raise XentError(f"{inner} is {REFUSED[inner]}", name)
    fmt = _by_suffix(inner)
    if compressed is None and fmt is NPY:
        return Source(name, array=remote.RemoteArray(url))
    if compressed is None and fmt is PARQUET:
        return _module(PARQUET).read_file(name, remote.open_url(url))
    return _read_data(name, remote.read_all(url, options.max_bytes), fmt, options, compressed)


def _read_data(
    name: str, data: bytes, fmt: Format | None, options: ReadOptions, compressed: str | None = None
) -> Source:
    """Bytes in memory: undo compression (`compressed`, else as the magic says), then
    read them as `fmt` or as their magic says."""
    compressed = compressed or _compression(data[:8])
    if compressed is not None:
        data = decompress(name, compressed, data, options.max_bytes)
    return _module(fmt or _by_magic(data[:4096] if data.startswith(b"PK") else data[:8])).read(name, data, options)


def _stdin(options: ReadOptions) -> BinaryIO:
    if options.stdin is not None:
        return options.stdin
    if sys.stdin is None:
        raise XentError("standard input is closed", "<stdin>")
    return sys.stdin.buffer


def _read_stream(stream: BinaryIO, name: str, max_bytes: int) -> bytes:
    """All of a stream, but never more than max_bytes (``/dev/zero`` ends in an error, not in swap)."""
    try:
        data = stream.read(max_bytes + 1)
    except (OSError, ValueError) as error:
        raise XentError(f"cannot read: {getattr(error, 'strerror', None) or error}", name) from None
    if data is None:
        data = b""
    if len(data) > max_bytes:
        raise XentError(f"more than {max_bytes} bytes: past the --max-bytes limit", name)
    return data


def decompress(name: str, suffix: str, data: bytes, max_bytes: int) -> bytes:
    """The inflated bytes, stopping with an error past max_bytes (a zip bomb ends early)."""
    module = importlib.import_module(COMPRESSIONS[suffix][0])
    try:
        with module.open(io.BytesIO(data)) as stream:
            out = stream.read(max_bytes + 1)
    except Exception as error:  # each module has its own error types (OSError, LZMAError, EOFError, ...)
        raise XentError(f"cannot decompress ({error})", name) from None
    if len(out) > max_bytes:
        raise XentError(f"inflates to more than {max_bytes} bytes: past the --max-bytes limit", name)
    return out


class file_errors:
    """The OS's complaints about opening a path, as one clear XentError."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: Any) -> bool:
        if isinstance(error, FileNotFoundError):
            raise XentError("no such file", self.path) from None
        if isinstance(error, IsADirectoryError):
            raise XentError("is a directory, not a file", self.path) from None
        if isinstance(error, OSError):
            raise XentError(f"cannot read: {error.strerror or error}", self.path) from None
        return False


def known_suffixes() -> Sequence[str]:
    return [s for f in FORMATS for s in f.suffixes]

"""Inputs named by URL (`https://`, `s3://`, `gs://`, `az://`, `hf://`, ...), through
fsspec (the `remote` extra), which is imported only when a URL is given.

NPY is read by byte ranges: its header first, then the rows a block needs
(`RemoteArray`), so a 100 GB dump is never downloaded whole; Parquet too,
through pyarrow's reads of the row groups it needs. Every other format is
read whole into memory, up to --max-bytes, as a stream is. A URL is named
in messages without its user, password or query string (where presigned
URLs and tokens live).
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import XentError

EXTRA = "pip install 'xentcli[remote]'"


def redacted(url: str) -> str:
    """The URL as messages name it: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "…" if parts.query else "", ""))


def _fsspec(url: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise XentError(f"reading URLs needs fsspec: {EXTRA}", redacted(url)) from None
    return fsspec


def _failure(url: str, error: Exception) -> XentError:
    if isinstance(error, FileNotFoundError):
        cause = error.__cause__ or error.__context__  # fsspec's HTTP reports an unreachable server so too
        if cause is None or "404" in str(cause) or isinstance(cause, FileNotFoundError):
            return XentError("no such file", redacted(url))
        return XentError(f"cannot reach it ({type(cause).__name__}: {_scrubbed(str(cause)).splitlines()[0]})", redacted(url))
    if isinstance(error, ImportError):  # a protocol's own package (s3fs, gcsfs, adlfs, aiohttp) is missing
        return XentError(f"this kind of URL needs another package: {error}", redacted(url))
    text = _scrubbed(str(error).replace(url, redacted(url)))
    return XentError(f"cannot read ({type(error).__name__}: {text.splitlines()[0] if text else ''})", redacted(url))


def _scrubbed(text: str) -> str:
    """A library's message with any URL's user, password and query string taken out,
    however the library wrote the URL (quoted, normalised, re-encoded)."""
    text = re.sub(r"(//)[^/@\s'\"]+@", r"\1", text)
    return re.sub(r"\?[^\s'\")]+", "?…", text)


def open_url(url: str) -> Any:
    """A seekable binary file over the URL (fsspec reads it by ranges where the server allows)."""
    fsspec = _fsspec(url)
    try:
        # No read-ahead cache: the engine asks for whole blocks of rows, from two threads at
        # different places; a cache would fetch past each block and throw it away.
        fs, path = fsspec.core.url_to_fs(url)
        return fs.open(path, "rb", cache_type="none")
    except Exception as error:  # fsspec and its backends raise many kinds
        raise _failure(url, error) from None


def expand(pattern: str) -> list[str]:
    """The URLs a glob names (where the storage can list: s3, gs, az, hf, not plain http)."""
    fsspec = _fsspec(pattern)
    try:
        fs, path = fsspec.core.url_to_fs(pattern)
        found = sorted(fs.glob(path))
    except Exception as error:
        raise _failure(pattern, error) from None
    if not found:
        raise XentError("no file matches this pattern", redacted(pattern))
    return [fs.unstrip_protocol(p) for p in found]


def read_all(url: str, max_bytes: int) -> bytes:
    """The whole file, but never more than max_bytes."""
    with open_url(url) as file:
        try:
            data = file.read(max_bytes + 1)
        except Exception as error:
            raise _failure(url, error) from None
    if len(data) > max_bytes:
        raise XentError(f"more than {max_bytes} bytes: past the --max-bytes limit", redacted(url))
    return data


class RemoteArray:
    """An NPY file behind a URL as a read-only array, read by ranges: `array[a:b]`
    fetches the bytes of rows a..b-1 (of the first axis) and nothing else."""

    def __init__(self, url: str) -> None:
        self.url, self.name = url, redacted(url)
        self.file = open_url(url)
        self._lock = threading.Lock()
        try:
            version = np.lib.format.read_magic(self.file)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(self.file)
        except Exception as error:
            raise XentError(f"not a valid NPY file ({type(error).__name__}: {error})", self.name) from None
        if dtype.hasobject:
            raise XentError("holds Python objects (pickled data), which xent never loads", self.name)
        if fortran and len(shape) > 1:
            raise XentError("is stored in Fortran order, which cannot be read by rows: save it with np.ascontiguousarray", self.name)
        self.offset = self.file.tell()
        self.shape, self.dtype, self.ndim = tuple(shape), dtype, len(shape)
        self.size = int(np.prod(shape))
        self.nbytes = self.size * dtype.itemsize
        self.row_bytes = int(np.prod(shape[1:])) * dtype.itemsize if shape else dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a RemoteArray is read by slices of its first axis")
        start, stop, _ = key.indices(self.shape[0])
        count = max(stop - start, 0)
        with self._lock:
            try:
                self.file.seek(self.offset + start * self.row_bytes)
                data = self.file.read(count * self.row_bytes)
            except Exception as error:
                raise _failure(self.url, error) from None
        if len(data) != count * self.row_bytes:
            raise XentError(f"the file ends before row {stop} (truncated?)", self.name)
        return np.frombuffer(data, dtype=self.dtype).reshape((count, *self.shape[1:]))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:] if self.ndim else np.empty(0, dtype=self.dtype)
        return out if dtype is None else out.astype(dtype)

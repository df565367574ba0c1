"""NPZ: a zip of NPY members, each loaded on demand; members are never unpickled,
and one that would inflate past --max-bytes is refused before it is read."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import XentError
from .registry import Archive, ReadOptions, Source, file_errors, refusal


class _Members(Mapping):
    """An NpzFile's arrays, each checked for its inflated size before it is loaded."""

    def __init__(self, name: str, archive: Any, max_bytes: int) -> None:
        self.name, self.archive, self.max_bytes = name, archive, max_bytes

    def __getitem__(self, key: str) -> np.ndarray:
        info = self.archive.zip.getinfo(key if key in self.archive.zip.namelist() else f"{key}.npy")
        if info.file_size > self.max_bytes:
            raise XentError(
                f"inflates to {info.file_size} bytes: past the --max-bytes limit ({self.max_bytes})",
                f"{self.name}[{key}]",
            )
        if not info.filename.endswith(".npy"):
            raise XentError("not an NPY member (an NPZ holds .npy files)", f"{self.name}[{key}]")
        return self.archive[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.archive.files)

    def __len__(self) -> int:
        return len(self.archive.files)


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb"):
        pass
    return Source(path, archive=load(path, path, options.max_bytes))


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    return Source(name, archive=load(name, io.BytesIO(data), options.max_bytes))


def load(name: str, source: str | io.BytesIO, max_bytes: int) -> Archive:
    try:
        archive = np.load(source, allow_pickle=False)
    except Exception as error:  # ValueError, OSError, EOFError, zipfile.BadZipFile, ...
        raise refusal(name, "not a valid NPZ file", error) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise XentError("not an NPZ archive", name)
    if not archive.files:
        raise XentError("the archive holds no arrays", name)
    return Archive(name, _Members(name, archive, max_bytes))

"""NPY: memory-mapped from a file, parsed from bytes; never unpickled."""

from __future__ import annotations

import io

import numpy as np

from .registry import ReadOptions, Source, checked, file_errors, refusal


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb"):
        pass
    return Source(path, array=load(path, path))


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    return Source(name, array=load(name, io.BytesIO(data)))


def load(name: str, source: str | io.BytesIO) -> np.ndarray:
    try:
        mode = "r" if isinstance(source, str) else None
        array = np.load(source, mmap_mode=mode, allow_pickle=False)
    except Exception as error:  # a corrupt header can raise nearly anything
        raise refusal(name, "not a valid NPY file", error) from None
    return checked(array, name)

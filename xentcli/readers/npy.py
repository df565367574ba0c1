"""NPY: memory-mapped from a file, parsed from bytes; never unpickled."""

from __future__ import annotations

import io

import numpy as np

from ..bfloat16 import from_bits
from .registry import ReadOptions, Source, checked, file_errors, refusal


VOID_BFLOAT16 = np.dtype("V2")  # how np.save writes ml_dtypes' bfloat16 (and torch's, through it)


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb"):
        pass
    return _source(path, load(path, path))


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    return _source(name, load(name, io.BytesIO(data)))


def _source(name: str, array: np.ndarray) -> Source:
    if array.dtype != VOID_BFLOAT16:
        return Source(name, array=array)
    notice = f"{name}: read as bfloat16 (its dtype is 2-byte void, as np.save writes ml_dtypes.bfloat16)"
    return Source(name, array=from_bits(array), notices=(notice,))


def load(name: str, source: str | io.BytesIO) -> np.ndarray:
    try:
        mode = "r" if isinstance(source, str) else None
        array = np.load(source, mmap_mode=mode, allow_pickle=False)
    except Exception as error:  # a corrupt header can raise nearly anything
        raise refusal(name, "not a valid NPY file", error) from None
    return checked(array, name)

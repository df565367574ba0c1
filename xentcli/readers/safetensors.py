"""safetensors: named tensors behind a JSON header, memory-mapped, never unpickled.

The format (huggingface/safetensors, docs "Format"): 8 bytes, the header's
length N as a little-endian u64; N bytes of JSON mapping each tensor's name
to its dtype, shape and [begin, end) byte offsets into the data that
follows (`__metadata__` holds strings); the data, little-endian, C order.
Every offset and size is checked against the file before a byte is read,
and each tensor is a view of one memory map, so a 10 GB dump costs no
memory until its blocks are read. bfloat16 stays 16 bits (bfloat16.py)
until the engine widens a block.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from typing import Any

import numpy as np

from ..bfloat16 import BFLOAT16
from ..errors import XentError
from .registry import Archive, ReadOptions, Source, file_errors

MAX_HEADER = 100 << 20  # the reference implementation refuses larger headers too
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": BFLOAT16,
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            raise XentError("the file is empty (not a safetensors file)", path)
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return Source(path, archive=Archive(path, _tensors(path, data)))


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    return Source(name, archive=Archive(name, _tensors(name, data)))


def _tensors(name: str, data: Any) -> dict[str, np.ndarray]:
    """Every tensor of the file, as views of `data` (bytes or a memory map)."""
    size = len(data)
    if size < 8:
        raise XentError("too short for a safetensors file (no header length)", name)
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(MAX_HEADER, size - 8):
        raise XentError(f"not a safetensors file: its header would be {length} bytes, the file has {size}", name)
    try:
        header = json.loads(bytes(data[8 : 8 + length]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise XentError(f"not a safetensors file: its header is not JSON ({error})", name) from None
    if not isinstance(header, dict):
        raise XentError("not a safetensors file: its header is not a JSON object", name)
    start, available = 8 + length, size - 8 - length
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        tensors[key] = _tensor(f"{name}[{key}]", data, info, start, available)
    if not tensors:
        raise XentError("holds no tensors", name)
    return tensors


def _tensor(where: str, data: Any, info: Any, start: int, available: int) -> np.ndarray:
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise XentError("its header entry lacks dtype, shape or data_offsets", where)
    kind, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if kind not in DTYPES:
        raise XentError(f"holds {kind} numbers, which xent does not read (save F32, F16 or BF16)", where)
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise XentError(f"has a shape that is not a list of sizes: {shape!r}", where)
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise XentError(f"has data_offsets that are not [begin, end]: {offsets!r}", where)
    dtype = DTYPES[kind]
    begin, end = offsets
    expected = math.prod(shape) * dtype.itemsize
    if not 0 <= begin <= end <= available or end - begin != expected:
        raise XentError(
            f"its data_offsets [{begin}, {end}) do not hold {kind} of shape {tuple(shape)} "
            f"({expected} bytes) within the file's {available} data bytes",
            where,
        )
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=start + begin).reshape(shape)

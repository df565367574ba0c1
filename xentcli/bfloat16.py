"""bfloat16 without a dependency: numpy has no such type, so its two bytes are
kept as a structured dtype of two byte fields (`BFLOAT16`), which numpy
refuses to cast to numbers (with one field it would read the bits as an
integer: a silently wrong number), and widened to float32 exactly, a block
at a time, by shifting the 16 bits into the high half of a float32
(bfloat16 is float32's top 16 bits)."""

from __future__ import annotations

import numpy as np

BFLOAT16 = np.dtype([("low", "u1"), ("high", "u1")])  # the 16 bits, little-endian as files store them


def widened(values: np.ndarray) -> np.ndarray:
    """float32 values of a bfloat16 array (any other array as it is)."""
    if values.dtype != BFLOAT16:
        return values
    bits = np.ascontiguousarray(values).view("<u2")
    return (bits.astype(np.uint32) << 16).view(np.float32)


def from_bits(bits: np.ndarray) -> np.ndarray:
    """A uint16 (or little-endian 2-byte void) array of bfloat16 bits as a BFLOAT16 view."""
    if bits.dtype.kind == "u":
        bits = bits.astype("<u2", copy=False)
    return np.ascontiguousarray(bits).view(BFLOAT16)

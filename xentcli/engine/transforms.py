"""What happens to a block of logits before the math: the cast to the dtype
the math runs in (float16 and bfloat16 computed in float32). Transforms of
the logits themselves (temperature, soft-capping) go here, in TRANSFORMS."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import XentError
from .logprobs import Ops


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the math runs in: float16 (and smaller) is upcast to float32."""
    if not np.issubdtype(dtype, np.floating):
        raise XentError(f"logits must be floating point, got {dtype}")
    return np.dtype(np.float32) if dtype.itemsize < 4 else np.dtype(dtype)


# (is it active under these settings, the transform x -> x'), in the order they apply
TRANSFORMS: tuple = ()


def prepare(ops: Ops, spec: Any, raw: np.ndarray) -> Any:
    """A block of logits as the math sees it: on the device, in its dtype, transformed."""
    x = ops.load(raw, spec.dtype)
    for active, transform in TRANSFORMS:
        if active(spec):
            x = transform(ops, spec, x)
    return x

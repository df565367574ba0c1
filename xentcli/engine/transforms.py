"""What happens to a block of logits before the math: the cast to the dtype
the math runs in (float16 and bfloat16 computed in float32), then the
transforms of the logits themselves, in TRANSFORMS, in this order:

- soft-capping (Gemma 2's final_logit_softcapping): x -> cap * tanh(x / cap),
  as transformers' Gemma2ForCausalLM writes it (divide, tanh, multiply);
- temperature: x -> x / T (as a sampler applies it, after the model's capping)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bfloat16 import BFLOAT16
from ..errors import XentError
from .logprobs import Ops


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype the math runs in: float16 and bfloat16 (and smaller) are upcast to
    float32; a big-endian file's floats (np.save keeps their order) in native order."""
    if dtype == BFLOAT16:
        return np.dtype(np.float32)
    if not np.issubdtype(dtype, np.floating):
        raise XentError(f"logits must be floating point, got {dtype}")
    return np.dtype(np.float32) if dtype.itemsize < 4 else np.dtype(dtype).newbyteorder("=")


def softcap(ops: Ops, spec: Any, x: Any) -> Any:
    return ops.tanh(x / spec.softcap) * spec.softcap


def temperature(ops: Ops, spec: Any, x: Any) -> Any:
    return x / spec.temperature


# (is it active under these settings, the transform x -> x'), in the order they apply
TRANSFORMS: tuple = (
    (lambda spec: spec.softcap is not None, softcap),
    (lambda spec: spec.temperature is not None, temperature),
)


def prepare(ops: Ops, spec: Any, raw: np.ndarray) -> Any:
    """A block of logits as the math sees it: on the device, in its dtype, transformed."""
    return transformed(ops, spec, ops.load(raw, spec.dtype))


def transformed(ops: Ops, spec: Any, x: Any) -> Any:
    """Logits with every active transform applied (`spec`: a LossSpec or a BlockSpec)."""
    for active, transform in TRANSFORMS:
        if active(spec):
            x = transform(ops, spec, x)
    return x

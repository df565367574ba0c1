"""torch.save files: loaded with weights_only=True only, never fully unpickled."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from ..errors import XentError
from .registry import Archive, ReadOptions, Source


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    try:
        import torch
    except ImportError:
        raise XentError("reading torch files needs PyTorch: pip install 'xentcli[torch]'", name) from None
    try:
        with warnings.catch_warnings():  # torch warns about deprecated storages and quantized types
            warnings.simplefilter("ignore")
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a corrupt or unsafe file
        raise XentError(
            "not a file of tensors that torch loads with weights_only=True "
            "(corrupt, or it holds other Python objects, which xent never unpickles)",
            name,
        ) from None

    def as_array(value: Any, where: str) -> np.ndarray:
        if not isinstance(value, torch.Tensor):
            raise XentError(f"holds a {type(value).__name__}, not a tensor", where)
        if value.layout != torch.strided:
            raise XentError(f"holds a sparse tensor ({value.layout}): save a dense one (tensor.to_dense())", where)
        if value.is_quantized:
            raise XentError("holds a quantized tensor: save tensor.dequantize()", where)
        if value.device.type == "meta":
            raise XentError("holds a tensor on the meta device, which has no values", where)
        if value.dtype in (torch.bfloat16, torch.float16) or value.dtype.is_floating_point and value.element_size() == 1:
            value = value.float()
        if value.is_complex():
            raise XentError(f"holds {value.dtype} numbers, not real ones", where)
        return value.detach().numpy()

    if isinstance(loaded, dict):  # a checkpoint-like dict: its tensors (an `epoch: 3` beside them is left alone)
        tensors = {str(k): as_array(v, f"{name}[{k}]") for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        if not tensors:
            raise XentError(f"holds no tensors (keys: {', '.join(map(str, loaded))})", name)
        return Source(name, archive=Archive(name, tensors))
    return Source(name, array=as_array(loaded, name))

"""xent: compute and explain cross-entropy losses, exactly as PyTorch does.

    >>> import numpy as np, xentcli
    >>> result = xentcli.cross_entropy(np.array([[2.0, 0.0]]), np.array([0]))
    >>> round(result.loss, 4)
    0.1269

The core (readers, engine) imports neither typer nor rich.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ExitCode, XentError

if TYPE_CHECKING:
    from .engine import ClassRows, LossSpec, Result, cross_entropy, rows_at, softmax
    from .engine.sequences import next_token_targets, per_sequence
    from .engine.sigmoid import binary_cross_entropy
    from .readers import Batch, example_batch, load_batch

__version__ = "0.1.0"

# Imported on first use, so that `xent` guards Ctrl-C before numpy loads.
_LAZY = {"Batch": ".readers", "example_batch": ".readers", "load_batch": ".readers",
         "ClassRows": ".engine", "LossSpec": ".engine", "Result": ".engine", "cross_entropy": ".engine",
         "rows_at": ".engine", "softmax": ".engine", "binary_cross_entropy": ".engine.sigmoid",
         "next_token_targets": ".engine.sequences", "per_sequence": ".engine.sequences"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Batch",
    "ClassRows",
    "ExitCode",
    "LossSpec",
    "Result",
    "XentError",
    "__version__",
    "binary_cross_entropy",
    "cross_entropy",
    "example_batch",
    "load_batch",
    "next_token_targets",
    "per_sequence",
    "rows_at",
    "softmax",
]

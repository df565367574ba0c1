"""xent: compute and explain cross-entropy losses, exactly as PyTorch does.

    >>> import numpy as np, xentcli
    >>> result = xentcli.cross_entropy(np.array([[2.0, 0.0]]), np.array([0]))
    >>> round(result.loss, 4)
    0.1269

The core (readers, engine) imports neither typer nor rich.
"""

from .errors import ExitCode, XentError
from .inputs import Batch, example_batch, load_batch
from .loss import ClassRows, Result, cross_entropy, softmax

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "ClassRows",
    "ExitCode",
    "Result",
    "XentError",
    "__version__",
    "cross_entropy",
    "example_batch",
    "load_batch",
    "softmax",
]

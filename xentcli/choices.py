"""Every option's choices and ranges, declared once.

The engine checks them, and the command line (whose enums are built from
these tuples) and xent.yaml read them, so the three cannot drift apart.
"""

from __future__ import annotations

from .conventions import MEAN_WITH_SAMPLE_WEIGHT
from .conventions import NAMES as CONVENTIONS

INPUT_KINDS = ("logits", "probs", "log-probs")
REDUCTIONS = ("mean", "sum", "none", MEAN_WITH_SAMPLE_WEIGHT)
BACKENDS = ("auto", "numpy", "torch")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "float64")
TASKS = ("auto", "multiclass", "binary", "multilabel")
FORMATS = {
    "compute": ("table", "json", "jsonl", "csv", "tsv", "yaml", "value"),
    "explain": ("table", "json", "markdown"),
    "compare": ("table", "json", "csv", "value"),
}

# xent.yaml key -> its choices
CHOICES = {
    "input": INPUT_KINDS,
    "reduction": REDUCTIONS,
    "backend": BACKENDS,
    "device": DEVICES,
    "dtype": DTYPES,
    "convention": CONVENTIONS,
    "task": TASKS,
    "format": tuple(dict.fromkeys(f for formats in FORMATS.values() for f in formats)),
}
DEFAULT_MAX_BYTES = 4 << 30  # what a compressed file, an NPZ member or a stream may inflate to in memory

# option -> (lowest, highest) allowed, None for no bound
RANGES = {
    "precision": (0, 17),
    "rows": (0, None),
    "top_k": (1, None),
    "label_smoothing": (0, 1),
    "threshold": (0, 1),
    "focal_gamma": (0, None),
    "focal_alpha": (0, 1),
    "z_loss": (0, None),
    "max_bytes": (1, None),
    "resamples": (0, 1_000_000),  # 8 MB per array of resampled sums: the bootstrap stays bounded
}

"""The engine: a batch's loss, its per-row numbers and its metrics.

A batch flows: rows.py sees the logits as (positions, classes) and checks
the targets; block.py runs each block through transforms.py (before the
math), the task's per-row loss (fast.py when it applies, else softmax.py,
with logprobs.py the one rule for log p), terms.py (additive terms) and the
weights; checks.py names bad values; core.py reduces and combines. shards.py
runs many files as one batch; metrics.py, compare.py and explain.py work on
the results; backends.py is the numpy / torch ops the math is written in.
"""

from .core import combine, cross_entropy, rows_at
from .logprobs import softmax
from .rows import ClassRows
from .spec import LossSpec, Result

__all__ = ["ClassRows", "LossSpec", "Result", "combine", "cross_entropy", "rows_at", "softmax"]

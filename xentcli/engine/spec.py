"""The settings that shape a loss (LossSpec) and what the engine returns (Result)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from ..choices import INPUT_KINDS, REDUCTIONS, TASKS
from ..errors import XentError
from .metrics import Metrics

InputKind = Literal["logits", "probs", "log-probs"]
Reduction = Literal["mean", "sum", "none", "mean-with-sample-weight"]

Locate = Callable[[int], str]
Progress = Callable[[int], None]


def row_number(position: int) -> str:
    """Where a position is, when the caller names no file: "row N"."""
    return f"row {position}"


@dataclass(frozen=True)
class LossSpec:
    """Every setting that shapes the number, in one place: the library takes it,
    the Result carries it, and the JSON's options are built from it.

    The data it applies to (class weights, sample weights, the class axis)
    and where it runs (backend, device) are not part of it."""

    input: InputKind = "logits"
    reduction: Reduction = "mean"
    ignore_index: int = -100
    label_smoothing: float = 0.0
    convention: str = "torch"
    dtype: str | None = None  # None: the input's (float16 computed in float32)
    task: str = "multiclass"  # softmax over classes; "binary" / "multilabel": the sigmoid family
    focal_gamma: float | None = None  # the sigmoid family's focal loss (Keras', optax's); None: cross-entropy
    focal_alpha: float | None = None  # its class balance: α for positives, 1 - α for negatives
    softcap: float | None = None  # logits -> softcap · tanh(logits / softcap) first (Gemma 2)
    temperature: float | None = None  # then logits / temperature
    z_loss: float = 0.0  # PaLM's auxiliary z_loss · logsumexp(logits)², added per counted position

    def check(self) -> None:
        if self.task not in TASKS[1:]:
            raise XentError(f"task must be one of {', '.join(TASKS[1:])}, got {self.task!r}")
        if self.reduction not in REDUCTIONS:
            raise XentError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {self.reduction!r}")
        if self.input not in INPUT_KINDS:
            raise XentError(f"input must be one of {', '.join(INPUT_KINDS)}, got {self.input!r}")
        if not 0.0 <= self.label_smoothing <= 1.0:
            raise XentError(f"label smoothing must lie in [0, 1], got {self.label_smoothing}")
        if self.task == "multiclass" and (self.focal_gamma is not None or self.focal_alpha is not None):
            raise XentError("--focal-gamma and --focal-alpha are the sigmoid family's focal loss: for --task binary or multilabel")
        if self.focal_alpha is not None and self.focal_gamma is None:
            raise XentError("--focal-alpha weighs the focal loss: give --focal-gamma too (2 is the paper's)")
        if self.focal_gamma is not None and not self.focal_gamma >= 0:
            raise XentError(f"the focal loss takes γ ≥ 0, got {self.focal_gamma:g}")
        if self.focal_alpha is not None and not 0 <= self.focal_alpha <= 1:
            raise XentError(f"the focal loss takes α in [0, 1], got {self.focal_alpha:g}")
        transforms = {"--softcap": self.softcap, "--temperature": self.temperature}
        for name, value in transforms.items():
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise XentError(f"{name} must be a positive number, got {value:g}")
        if not (self.z_loss >= 0 and math.isfinite(self.z_loss)):
            raise XentError(f"--z-loss must be a coefficient ≥ 0, got {self.z_loss:g}")
        given = [name for name, value in transforms.items() if value is not None] + (["--z-loss"] if self.z_loss else [])
        if given and (self.input != "logits" or self.task != "multiclass"):
            raise XentError(f"{', '.join(given)} act on a softmax's logits: --input logits, --task multiclass")

    def options(self) -> dict[str, Any]:
        """The settings, as the JSON reports them, with the version of xent that computed them."""
        from .. import __version__

        return {**asdict(self), "xent_version": __version__}


def rounded(pieces: Sequence[float]) -> tuple[float, float]:
    """The exactly rounded sum of pieces, and what that rounding left out
    (itself rounded; 0 when the sum is not finite)."""
    total = math.fsum(pieces)
    return total, (math.fsum([*pieces, -total]) if math.isfinite(total) else 0.0)


@dataclass(frozen=True)
class Result:
    """A reduced loss, the counts around it and, if kept, the per-position numbers.

    Positions are the rows of the batch, flattened over any extra
    dimensions (``shape`` gives their original layout). The per-position
    arrays (``losses``, ``log_p_target``, ``pred``, ``target``,
    ``ignored_mask``) are None when the engine was asked not to keep them.
    For soft labels ``target`` is the class with the most probability mass.
    """

    reduction: Reduction
    sum: float
    mean: float
    weight_sum: float
    rows: int
    classes: int
    shape: tuple[int, ...]
    ignored: int
    correct: int
    soft: bool
    backend: str = "numpy"
    device: str = "cpu"
    device_name: str | None = None
    dtype: str = "float64"
    convention: str = "torch"
    warnings: tuple[str, ...] = field(default=())
    metrics: Metrics | None = None
    losses: np.ndarray | None = None
    log_p_target: np.ndarray | None = None
    pred: np.ndarray | None = None
    target: np.ndarray | None = None
    ignored_mask: np.ndarray | None = None
    row_weights: np.ndarray | None = None  # each position's share of the mean's denominator
    spec: LossSpec = field(default_factory=LossSpec)  # the settings that made it
    scores: np.ndarray | None = None  # binary tasks: p(positive) per row
    binary: Any = None  # binary tasks: the ranking metrics (sigmoid.BinaryMetrics)
    parts: dict[str, float] = field(default_factory=dict)  # terms in the sum, reported apart: z_loss -> its sum
    # What rounding `sum` (and the sigmoid family's `weight_sum`, an fsum) left
    # out of the exact total: combine() adds it back, so that files read one
    # after another give one file's digits. The softmax family's weight_sum is
    # numpy's sum of the row weights, as the libraries divide by theirs.
    sum_rest: float = 0.0
    weight_sum_rest: float = 0.0

    @property
    def loss(self) -> float | None:
        """The reduced loss; None for ``reduction="none"`` (see ``losses``)."""
        if self.reduction == "none":
            return None
        return self.sum if self.reduction == "sum" else self.mean

    @property
    def p_target(self) -> np.ndarray | None:
        return None if self.log_p_target is None else np.exp(self.log_p_target)

    @property
    def accuracy(self) -> float:
        counted = self.rows - self.ignored
        return self.correct / counted if counted else math.nan

    def part_mean(self, name: str) -> float:
        """The mean of a term reported apart (z_loss): its sum over the mean's denominator."""
        return self.parts[name] / self.weight_sum if self.weight_sum else math.nan

    @property
    def cross_entropy_mean(self) -> float:
        """The mean loss without the terms reported apart (the z-loss)."""
        return self.mean - sum(self.part_mean(name) for name in self.parts)

    @property
    def perplexity(self) -> float:
        """exp(mean cross-entropy), the z-loss left out; NaN for a focal loss, which is no log-likelihood."""
        if self.spec.focal_gamma is not None:
            return math.nan
        with np.errstate(over="ignore"):
            return float(np.exp(self.cross_entropy_mean))

    @property
    def bits(self) -> float:
        """The mean cross-entropy in bits (per sample): nats / ln 2; NaN for a focal loss."""
        if self.spec.focal_gamma is not None:
            return math.nan
        return self.cross_entropy_mean / math.log(2)

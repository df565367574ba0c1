"""Each library's definition of the same loss, as data.

PyTorch, Keras, scikit-learn and optax agree on -log p(target) for one row
and disagree on the rest: how probabilities are cleaned, what a class
weight multiplies, what the mean divides by, what an all-ignored batch
gives. Sources (read for this table):
- torch: aten/src/ATen/native/LossNLL.cpp (nll_loss, cross_entropy_loss_label_smoothing,
  cross_entropy_loss_prob_target).
- keras 3: keras/src/losses/losses.py, loss.py (apply_mask, reduce_values,
  reduction "sum_over_batch_size"), backend/numpy/nn.py; class_weight in fit()
  becomes a per-row sample weight w[y].
- scikit-learn: sklearn/metrics/_classification.py log_loss (no renormalising,
  clip to the dtype's eps, np.average with sample_weight).
- optax: optax/losses/_classification.py softmax_cross_entropy(_with_integer_labels),
  smooth_labels; per-example losses, reduced here as jnp.mean over counted rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import XentError

NAMES = ("torch", "keras", "sklearn", "optax")


@dataclass(frozen=True)
class Convention:
    """How one library turns per-row losses into its loss."""

    name: str
    function: str
    # Probabilities: "clip" to [eps, 1 - eps] (eps of the dtype); "normalize-clip":
    # divide by the row sum, then clip to [1e-7, 1 - 1e-7]; "renormalize":
    # log_softmax of log p (log p - log sum p), no clipping.
    probs: Literal["clip", "normalize-clip", "renormalize"]
    # "per-class": w_c inside the loss (the smoothing term uses every w_c);
    # "per-row": the row's loss times w[target], as a sample weight.
    class_weights: Literal["per-class", "per-row"]
    # The mean divides by the sum of the counted rows' weights, or by their count.
    denominator: Literal["weights", "count"]
    # An all-ignored batch: NaN (0/0) or 0.
    all_ignored_is_zero: bool
    label_smoothing: bool = True
    soft_labels: bool = True

    def check(self, label_smoothing: float, soft: bool) -> None:
        if label_smoothing and not self.label_smoothing:
            raise XentError(f"{self.function} has no label smoothing (--convention {self.name})")
        if soft and not self.soft_labels:
            raise XentError(f"{self.function} takes class labels, not soft labels (--convention {self.name})")


CONVENTIONS = {
    "torch": Convention(
        "torch", "torch.nn.functional.cross_entropy", probs="clip", class_weights="per-class",
        denominator="weights", all_ignored_is_zero=False,
    ),
    "keras": Convention(
        "keras", "keras.losses.CategoricalCrossentropy", probs="normalize-clip", class_weights="per-row",
        denominator="count", all_ignored_is_zero=True,
    ),
    "sklearn": Convention(
        "sklearn", "sklearn.metrics.log_loss", probs="clip", class_weights="per-row",
        denominator="weights", all_ignored_is_zero=False, label_smoothing=False, soft_labels=False,
    ),
    "optax": Convention(
        "optax", "optax.softmax_cross_entropy", probs="renormalize", class_weights="per-row",
        denominator="count", all_ignored_is_zero=False,
    ),
}

KERAS_EPSILON = 1e-7


def get(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise XentError(f"unknown convention {name!r} (one of {', '.join(NAMES)})")
    return CONVENTIONS[name]


def departures(
    convention: Convention, input: str, weighted: bool, smoothing: bool, sample_weighted: bool, all_ignored: bool
) -> list[str]:
    """In words, where this convention's number departs from torch's for these options."""
    if convention.name == "torch":
        return []
    found = []
    if input == "probs":
        found.append(
            {
                "normalize-clip": "probabilities are divided by their row sum, then clipped to [1e-7, 1 - 1e-7]",
                "renormalize": "probabilities are renormalised (log_softmax of log p), never clipped",
                "clip": "probabilities are clipped to [eps, 1 - eps], not renormalised (as torch's xent default)",
            }[convention.probs]
        )
    if weighted:
        found.append("a class weight multiplies the whole row's loss, as a sample weight w[target]")
        if smoothing:
            found.append("so the smoothing term uses w[target], where torch uses every class's w_c")
    if convention.denominator == "count" and (weighted or sample_weighted):
        found.append("the mean divides by the number of counted rows, where torch divides by the sum of their weights")
    if all_ignored and convention.all_ignored_is_zero:
        found.append("an all-ignored batch gives 0, where torch gives NaN")
    return found

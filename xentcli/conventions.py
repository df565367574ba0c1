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
  Reduction "mean_with_sample_weight" divides by the sum of the sample weights;
  backend/jax/nn.py sums one-hot × log_softmax over every class (so a -inf
  logit outside the target gives 0 × -inf = NaN); floatx() is float32.
- scikit-learn: sklearn/metrics/_classification.py log_loss (no renormalising,
  clip to the dtype's eps, np.average with sample_weight; raises on a single
  class, on all-zero sample weights (utils/validation.py _check_sample_weight),
  on weights summing to 0 (np.average) and on an empty batch).
- optax: optax/losses/_classification.py softmax_cross_entropy(_with_integer_labels),
  smooth_labels; per-example losses, reduced here as jnp.mean over counted rows.
  Log-probabilities are logits to it (log_softmax renormalises them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .errors import XentError

NAMES = ("torch", "keras", "sklearn", "optax")
MEAN_WITH_SAMPLE_WEIGHT = "mean-with-sample-weight"


@dataclass(frozen=True)
class Convention:
    """How one library turns per-row losses into its loss."""

    name: str
    function: str
    # Probabilities: "clip" to [eps, 1 - eps] (eps of the dtype); "normalize-clip":
    # divide by the row sum, then clip to [1e-7, 1 - 1e-7]; "renormalize":
    # log_softmax of log p (log p - log sum p), no clipping.
    probs: Literal["clip", "normalize-clip", "renormalize"]
    # Log-probabilities: "given" (torch's nll_loss); "log-softmax": taken as
    # logits, so renormalised (Keras from_logits=True, optax); "exp-clip":
    # e^(log p) as probabilities, clipped to [eps, 1 - eps] (scikit-learn).
    log_probs: Literal["given", "log-softmax", "exp-clip"]
    # "per-class": w_c inside the loss (the smoothing term uses every w_c);
    # "per-row": the row's loss times w[target], as a sample weight.
    class_weights: Literal["per-class", "per-row"]
    # The mean divides by the sum of the counted rows' weights, or by their count.
    denominator: Literal["weights", "count"]
    # An all-ignored batch: NaN (0/0) or 0.
    all_ignored_is_zero: bool
    label_smoothing: bool = True
    soft_labels: bool = True
    # Keras: -sum over every class of one-hot × log-softmax, so a -inf logit
    # outside the target class gives 0 × -inf = NaN.
    one_hot_nan: bool = False
    # scikit-learn raises where the others give NaN: a single class, no rows,
    # all-zero weights, weights summing to 0 (see refusal()).
    refuses_degenerate: bool = False
    reductions: tuple[str, ...] = ("mean", "sum", "none")
    # What the library computes in unless told otherwise, when that is not the input's dtype.
    default_dtype: str | None = None
    dtype_note: str = ""

    def check(self, label_smoothing: float, soft: bool, classes: int = 2, reduction: str = "mean") -> None:
        """Refuse what this library has no notion of, as it would."""
        if label_smoothing and not self.label_smoothing:
            raise XentError(f"{self.function} has no label smoothing (--convention {self.name})")
        if soft and not self.soft_labels:
            raise XentError(f"{self.function} takes class labels, not soft labels (--convention {self.name})")
        if reduction not in self.reductions:
            raise XentError(
                f"--reduction {reduction} is Keras's reduction, not {self.function}'s: "
                f"use it with --convention keras (--convention {self.name} has {', '.join(self.reductions)})"
            )
        if classes < 2 and self.refuses_degenerate:
            raise XentError(
                f"{self.function} refuses a single class (it needs two or more labels, and reads one column "
                f"as P(class 1) of two): the input has 1 class (--convention {self.name})"
            )

    def for_reduction(self, reduction: str) -> Convention:
        """The convention as this reduction applies it: Keras's mean_with_sample_weight
        divides by the sum of the row weights instead of their count."""
        if reduction == MEAN_WITH_SAMPLE_WEIGHT:
            return replace(self, denominator="weights")
        return self


CONVENTIONS = {
    "torch": Convention(
        "torch", "torch.nn.functional.cross_entropy", probs="clip", log_probs="given", class_weights="per-class",
        denominator="weights", all_ignored_is_zero=False,
    ),
    "keras": Convention(
        "keras", "keras.losses.CategoricalCrossentropy", probs="normalize-clip", log_probs="log-softmax",
        class_weights="per-row", denominator="count", all_ignored_is_zero=True, one_hot_nan=True,
        reductions=("mean", "sum", "none", MEAN_WITH_SAMPLE_WEIGHT), default_dtype="float32",
        dtype_note="keras.backend.floatx() is float32",
    ),
    "sklearn": Convention(
        "sklearn", "sklearn.metrics.log_loss", probs="clip", log_probs="exp-clip", class_weights="per-row",
        denominator="weights", all_ignored_is_zero=False, label_smoothing=False, soft_labels=False,
        refuses_degenerate=True,
    ),
    "optax": Convention(
        "optax", "optax.softmax_cross_entropy", probs="renormalize", log_probs="log-softmax",
        class_weights="per-row", denominator="count", all_ignored_is_zero=False, default_dtype="float32",
        dtype_note="JAX computes in float32 unless jax_enable_x64 is set",
    ),
}

KERAS_EPSILON = 1e-7


def get(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise XentError(f"unknown convention {name!r} (one of {', '.join(NAMES)})")
    return CONVENTIONS[name]


def refusal(convention: Convention, reduction: str, counted: int, nonzero_weights: int, weight_sum: float) -> str | None:
    """Why this library raises on this batch (scikit-learn only), or None.

    `counted` rows are not ignored; `nonzero_weights` of them have a row
    weight (sample weight × class weight) other than 0; `weight_sum` is what
    the mean divides by. A reduction of "none" has no library call to follow."""
    if not convention.refuses_degenerate or reduction not in ("mean", "sum"):
        return None
    where = f"(--convention {convention.name})"
    if counted == 0:
        return f"no row is counted (every one is ignored): {convention.function} refuses an empty batch {where}"
    if nonzero_weights == 0:
        return (
            f"every counted row has weight 0 (sample weight × class weight): {convention.function} refuses "
            f"all-zero sample weights, there being nothing to average {where}"
        )
    if reduction == "mean" and weight_sum == 0:
        return f"the row weights sum to 0: {convention.function} cannot divide by their sum (np.average raises) {where}"
    return None


def one_hot_nan_warning(convention: Convention, rows: int, total: int) -> str:
    """Why `rows` rows have a NaN loss under Keras's one-hot sum."""
    return (
        f"{rows} of {total} rows have a -inf logit outside the target class: their loss is NaN, as "
        f"{convention.function} gives (it sums one-hot × log-softmax over every class, and 0 × -inf is NaN)"
    )


def departures(
    convention: Convention,
    input: str,
    weighted: bool,
    smoothing: bool,
    sample_weighted: bool,
    all_ignored: bool,
    dtype: str = "float64",
    one_hot_nan: bool = False,
) -> list[str]:
    """In words, where this convention's number departs from torch's for these options.

    `one_hot_nan`: the row at hand has a -inf logit outside its target."""
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
    if input == "log-probs" and convention.log_probs != "given":
        found.append(
            {
                "log-softmax": "log-probabilities are taken as logits (log_softmax), so renormalised; "
                "torch's nll_loss takes them as given",
                "exp-clip": "log-probabilities are exponentiated and clipped to [eps, 1 - eps] as probabilities; "
                "torch's nll_loss takes them as given",
            }[convention.log_probs]
        )
    if one_hot_nan and convention.one_hot_nan:
        found.append("this row has a -inf logit outside the target: one-hot × log-softmax sums 0 × -inf = NaN")
    if weighted:
        found.append("a class weight multiplies the whole row's loss, as a sample weight w[target]")
        if smoothing:
            found.append("so the smoothing term uses w[target], where torch uses every class's w_c")
    if convention.denominator == "count" and (weighted or sample_weighted):
        found.append("the mean divides by the number of counted rows, where torch divides by the sum of their weights")
    if all_ignored and convention.all_ignored_is_zero:
        found.append("an all-ignored batch gives 0, where torch gives NaN")
    if convention.default_dtype and dtype != convention.default_dtype:
        found.append(
            f"{convention.name} computes in {convention.default_dtype} by default ({convention.dtype_note}); "
            f"xent computes in {dtype}, so expect differences of about 1e-7 relative"
        )
    return found

"""Terms added to the task's per-row loss, after it and before the row weights.

Each term is active or not under the settings; an active one maps the
per-row loss to the loss with the term in, from the rows' log-probabilities.
Block totals of its own, if it has any, follow the contract of metrics.py
(sums that add across blocks and files)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .logprobs import Ops
    from .softmax import TaskRows


def label_smoothing(ops: Ops, spec: Any, rows: TaskRows, loss: Any, w: Any) -> Any:
    """torch's label smoothing of class-index targets: (1 - ε) loss + ε/C Σ_c w_c (-log p_c)."""
    s, lse = rows.log_p_rule.s, rows.log_p_rule.lse
    uniform = lse * spec.classes - ops.row_sum(s) if w is None else lse * w.sum() - s @ w
    return (1 - spec.label_smoothing) * loss + spec.label_smoothing / spec.classes * uniform


def smoothed_targets(spec: Any, q: Any) -> Any:
    """torch's label smoothing of soft targets: q (1 - ε) + ε/C, mixed in before the
    loss (the same sum as the term above, in torch's order, to the last bit)."""
    if not spec.label_smoothing:
        return q
    return q * (1 - spec.label_smoothing) + spec.label_smoothing / spec.classes


def z_loss_part(ops: Ops, spec: Any, rows: TaskRows) -> Any:
    """PaLM's auxiliary z-loss per row: coefficient × (log Z)², log Z = logsumexp of the
    row's logits (Chowdhery et al. 2022, §5; T5X's cross_entropy_with_logits adds it per token)."""
    log_z = rows.top + rows.log_p_rule.lse
    return spec.z_loss * log_z * log_z


def z_loss(ops: Ops, spec: Any, rows: TaskRows, loss: Any, w: Any) -> Any:
    return loss + z_loss_part(ops, spec, rows)


# (is it active for these settings and this kind of target, the term), in the order they apply
TERMS = (
    (lambda spec, soft: spec.label_smoothing > 0 and not soft, label_smoothing),
    (lambda spec, soft: spec.z_loss > 0, z_loss),
)
# Terms reported on their own beside the loss: name -> (is it active, its per-row part)
PARTS = {"z_loss": (lambda spec: spec.z_loss > 0, z_loss_part)}


def add(ops: Ops, spec: Any, rows: TaskRows, w: Any, soft: bool) -> Any:
    """The task's per-row loss with every active term in."""
    loss = rows.loss
    for active, term in TERMS:
        if active(spec, soft):
            loss = term(ops, spec, rows, loss, w)
    return loss


def parts(ops: Ops, spec: Any, rows: TaskRows) -> dict[str, Any]:
    """The per-row values of the active terms reported on their own."""
    return {name: part(ops, spec, rows) for name, (active, part) in PARTS.items() if active(spec)}

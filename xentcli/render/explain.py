"""Renderers for `xent explain`: a rich table, JSON and Markdown of one row's derivation.

The table and the Markdown share their content: the per-class columns
(`class_table`) and the numbered steps (`steps`) are built once, as text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..conventions import get as get_convention
from ..engine.explain import Explanation
from .display import bar, fixed, json_number, json_vector, markdown_steps, markdown_table, numbered, printable

MAX_CLASS_ROWS = 12
TOP_K = 10  # a language model's top 10 tokens
BAR_WIDTH = 20


def shown_classes(e: Explanation) -> tuple[list[int], int]:
    """The classes the table lists (all, or the top k and the target) and how many it leaves out."""
    if e.classes <= MAX_CLASS_ROWS:
        return list(range(e.classes)), 0
    order = list(np.argsort(-e.softmax, kind="stable")[:TOP_K])
    if 0 <= e.target < e.classes and e.target not in order:
        order.append(e.target)
    return [int(c) for c in order], e.classes - len(order)


def class_table(e: Explanation, precision: int) -> tuple[list[str], list[list[str]], str | None]:
    """(header, rows, note) of the per-class table; note sums up the classes left out."""
    f = _formatter(precision)
    header = ["class"]
    if e.given_logits is not None:
        header += ["x given"]
    if e.input == "logits":
        header += ["logit x", "x - m", "e^(x-m)"]
    elif e.input == "probs":
        header += ["p given"]
    else:
        header += ["log p given"]
    header += ["p", "", "log p"]
    if e.soft_labels is not None:
        header += ["q", "-w·q′·log p" if e.weight is not None or e.label_smoothing else "-q·log p"]
    elif e.weight is not None:
        header += ["w"]
    classes, left_out = shown_classes(e)
    rows = []
    for c in classes:
        name = printable(e.class_name(c)) + (" ◀ target" if c == e.target and e.soft_labels is None else "")
        cells = [name]
        if e.given_logits is not None:
            cells += [f(e.given_logits[c])]
        if e.input == "logits":
            cells += [f(e.logits[c]), f(e.shifted[c]), f(e.exp[c])]
        else:
            cells += [f(e.logits[c])]
        cells += [f(e.softmax[c]), bar(float(e.softmax[c]), BAR_WIDTH), f(e.log_softmax[c])]
        if e.soft_labels is not None:
            cells += [f(e.soft_labels[c]), f(e.soft_terms[c])]
        elif e.weight is not None:
            cells += [f(e.weight[c])]
        rows.append(cells)
    note = None
    if left_out:
        rest = 1.0 - float(e.softmax[classes].sum())
        note = f"… {left_out} more classes, holding p = {f(max(rest, 0.0))} together"
    return header, rows, note


def _formatter(precision: int):
    """Numbers as Python and spreadsheets read them: ASCII minus, never -0.0000."""

    def f(value: float) -> str:
        return fixed(value, precision)

    return f


def title(e: Explanation) -> str:
    """The first line; escaped, as it holds the file's name and the target's name."""
    return printable(_title(e))


def _title(e: Explanation) -> str:
    place = f"position {e.index}" if len(e.index) > 1 else f"row {e.row}"
    if e.soft_labels is not None:
        target = "soft labels"
    elif e.ignored:
        target = f"target {e.target} (= --ignore-index: ignored)"
    else:
        named = e.class_names and not e.tokens  # tokens are shown with their ids already
        target = f"target {e.class_name(e.target)}" + (f" ({e.target})" if named else "")
    return f"{place} of {e.rows} · {e.where} · {target}"


LOG_PROBS_STEP = {
    "given": "the input holds log-probabilities (as torch's nll_loss takes them): log p is given, p = e^(log p)",
    "log-softmax": "the input holds log-probabilities, taken as logits: log p - log Σ e^(log p) (log_softmax, which renormalises them)",
    "exp-clip": "the input holds log-probabilities: p = e^(log p), clipped to [eps, 1 - eps] (as scikit-learn's log_loss), then log p",
}
PROBS_STEP = {
    "clip": "the input holds probabilities: clipped to [eps, 1 - eps] (eps = {eps:.3g}, as scikit-learn's log_loss), then log p",
    "normalize-clip": "the input holds probabilities: divided by their sum, clipped to [1e-7, 1 - 1e-7] (as Keras), then log p",
    "renormalize": "the input holds probabilities: log p - log Σ p (as optax's log_softmax of log p)",
}


def steps(e: Explanation, precision: int) -> list[str]:
    """The derivation, one numbered step a line, with the numbers."""
    f = _formatter(precision)
    lines: list[str] = []
    t = e.target
    if e.softcap is not None:
        lines.append(f"soft-capping (Gemma 2): x = {e.softcap:g}·tanh(x given / {e.softcap:g}), so |x| < {e.softcap:g}")
    if e.temperature is not None:
        lines.append(f"temperature: x = x / {e.temperature:g}")
    if e.input == "logits":
        lines.append(f"m = max x = {f(e.max)}: subtracting it makes every x - m ≤ 0, so e^(x-m) ≤ 1 cannot overflow")
        lines.append(f"Σ e^(x-m) = {f(e.sum_exp)}, log Σ = {f(e.log_sum_exp)}")
        lines.append("softmax p = e^(x-m) / Σ (the bars)")
        if e.soft_labels is None and not e.ignored:
            lines.append(
                f"log p_target = (x_t - m) - log Σ = {f(e.shifted[t])} - {f(e.log_sum_exp)} = {f(e.log_p_target)}"
            )
    elif e.input == "probs":
        eps = float(np.finfo(np.float64).eps)
        lines.append(PROBS_STEP[get_convention(e.convention).probs].format(eps=eps))
        if e.soft_labels is None and not e.ignored:
            lines.append(f"log p_target = {f(e.log_p_target)}")
    else:
        lines.append(LOG_PROBS_STEP[get_convention(e.convention).log_probs])
        if e.soft_labels is None and not e.ignored:
            lines.append(f"log p_target = {f(e.log_p_target)}")
    lines += _loss_steps(e, f)
    if e.z_term is not None:
        log_z = e.max + e.log_sum_exp
        lines.append(f"z-loss (PaLM) = {e.z_loss:g}·(log Z)², log Z = m + log Σ = {f(log_z)}: {f(e.z_term)}")
        lines.append(f"loss = cross-entropy + z-loss = {f(e.base_loss - e.z_term)} + {f(e.z_term)} = {f(e.base_loss)}")
    if e.row_weight is not None and not e.ignored:
        lines.append(f"{e.convention}: the class weight scales the whole row: × w_target {f(e.row_weight)}")
    if e.sample_weight is not None and not e.ignored:
        lines.append(f"× the row's sample weight {f(e.sample_weight)}")
    if e.loss != e.base_loss and not (math.isnan(e.loss) and math.isnan(e.base_loss)):
        lines.append(f"loss = {f(e.loss)}")
    return lines


def notes(e: Explanation, precision: int) -> list[str]:
    """The checks and the row's place in the batch (unnumbered)."""
    f = _formatter(precision)
    checks = [f"second route, log_softmax then NLL = {f(e.second_route)}"]
    if e.torch_loss is not None:
        plus = " + z-loss" if e.z_term is not None else ""
        checks.append(f"torch CrossEntropyLoss (this row){plus} = {f(e.torch_loss)}")
    checks.append(f"xent compute = {f(e.engine_loss)}")
    lines = ["check: " + " · ".join(checks), _batch_line(e, f)]
    if e.convention != "torch":
        torch_value = "" if e.torch_batch_loss is None else f" (torch gives {f(e.torch_batch_loss)})"
        lines.append(f"{e.convention} convention: the batch loss is {f(e.batch_loss)}{torch_value}")
        lines += [f"  where it departs from torch: {d}" for d in e.departures]
    return lines


def _loss_steps(e: Explanation, f) -> list[str]:
    classes, smoothing = e.classes, e.label_smoothing
    inside = e.weights_inside
    if e.ignored:
        return [
            f"the target is the ignore index {e.ignore_index}: the row contributes 0 to the sum "
            "and is left out of the mean's denominator (it is counted as ignored)"
        ]
    if e.soft_labels is not None:
        terms = "w_c · " if inside is not None else ""
        lines = []
        if smoothing:
            lines.append(f"label smoothing ε = {smoothing:g}: q′ = (1 - ε)·q + ε/C = (1 - {smoothing:g})·q + {smoothing:g}/{classes}")
        q = "q′" if smoothing else "q"
        lines.append(f"loss = Σ_c -{terms}{q}_c · log p_c = {f(e.base_loss)} (soft labels: a sum over every class)")
        return lines
    nll = f"-log p_target = {f(e.nll)}"
    if inside is not None:
        weight = float(inside[e.target])
        nll = f"w_target · (-log p_target) = {f(weight)} × {f(e.nll)} = {f(weight * e.nll)}"
    if not smoothing and math.isnan(e.base_loss) and not math.isnan(e.nll):
        return [
            f"NLL = {nll}",
            f"loss = Σ_c -onehot_c · log p_c = nan: {e.convention} sums over every class, "
            "and 0 × log p_c of a masked (-inf) class is 0 × -inf = NaN",
        ]
    if not smoothing:
        return [f"loss = {nll}"]
    weighted = "w_c · " if inside is not None else ""
    return [
        f"NLL term = {nll}",
        f"smoothing term = Σ_c -{weighted}log p_c = {f(e.smoothing_term)}",
        f"loss = (1 - ε)·NLL + ε/C·smoothing = (1 - {smoothing:g})·NLL + {smoothing:g}/{classes}·smoothing = {f(e.base_loss)}",
    ]


def _batch_line(e: Explanation, f) -> str:
    if e.reduction == "sum":
        return in_the_batch(e, f, "")
    if get_convention(e.convention).for_reduction(e.reduction).denominator == "count" or e.soft_labels is not None:
        denominator = f"{e.weight_sum:g} counted rows"
    elif e.sample_weight is not None:
        factor = "s·w_target" if e.weight is not None else "s"
        denominator = f"Σ {factor} (sample weights{' × class weights' if e.weight is not None else ''}) {f(e.weight_sum)}"
    elif e.weight is not None:
        denominator = f"Σ w_target {f(e.weight_sum)}"
    else:
        denominator = f"{e.weight_sum:g} counted rows"
    return in_the_batch(e, f, denominator)


def in_the_batch(e: Any, f, denominator: str) -> str:
    """How a row enters its batch, one line for both explanations (softmax and
    sigmoid): its share of the sum, and of the mean over `denominator`."""
    rank = f"rank {e.rank} of {e.rows} (1 = highest loss)"
    share = "n/a" if not math.isfinite(e.share) else f"{e.share:.1%}"
    if e.reduction == "sum":
        return f"in the batch: {f(e.engine_loss)} of the sum {f(e.batch_sum)} ({share}); {rank}"
    return f"in the batch: the mean {f(e.batch_loss)} = sum {f(e.batch_sum)} / {denominator}; this row is {share} of the sum; {rank}"


def in_the_batch_json(e: Any) -> dict[str, Any]:
    """The row's loss, its checks and how it enters its batch, as both explanations' JSON gives them."""
    return {
        "loss": json_number(e.loss),
        "second_route": json_number(e.second_route),
        "torch_loss": None if e.torch_loss is None else json_number(e.torch_loss),
        "engine_loss": json_number(e.engine_loss),
        "reduction": e.reduction,
        "batch_loss": json_number(e.batch_loss),
        "batch_sum": json_number(e.batch_sum),
        "weight_sum": json_number(e.weight_sum),
        "share": json_number(e.share),
        "rank": e.rank,
    }


def table(e: Explanation, precision: int):
    """The rich renderable."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    header, rows, note = class_table(e, precision)
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False,
                 caption=note, caption_justify="left")
    # Text, never markup: class names and file names come from the user's files.
    for name in header:
        justify = "left" if name in ("class", "") else "right"
        grid.add_column(Text(name), justify=justify, style="cyan" if name == "" else None)
    classes, _ = shown_classes(e)
    for c, cells in zip(classes, rows):
        grid.add_row(*map(Text, cells), style="bold" if c == e.target and e.soft_labels is None else None)
    return Group(Text(title(e), style="bold"), Text(""), grid, Text(""), numbered(steps(e, precision), notes(e, precision)))


def to_markdown(e: Explanation, precision: int) -> str:
    header, rows, note = class_table(e, precision)
    lines = [f"### {title(e)}", "", *markdown_table(header, rows)]
    if note:
        lines += ["", note]
    lines += ["", *markdown_steps(steps(e, precision), notes(e, precision))]
    return "\n".join(lines) + "\n"


def as_dict(e: Explanation) -> dict[str, Any]:
    """Every step by name (SPEC §5): non-finite numbers are null."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "row": e.row,
        "index": list(e.index),
        "rows": e.rows,
        "where": e.where,
        "input": e.input,
        "target": None if e.soft_labels is not None else e.target,
        "target_name": None if e.soft_labels is not None or e.ignored else e.class_name(e.target),
        "ignored": e.ignored,
        "logits": json_vector(e.logits),
        "max": None if e.max is None else json_number(e.max),
        "shifted": json_vector(e.shifted),
        "exp": json_vector(e.exp),
        "sum_exp": None if e.sum_exp is None else json_number(e.sum_exp),
        "log_sum_exp": json_number(e.log_sum_exp),
        "softmax": json_vector(e.softmax),
        "log_softmax": json_vector(e.log_softmax),
        "log_p_target": json_number(e.log_p_target),
        **in_the_batch_json(e),
        "convention": e.convention,
        "departures": list(e.departures),
    }
    if e.convention != "torch":
        data["torch_batch_loss"] = None if e.torch_batch_loss is None else json_number(e.torch_batch_loss)
    if e.sample_weight is not None:
        data["sample_weight"] = e.sample_weight
    if e.given_logits is not None:
        data["given_logits"] = json_vector(e.given_logits)
    if e.z_term is not None:
        data["z_loss_term"] = json_number(e.z_term)
    if e.weight is not None:
        data["weight"] = json_vector(e.weight)
        data["target_weight"] = None if e.soft_labels is not None else e.target_weight
    if e.label_smoothing:
        data["label_smoothing"] = e.label_smoothing
        data["smoothing_term"] = None if e.smoothing_term is None else json_number(e.smoothing_term)
    if e.soft_labels is not None:
        data["soft_labels"] = json_vector(e.soft_labels)
        data["soft_terms"] = json_vector(e.soft_terms)
    return data


def to_json(e: Explanation) -> str:
    return json.dumps(as_dict(e), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


# format -> writer(explanation, precision): the machine formats of `xent explain` (the table is drawn by `table`)
WRITERS = {
    "json": lambda e, precision: to_json(e),
    "markdown": to_markdown,
}

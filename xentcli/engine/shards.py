"""Many files as one batch: plan the shard pairs, run each, combine the partial results.

A plan fixes what every shard shares: the pairs of files (matched by name),
the class order (the first file's, so that headers may list the classes in
any order), the class weights (``balanced`` counts every shard's labels
first) and the sample weights (which run on across the shards, or match by
row id). Each shard is then read and computed alone, so memory holds one
shard at a time, and the partial results combine exactly as one file would
(sums and counts add; ``loss.combine``). The CLI runs the shards in order;
any other runner (a pool, a cluster) can call ``run_shard`` on each.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import XentError
from ..readers import Batch, ReadOptions, expand_paths, is_pattern, load_batch, pair_paths, read_mask
from ..readers.vectors import ClassWeights
from .checks import all_ignored
from .core import combine
from .rows import ClassRows
from .sequences import masked_targets, next_token_targets
from .spec import Result

# A runner of the engine on one shard: (batch, class weights, sample weights, part of several) -> Result
Engine = Callable[[Batch, "np.ndarray | None", "np.ndarray | None", bool], Result]


@dataclass(frozen=True)
class Plan:
    """What every shard shares; `pairs` are (logits file, labels file or None)."""

    pairs: list[tuple[str, str | None]]
    read: ReadOptions
    class_axis: int = 1
    key: str | None = None
    labels_key: str | None = None
    label_col: str | None = None
    classes: tuple[str, ...] | None = None
    order: tuple[str, ...] | None = None  # the first file's class order, which the others' columns follow
    class_weights: ClassWeights | None = None
    sample: np.ndarray | None = None
    sample_ids: list[str] | None = None
    sample_source: str | None = None
    ignore_index: int = -100
    task: str = "auto"
    logits_cols: str | None = None  # a Parquet or Arrow file's logit columns: a glob or a list
    shift: bool = False  # a causal LM: each position's target is the next label
    mask: str | None = None  # a file of 1/0 per label (an attention mask): its 0s are ignored
    # for --weight balanced: every shard's labels, (indices, None) or (soft labels, their class axis)
    counted: list[tuple[np.ndarray, int | None]] = field(default_factory=list)

    def load(self, index: int) -> Batch:
        logits, labels = self.pairs[index]
        batch = load_batch(
            logits, labels, key=self.key, labels_key=self.labels_key, label_col=self.label_col,
            classes=self.classes, order=self.order, class_axis=self.class_axis, options=self.read, task=self.task,
            shift=self.shift, logits_cols=self.logits_cols,
        )
        return self._sequence_targets(batch)

    def _sequence_targets(self, batch: Batch) -> Batch:
        """The batch with its mask's 0s ignored and, with `shift`, next-token targets."""
        mask, locate_mask = batch.mask, batch.locate_labels
        if self.mask is not None:
            mask, locate_mask = read_mask(self.mask, len(batch.target))
        if mask is None and not self.shift:
            return batch
        if batch.task != "multiclass":
            raise XentError("--shift and --mask are for token-level (multiclass) batches")
        if self.shift:
            target = next_token_targets(batch.target, self.ignore_index, mask, locate_mask)
            locate = batch.locate_labels
            return replace(batch, target=target, locate_labels=lambda position: locate(position + 1))
        return replace(batch, target=masked_targets(batch.target, self.ignore_index, mask, locate_mask))


def plan(
    logits: str,
    labels: str | None,
    read: ReadOptions,
    *,
    class_weights: ClassWeights | None = None,
    sample: tuple[np.ndarray, list[str] | None] | None = None,
    sample_source: str | None = None,
    **shared: Any,
) -> Plan:
    """The shard pairs of LOGITS and LABELS (each a path, a glob or a list) and what they share."""
    logits_paths = expand_paths(logits)
    if labels is None:
        pairs = [(path, None) for path in logits_paths]
    else:
        pairs = pair_paths(logits_paths, expand_paths(labels), is_pattern(logits) or is_pattern(labels))
    if shared.get("mask") is not None and len(pairs) > 1:
        raise XentError("--mask takes one LOGITS file (and one LABELS file), not several")
    values, ids = sample if sample is not None else (None, None)
    result = Plan(pairs, read, class_weights=class_weights, sample=values, sample_ids=ids,
                  sample_source=sample_source, **shared)
    if len(pairs) > 1 and result.classes is None and result.order is None:
        # Every file's columns in the first file's class order: headers may list the classes in any order.
        result = replace(result, order=result.load(0).class_names)
    if class_weights is not None and class_weights.balanced:  # counting the classes needs every label first
        for index in range(len(pairs)):
            batch = result.load(index)
            soft = batch.target.shape == batch.logits.shape and batch.logits.ndim > 1
            result.counted.append((batch.target, batch.class_axis if soft else None))
    return result


@dataclass(frozen=True)
class Shard:
    """One shard's batch, the class weights it used, its sample weights and its result."""

    batch: Batch
    weight: np.ndarray | None
    sample: np.ndarray | None
    result: Result
    worker: str | None = None  # where it ran, when a cluster ran it

    def totals(self) -> dict[str, Any]:
        """Its line in the JSON's `files`."""
        result = self.result
        line = {"logits": self.batch.logits_name, "labels": self.batch.labels_name, "rows": result.rows,
                "ignored": result.ignored, "correct": result.correct, "sum": result.sum,
                "weight_sum": result.weight_sum, "mean": result.mean}
        return line if self.worker is None else {**line, "worker": self.worker}


def run_shard(shard_plan: Plan, index: int, offset: int, engine: Engine) -> Shard:
    """Read shard `index` and compute it; `offset` is how many rows the shards before it hold."""
    batch = shard_plan.load(index)
    rows = ClassRows(batch.logits, batch.class_axis)
    weight = None
    classes = 2 if batch.task == "binary" else rows.classes  # one score, two classes
    if shard_plan.class_weights is not None:
        weight = shard_plan.class_weights.resolve(batch.class_names, classes, shard_plan.counted, shard_plan.ignore_index)
    several = len(shard_plan.pairs) > 1
    sample = shard_plan.sample
    if sample is not None and shard_plan.sample_ids is not None:
        sample = _by_id(sample, shard_plan.sample_ids, batch, offset, rows.positions, shard_plan.sample_source)
    elif sample is not None and several:
        sample = sample[offset : offset + rows.positions]
        if len(sample) < rows.positions:
            raise XentError(f"--sample-weight has {len(shard_plan.sample)} values but the files have more rows")
    said = None if shard_plan.class_weights is None else shard_plan.class_weights.header_notice(classes)
    if said:
        batch = replace(batch, notices=(*batch.notices, said))
    return Shard(batch, weight, sample, engine(batch, weight, sample, several))


# The runners of a plan's shards: name -> "module:function", imported when chosen (Dask only when asked).
# Each has run's signature, plus the runner's own keywords.
RUNNERS = {"here": f"{__name__}:run", "dask": f"{__package__}.cluster:run"}


def runner(name: str) -> Callable[..., tuple[list[Shard], Result]]:
    module, function = RUNNERS[name].split(":")
    return getattr(importlib.import_module(module), function)


def run(
    shard_plan: Plan, engine: Engine, notice: Callable[[Sequence[str]], None], warn: Callable[[Sequence[str], str], None]
) -> tuple[list[Shard], Result]:
    """Every shard in order, in this process, and their combined result. `notice(messages)`
    and `warn(messages, prefix)` hear each shard's readings and warnings as they come."""
    shards, offset = [], 0
    for index in range(len(shard_plan.pairs)):
        shard = run_shard(shard_plan, index, offset, engine)
        offset += shard.result.rows
        shards.append(shard)
        tell(shard_plan, shard, notice, warn)
    sample = shard_plan.sample
    if sample is not None and len(shards) > 1 and shard_plan.sample_ids is None and offset != len(sample):
        raise XentError(f"--sample-weight has {len(sample)} values but there are {offset} rows")
    return shards, combined(shards, warn)


def tell(shard_plan: Plan, shard: Shard, notice: Callable[[Sequence[str]], None],
         warn: Callable[[Sequence[str], str], None]) -> None:
    """A shard's notices and warnings, its file named when there are several."""
    notice(shard.batch.notices)
    warn(shard.result.warnings, f"{shard.batch.logits_name}: " if len(shard_plan.pairs) > 1 else "")


def combined(shards: list[Shard], warn: Callable[[Sequence[str], str], None]) -> Result:
    """The shards' results as one, exactly as one file would give it (core.combine)."""
    if len(shards) == 1:
        return shards[0].result
    result = combine([shard.result for shard in shards])
    if result.rows and result.ignored == result.rows:
        from ..conventions import get as get_convention

        warn([all_ignored(result.rows, result.mean, get_convention(result.convention))], "")
    return result


def _by_id(values: np.ndarray, ids: list[str], batch: Batch, offset: int, rows: int, source: str | None) -> np.ndarray:
    """Sample weights that carry row ids, matched to the logits' rows by id (in any order);
    pandas' default index 0..N-1 in order matches by position."""
    if batch.ids is None:
        if ids[offset : offset + rows] == [str(k) for k in range(offset, offset + rows)]:
            return values[offset : offset + rows]
        raise XentError("the sample weights carry row ids but the logits have none to match them to", source)
    where: dict[str, int] = {}
    for k, key in enumerate(ids):
        if key in where:
            raise XentError(f"id {key!r} appears twice in the sample weights", source)
        where[key] = k
    missing = next((key for key in batch.ids if key not in where), None)
    if missing is not None:
        raise XentError(f"no sample weight for id {missing!r}", source)
    return np.asarray(values)[[where[key] for key in batch.ids]]

"""Many files as tasks on a Dask cluster (the `dask` extra): one more runner of
shards.py's per-shard function, chosen by name in shards.RUNNERS.

Each pair of files is one task: a worker reads the shard where it lies and
computes its partial result with xent's own engine; the results come back in
the files' order and combine as the in-process runner combines them
(core.combine: math.fsum of the shards' sums, each shard's own sum being the
same fsum of the same blocks), so the loss, the counts and the metrics are
the in-process run's to the last bit. The scheduling, retries and lost
workers are Dask's: a task whose worker dies is run again elsewhere.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ..errors import XentError
from .shards import Engine, Plan, Shard, combined, run_shard, tell
from .spec import Result, row_number

EXTRA = "pip install 'xentcli[dask]'"


def run(
    shard_plan: Plan,
    engine: Engine,
    notice: Callable[[Sequence[str]], None],
    warn: Callable[[Sequence[str], str], None],
    *,
    address: str = "local",
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Shard], Result]:
    """Every shard as a task on the cluster at `address` (`local`: a LocalCluster
    of one single-threaded worker process per core), the results in order."""
    try:
        import distributed
    except ImportError:
        raise XentError(f"--scheduler runs on Dask: {EXTRA}") from None
    if shard_plan.sample is not None:
        raise XentError("--sample-weight with --scheduler: not yet (the weights run on across the files in order)")
    run_id = uuid.uuid4().hex[:8]
    with _client(distributed, address) as client:
        futures = [
            client.submit(_task, shard_plan, index, engine, key=f"xent-shard-{index}-{run_id}", pure=False, retries=2)
            for index in range(len(shard_plan.pairs))
        ]
        for _ in distributed.as_completed(futures):
            if progress is not None:
                progress(1)
        shards = client.gather(futures)  # in the files' order; a task's XentError is raised here as it was
    for shard in shards:
        tell(shard_plan, shard, notice, warn)
    return shards, combined(shards, warn)


@contextmanager
def _client(distributed: Any, address: str) -> Iterator[Any]:
    if address == "local":
        with distributed.LocalCluster(
            n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as error:
        raise XentError(f"cannot reach the Dask scheduler ({error})", address) from None
    with client:
        yield client


def _task(shard_plan: Plan, index: int, engine: Engine) -> Shard:
    """One shard, on a worker: its result, and its batch without the arrays (they stay where they lie)."""
    import distributed

    shard = run_shard(shard_plan, index, 0, engine)
    light = replace(shard.batch, logits=None, target=None, mask=None, locate_logits=row_number, locate_labels=row_number)
    return replace(shard, batch=light, worker=distributed.get_worker().address)

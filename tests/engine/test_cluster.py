"""Many files as tasks on a real Dask cluster: a LocalCluster of two worker
processes, started here. The expected result is the in-process run's, to the
last bit; a worker that dies mid-run has its task run again by Dask."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cloudpickle
import numpy as np
import pytest
from distributed import LocalCluster

import xentcli
from conftest import error_line, xent
from xentcli.engine import cluster as dask_runner
from xentcli.engine import shards
from xentcli.readers import ReadOptions

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(6):
        np.save(tmp_path / f"x{k}.npy", rng.normal(size=(400, 12)) * 3)
        np.save(tmp_path / f"y{k}.npy", rng.integers(0, 12, size=400))
    return str(tmp_path / "x*.npy"), str(tmp_path / "y*.npy")


def test_the_cluster_gives_the_in_process_result_to_the_last_bit(scheduler, files):
    here = json.loads(xent("compute", *files, "-f", "json", "--top-k", "3", "--by-class").stdout)
    result = xent("compute", *files, "-f", "json", "--top-k", "3", "--by-class", "--scheduler", scheduler.scheduler_address)
    assert result.exit_code == 0, result.stderr
    there = json.loads(result.stdout)
    workers = set(scheduler.workers[name].worker_address for name in scheduler.workers)
    assert {f["worker"] for f in there["files"]} <= workers  # every task ran on a worker of the cluster
    for found in (here, there):
        found["options"].pop("from")
        for line in found["files"]:
            line.pop("worker", None)
    assert there == here  # loss, sums, counts, metrics, per-file lines: identical


def test_an_error_on_a_worker_is_one_line_naming_the_file(scheduler, files, tmp_path):
    np.save(tmp_path / "y3.npy", np.full(400, 99))
    line = error_line(xent("compute", *files, "--scheduler", scheduler.scheduler_address))
    assert "y3.npy[0]" in line and "label 99 is out of range" in line


def _engine(batch, weight, sample, part):
    return xentcli.cross_entropy(batch.logits, batch.target, weight=weight, keep_rows=False, part=part)


def _dies_once(marker: str):
    def engine(batch, weight, sample, part):
        if batch.logits_name.endswith("x2.npy") and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-run
        return _engine(batch, weight, sample, part)

    return engine


def test_a_worker_killed_mid_run_is_replaced_and_its_task_run_again(scheduler, files, tmp_path):
    plan = shards.plan(*files, ReadOptions())
    _, expected = shards.run(plan, _engine, lambda m: None, lambda m, p: None)
    marker = str(tmp_path / "died")
    done, result = dask_runner.run(plan, _dies_once(marker), lambda m: None, lambda m, p: None,
                                   address=scheduler.scheduler_address)
    assert os.path.exists(marker)  # a worker did die
    assert result.sum == expected.sum and result.mean == expected.mean and result.rows == 2400
    assert [shard.batch.logits_name for shard in done] == [shard.batch.logits_name for shard in shards.run(
        plan, _engine, lambda m: None, lambda m, p: None)[0]]


def test_what_is_refused(scheduler, files, tmp_path):
    np.savetxt(tmp_path / "w.txt", np.ones(2400))
    line = error_line(xent("compute", *files, "--sample-weight", tmp_path / "w.txt", "--scheduler",
                           scheduler.scheduler_address))
    assert "--sample-weight with --scheduler" in line
    code = (
        "import sys; sys.modules['distributed'] = None; from typer.testing import CliRunner; "
        "from xentcli.cli import app; r = CliRunner().invoke(app, sys.argv[1:]); print(r.exit_code); print(r.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code, "compute", *files, "--scheduler", "local"],
                         capture_output=True, text=True).stdout
    assert out.startswith("2\n") and "pip install 'xentcli[dask]'" in out

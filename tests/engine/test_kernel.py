"""The fused C kernel (xentcli/_kernel.c) against torch, row by row.

Its exponential and logarithm are polynomials of its own, its reductions run
across vector lanes, and short rows (<= 16 classes) take another route, one
row per lane: the shapes below sit on every vector width's edges (8 float64
or 16 float32 lanes), and the values on the exponential's cut-offs. Each
per-row loss is compared with torch's float64 F.cross_entropy, the first
argmax with numpy's. The package's build picks its AVX-512, AVX2 or SSE2
code when it loads; the last tests build the AVX2 and SSE2 code alone and
check it too, since a machine with AVX-512 would never run it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from xentcli.engine import fast

kernel = fast._kernel
CLASSES = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000, 4099]


def test_the_kernel_is_built():
    """setup.py builds it wherever a C compiler exists (CI has one); without it numpy does the work."""
    assert kernel is not None, "xentcli/_kernel.c was not compiled: is gcc installed?"


def run_kernel(x, t, ignore_index=-100, weight=None, sample_weight=None, module=kernel):
    n = len(x)
    loss, log_p, pred = np.empty(n, x.dtype), np.empty(n, x.dtype), np.empty(n, np.int64)
    total, error, correct, bad = module.rows(x, t, ignore_index, weight, sample_weight, loss, log_p, pred)
    return loss, log_p, pred, math.fsum([total, error]), correct, bad


def torch_rows(x, t, ignore_index=-100, weight=None):
    w = None if weight is None else torch.from_numpy(weight.astype(np.float64))
    return F.cross_entropy(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(t), weight=w,
                           ignore_index=ignore_index, reduction="none").numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", CLASSES)
def test_rows_match_torch(classes, dtype):
    rng = np.random.default_rng(classes)
    rows = 67  # a chunk of 64 rows and a few, and partial groups of short rows
    x = (rng.normal(size=(rows, classes)) * rng.choice([0.3, 3.0, 40.0], size=(rows, 1))).astype(dtype)
    t = rng.integers(0, classes, size=rows)
    t[::5] = -100
    weight = rng.uniform(0.1, 3, size=classes).astype(dtype)
    sample = rng.uniform(0, 2, size=rows).astype(dtype)
    loss, log_p, pred, total, correct, bad = run_kernel(x, t, -100, weight, sample)
    expected = torch_rows(x, t, -100, weight) * sample
    kept = t != -100
    rtol, atol = (2e-6, 1e-6) if dtype == np.float32 else (1e-13, 1e-15)
    np.testing.assert_allclose(loss, expected, rtol=rtol, atol=atol)
    log_softmax = torch.log_softmax(torch.from_numpy(x.astype(np.float64)), 1).numpy()
    np.testing.assert_allclose(log_p[kept], log_softmax[kept, t[kept]], rtol=rtol, atol=atol)
    assert np.isnan(log_p[~kept]).all() and (loss[~kept] == 0).all()
    np.testing.assert_array_equal(pred, x.argmax(axis=1))
    assert correct == int(((pred == t) & kept).sum()) and bad == 0
    assert total == math.fsum(loss.astype(np.float64).tolist())  # the stored losses' sum, rounded once


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [5, 40])
def test_terms_at_the_exponentials_cut_offs(classes, dtype):
    """x - max near and past where e^(x - max) leaves the dtype (-87 / -708), and masked (-inf) classes."""
    rng = np.random.default_rng(7)
    edge = 87.0 if dtype == np.float32 else 708.0
    x = rng.normal(size=(40, classes)).astype(dtype)
    x[:, 1] = x.max(axis=1) + edge * rng.uniform(0.98, 1.02, size=40)  # every other class near the cut-off
    x[::3, 2] = -np.inf
    t = rng.integers(0, classes, size=40)
    t[::3] = 1
    loss, *_ = run_kernel(x, t)
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(loss, torch_rows(x, t), rtol=rtol, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [3, 16, 17, 300])
def test_ties_give_the_first_argmax(classes, dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 2, size=(50, classes)).astype(dtype)
    _, _, pred, *_ = run_kernel(x, np.zeros(50, dtype=np.int64))
    np.testing.assert_array_equal(pred, x.argmax(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [4, 16, 17, 100])
def test_bad_rows_are_counted_and_nan(classes, dtype):
    x = np.zeros((5, classes), dtype=dtype)
    x[1, classes - 1] = np.nan
    x[2, 0] = np.inf
    x[3, :] = -np.inf
    loss, log_p, pred, _, _, bad = run_kernel(x, np.zeros(5, dtype=np.int64))
    assert bad == 3
    assert np.isnan(loss[1:4]).all() and np.isfinite(loss[[0, 4]]).all()
    assert pred[1] == classes - 1  # the first NaN, as numpy's argmax


def test_refuses_what_it_cannot_read():
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="out of range"):
        run_kernel(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError):
        kernel.rows(x.astype(np.float16), np.zeros(3, dtype=np.int64), -100, None, None, None, None, None)
    with pytest.raises(ValueError):
        kernel.rows(x, np.zeros(3, dtype=np.int64), -100, np.ones(3, np.float32), None, None, None, None)
    with pytest.raises(ValueError):  # the outputs' dtype is the logits'
        kernel.rows(x, np.zeros(3, dtype=np.int64), -100, None, None, np.empty(3), None, None)


def test_the_engine_takes_the_kernel_and_falls_back(monkeypatch):
    """Plain index targets go through the kernel; soft labels, smoothing,
    z-loss and Keras's convention take numpy; every block of a batch whose
    layout the kernel cannot read (class axis first, float16) is made contiguous first."""
    calls = []
    real = fast.fused
    monkeypatch.setattr(fast, "fused", lambda *args: calls.append(1) or real(*args))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6)).astype(np.float32)
    t = rng.integers(0, 6, size=30)
    expected = float(F.cross_entropy(torch.from_numpy(x), torch.from_numpy(t)))
    assert xentcli.cross_entropy(x, t).loss == pytest.approx(expected, rel=1e-6) and calls
    calls.clear()
    xentcli.cross_entropy(x, t, label_smoothing=0.1)
    xentcli.cross_entropy(x, t, convention="keras")
    xentcli.cross_entropy(x, np.eye(6, dtype=np.float32)[t])
    assert not calls
    half = xentcli.cross_entropy(x.T.copy().T.astype(np.float16), t)
    assert calls and half.loss == pytest.approx(
        float(F.cross_entropy(torch.from_numpy(x.astype(np.float16).astype(np.float32)), torch.from_numpy(t))), rel=1e-6
    )
    columns = xentcli.cross_entropy(np.ascontiguousarray(x.T), t, class_axis=0)
    assert columns.loss == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_total_does_not_depend_on_where_blocks_begin(dtype, monkeypatch):
    """Each block's sum comes with what its roundings lost; fsum over them gives
    the stored losses' sum rounded once, whatever the block size or thread count."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((20_000, 7)) * 5).astype(dtype)
    t = rng.integers(0, 7, size=20_000)
    exact = None
    for block_bytes in (1 << 10, 1 << 14, 1 << 24):
        monkeypatch.setattr(fast, "FUSED_BLOCK_BYTES", block_bytes)
        result = xentcli.cross_entropy(x, t, reduction="sum")
        assert result.loss == math.fsum(result.losses.astype(np.float64).tolist())
        exact = result.loss if exact is None else exact
        assert result.loss == exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", range(1, 18))
def test_every_short_width_in_full_groups(classes, dtype):
    """Rows of up to 16 classes are read 16 (float32) or 8 (float64) at a time, their
    columns gathered by permutes planned for each width: every width, with bad rows
    inside full groups, against torch row by row."""
    rng = np.random.default_rng(100 + classes)
    rows = 16 * 9 + 5
    x = (rng.normal(size=(rows, classes)) * 4).astype(dtype)
    t = rng.integers(0, classes, size=rows)
    nan_rows, inf_rows = [3, 40, 77], [21, 100]
    for r in nan_rows:
        x[r, r % classes] = np.nan
    for r in inf_rows:
        x[r, 0] = np.inf
    loss, log_p, pred, total, correct, bad = run_kernel(x, t)
    good = np.setdiff1d(np.arange(rows), nan_rows + inf_rows)
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(loss[good], torch_rows(x[good], t[good]), rtol=rtol, atol=1e-30)
    np.testing.assert_array_equal(pred[good], x[good].argmax(axis=1))
    assert bad == len(nan_rows) + len(inf_rows) and np.isnan(loss[nan_rows + inf_rows]).all()
    assert [int(pred[r]) for r in nan_rows] == [r % classes for r in nan_rows]  # the first NaN, as numpy's argmax


def build_variant(folder, name: str, flags: list[str]):
    """_kernel.c built for one target alone (XENT_NO_CLONES), loaded as a module:
    the AVX2 and SSE2 code that a machine with AVX-512 never runs from the package."""
    import importlib.machinery
    import importlib.util
    import shutil
    import subprocess
    import sysconfig
    from pathlib import Path

    compiler = shutil.which("gcc")
    if compiler is None:
        pytest.skip("no gcc to build the kernel's variants")
    source = Path(xentcli.__file__).parent / "_kernel.c"
    target = folder / f"_kernel_{name}.so"
    subprocess.run(
        [compiler, "-O3", "-Wno-psabi", "-shared", "-fPIC", "-DXENT_NO_CLONES", *flags,
         f"-I{sysconfig.get_paths()['include']}", str(source), "-o", str(target)],
        check=True, capture_output=True,
    )
    loader = importlib.machinery.ExtensionFileLoader("xentcli._kernel", str(target))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("xentcli._kernel", loader))
    loader.exec_module(module)
    return module


VARIANTS = {"sse2": [], "avx2": ["-mavx2", "-mfma"]}


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    if not (torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")):
        pytest.skip("this CPU cannot run the AVX2 build")
    folder = tmp_path_factory.mktemp("kernels")
    return {name: build_variant(folder, name, flags) for name, flags in VARIANTS.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_avx2_and_sse2_builds_match_torch(variants, variant, dtype):
    """Every short width and some long rows, with bad rows, weights and ignored rows,
    through the build for one target, against torch row by row."""
    rng = np.random.default_rng(5)
    for classes in [*range(1, 18), 31, 33, 100, 1000]:
        rows = 149
        x = (rng.normal(size=(rows, classes)) * rng.choice([0.3, 3.0, 40.0], size=(rows, 1))).astype(dtype)
        t = rng.integers(0, classes, size=rows)
        t[::5] = -100
        x[7, classes // 2] = np.nan
        x[41, 0] = np.inf
        weight = rng.uniform(0.1, 3, size=classes).astype(dtype)
        loss, log_p, pred, total, correct, bad = run_kernel(x, t, -100, weight, module=variants[variant])
        good = np.setdiff1d(np.arange(rows), [7, 41])
        expected = torch_rows(x[good], t[good], -100, weight)
        rtol = 2e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(loss[good], expected, rtol=rtol, atol=1e-6 if dtype == np.float32 else 1e-15)
        np.testing.assert_array_equal(pred[good], x[good].argmax(axis=1))
        assert bad == 2 and np.isnan(loss[[7, 41]]).all() and pred[7] == classes // 2
        assert correct == int(((pred == t) & (t != -100)).sum())

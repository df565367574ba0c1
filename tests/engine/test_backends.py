"""The torch backend (CPU here, CUDA where a GPU exists) against the numpy engine."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import xentcli
from cases import FLOOR, GRID, GRID_NAMES, TOLERANCE, make_case
from conftest import SAMPLES, SEED_LOGITS, SEED_TARGETS, assert_user_error, xent, xent_json

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU")])]


def assert_same(numpy_result, torch_result, dtype):
    rtol, floor = TOLERANCE[dtype], FLOOR[dtype]
    if numpy_result.loss is not None:
        assert torch_result.loss == pytest.approx(numpy_result.loss, rel=rtol, nan_ok=True)
    np.testing.assert_allclose(torch_result.losses, numpy_result.losses, rtol=rtol, atol=floor)
    np.testing.assert_allclose(torch_result.log_p_target, numpy_result.log_p_target, rtol=rtol, atol=floor)
    np.testing.assert_array_equal(torch_result.pred, numpy_result.pred)
    np.testing.assert_array_equal(torch_result.target, numpy_result.target)
    assert torch_result.weight_sum == pytest.approx(numpy_result.weight_sum, rel=rtol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(GRID_NAMES, GRID)
def test_torch_backend_matches_numpy(device, weighted, ignore_index, smoothing, reduction, soft, kdim, dtype):
    case = (weighted, ignore_index, smoothing, reduction, soft, kdim, dtype)
    logits, target, weight = make_case(case)
    options = dict(
        weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    reference = xentcli.cross_entropy(logits, target, **options)
    result = xentcli.cross_entropy(logits, target, backend="torch", device=device, **options)
    assert (result.backend, result.device) == ("torch", device)
    assert_same(reference, result, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["probs", "log-probs"])
def test_torch_backend_probability_inputs(device, kind):
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(7), size=30)
    probs[0, 2] = 0.0  # clipped to eps, not log(0)
    with np.errstate(divide="ignore"):
        values = probs if kind == "probs" else np.log(probs)  # log(0) = -inf: a masked class
    target = rng.integers(0, 7, size=30)
    reference = xentcli.cross_entropy(values, target, input=kind, label_smoothing=0.1)
    result = xentcli.cross_entropy(values, target, input=kind, label_smoothing=0.1, backend="torch", device=device)
    assert_same(reference, result, np.float64)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_blocks_cover_every_row(device, monkeypatch):
    """Many small blocks give the same numbers as one."""
    from xentcli.engine import backends

    monkeypatch.setattr(backends, "TORCH_CPU_BLOCK_BYTES", 256)
    monkeypatch.setattr(backends, "CUDA_BLOCK_BYTES", 256)
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(1001, 9)).astype(np.float32)
    target = rng.integers(0, 9, size=1001)
    reference = xentcli.cross_entropy(logits, target)
    assert_same(reference, xentcli.cross_entropy(logits, target, backend="torch", device=device), np.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_reports_bad_values_like_numpy(device, tmp_path):
    logits = np.zeros((5, 3))
    logits[3, 1] = np.nan
    with pytest.raises(xentcli.XentError, match="NaN") as error:
        xentcli.cross_entropy(logits, np.zeros(5, dtype=int), backend="torch", device=device)
    assert error.value.where == "row 3"


def test_cli_torch_backend_table_and_json():
    data = xent_json(SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--backend", "torch", "--per-row")
    assert data["backend"] == "torch" and data["device"] == "cpu"
    assert round(data["loss"], 4) == 2.0616
    table = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--backend", "torch")
    assert table.exit_code == 0 and "torch · cpu" in table.stdout and "3.4055" in table.stdout


def test_auto_backend_is_numpy_on_cpu():
    assert xent_json(SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--backend", "auto")["backend"] == "numpy"
    assert xent_json(SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--device", "auto")["device"] == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--device", "cuda")
    assert_user_error(result, contains="no CUDA GPU")


def test_numpy_backend_refuses_cuda():
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--backend", "numpy", "--device", "cuda")
    assert_user_error(result, contains="--backend torch")


def test_missing_torch_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from xentcli.cli import app\n"
        f"app(['compute', {str(SAMPLES / 'logits.csv')!r}, {str(SAMPLES / 'labels.csv')!r}, '--backend', 'torch'])"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert process.stderr == "xent: error: the torch backend needs PyTorch: pip install 'xentcli[torch]'\n"


def test_pt_files_tensor_and_dict(tmp_path):
    torch.save(torch.from_numpy(SEED_LOGITS), tmp_path / "x.pt")
    torch.save({"logits": torch.from_numpy(SEED_LOGITS), "labels": torch.from_numpy(SEED_TARGETS)}, tmp_path / "d.pth")
    torch.save(torch.from_numpy(SEED_TARGETS), tmp_path / "y.pt")
    expected = float(torch.nn.functional.cross_entropy(torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS)))
    assert xent_json(tmp_path / "x.pt", tmp_path / "y.pt")["loss"] == pytest.approx(expected, rel=1e-15)
    assert xent_json(tmp_path / "d.pth")["loss"] == pytest.approx(expected, rel=1e-15)


def test_pt_bfloat16_is_upcast(tmp_path):
    logits = torch.from_numpy(SEED_LOGITS).to(torch.bfloat16)
    torch.save(logits, tmp_path / "x.pt")
    torch.save(torch.from_numpy(SEED_TARGETS), tmp_path / "y.pt")
    expected = float(torch.nn.functional.cross_entropy(logits.float(), torch.from_numpy(SEED_TARGETS)))
    data = xent_json(tmp_path / "x.pt", tmp_path / "y.pt")
    assert data["dtype"] == "float32" and data["loss"] == pytest.approx(expected, rel=1e-6)


def test_pt_with_pickled_objects_is_refused_unexecuted(tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save(Boom(), tmp_path / "evil.pt")
    result = xent("compute", tmp_path / "evil.pt", SAMPLES / "labels.csv")
    assert_user_error(result, str(tmp_path / "evil.pt"), "weights_only=True")
    assert not (tmp_path / "pwned").exists()


def test_json_names_the_device():
    data = json.loads(xent("compute", "--format", "json", "-q").stdout)
    assert data["device"] == "cpu" and data["device_name"] is None


def test_device_auto_waits_for_inputs_big_enough_to_pay_for_cuda(monkeypatch):
    from xentcli.engine import backends

    monkeypatch.setattr(backends.NumpyOps, "threads", 2)
    assert not backends.cuda_pays_off(1 << 30)  # 1 GiB: start-up costs more than the GPU saves
    assert backends.cuda_pays_off(40 << 30) and not backends.cuda_pays_off(30 << 30)
    monkeypatch.setattr(backends.NumpyOps, "threads", 8)
    assert not backends.cuda_pays_off(1 << 40)  # 8 threads of the C kernel outrun the host-to-GPU copy


@pytest.mark.parametrize("device", DEVICES)
def test_bfloat16_travels_as_bits_and_is_widened_by_torch(device, tmp_path, monkeypatch):
    """bfloat16 blocks are staged as their 16 bits and widened by torch on the
    device: the numbers of torch's own upcast, block after block."""
    from safetensors.torch import save_file

    from xentcli.engine import backends

    monkeypatch.setattr(backends, "TORCH_CPU_BLOCK_BYTES", 4096)
    monkeypatch.setattr(backends, "CUDA_BLOCK_BYTES", 4096)
    rng = np.random.default_rng(8)
    logits = torch.from_numpy(rng.normal(size=(700, 33)).astype(np.float32) * 4).bfloat16()
    target = torch.from_numpy(rng.integers(0, 33, size=700))
    save_file({"logits": logits, "labels": target}, str(tmp_path / "lm.safetensors"))
    batch = xentcli.load_batch(str(tmp_path / "lm.safetensors"), None)
    result = xentcli.cross_entropy(batch.logits, batch.target, backend="torch", device=device)
    expected = torch.nn.functional.cross_entropy(logits.double(), target, reduction="none")
    np.testing.assert_allclose(result.losses, expected.numpy(), rtol=1e-5, atol=1e-6)

"""safetensors and bfloat16, on files the libraries write: safetensors' own
save_file (torch and numpy flavours), np.save of ml_dtypes.bfloat16, and
hostile files. Expected numbers from torch, upcasting bfloat16 itself."""

from __future__ import annotations

import json
import struct

import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from conftest import error_line, xent, xent_json
from xentcli.bfloat16 import BFLOAT16, from_bits, widened
from xentcli.readers import read_source


def lm(dtype=torch.bfloat16, seed=0, shape=(2, 6, 40)):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(*shape, generator=generator) * 3).to(dtype)
    ids = torch.randint(0, shape[-1], shape[:-1], generator=generator)
    mask = torch.ones(shape[:-1], dtype=torch.int64)
    mask[-1, shape[1] // 2 :] = 0
    return logits, ids, mask


def causal(logits, ids, mask):
    labels = ids.clone()
    labels[mask == 0] = -100
    x = logits.float()[:, :-1].reshape(-1, logits.shape[-1])  # torch's own upcast of bfloat16 / float16
    return float(F.cross_entropy(x.double(), labels[:, 1:].reshape(-1)))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_a_dump_written_by_safetensors_torch(tmp_path, dtype):
    logits, ids, mask = lm(dtype)
    save_torch({"logits": logits, "input_ids": ids, "attention_mask": mask}, tmp_path / "dump.safetensors")
    found = xent_json(tmp_path / "dump.safetensors", "--class-axis", "-1", "--shift")
    assert found["loss"] == pytest.approx(causal(logits, ids, mask), rel=1e-6)
    assert found["dtype"] == ("float64" if dtype == torch.float64 else "float32")


def test_labels_from_a_second_file_and_keys_chosen(tmp_path):
    logits, ids, _ = lm(seed=1)
    save_torch({"hidden": torch.zeros(2), "scores": logits}, tmp_path / "x.safetensors")
    save_torch({"labels": ids}, tmp_path / "y.safetensors")
    found = xent_json(tmp_path / "x.safetensors", tmp_path / "y.safetensors", "--key", "scores", "--class-axis", "-1")
    expected = F.cross_entropy(logits.double().reshape(-1, 40), ids.reshape(-1))
    assert found["loss"] == pytest.approx(float(expected), rel=1e-6)
    choose = xent("compute", tmp_path / "x.safetensors", tmp_path / "y.safetensors", "--class-axis", "-1")
    assert "--key" in error_line(choose)


def test_safetensors_numpy_flavour_and_the_tensors_are_memory_mapped(tmp_path):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 7)).astype(np.float32), rng.integers(0, 7, size=300)
    save_numpy({"logits": x, "labels": y}, str(tmp_path / "a.safetensors"))
    found = xent_json(tmp_path / "a.safetensors")
    assert found["loss"] == pytest.approx(float(F.cross_entropy(torch.tensor(x).double(), torch.tensor(y))), rel=1e-6)
    array = read_source(str(tmp_path / "a.safetensors")).archive.get("logits")
    assert not array.flags.owndata and not array.flags.writeable  # a view of the file's map, not a copy


def test_bfloat16_npy_as_ml_dtypes_saves_it(tmp_path):
    logits, ids, _ = lm(seed=3, shape=(1, 30, 9))
    x = logits[0].float().numpy().astype(ml_dtypes.bfloat16)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", ids[0].numpy())
    result = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--format", "json")
    assert result.exit_code == 0, result.stderr
    expected = F.cross_entropy(logits[0].double(), ids[0])  # the same bfloat16 values, upcast by torch
    assert json.loads(result.stdout)["loss"] == pytest.approx(float(expected), rel=1e-6)
    assert "read as bfloat16" in result.stderr
    torch_backend = xent_json(tmp_path / "x.npy", tmp_path / "y.npy", "--backend", "torch")
    assert torch_backend["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_bfloat16_is_widened_exactly_and_never_cast_as_integers():
    values = torch.tensor([1.0, -2.5, 3.140625, 1e30, -1e-30, float("inf")]).bfloat16()
    bits = from_bits(values.view(torch.int16).numpy().view(np.uint16))
    assert bits.dtype == BFLOAT16
    np.testing.assert_array_equal(widened(bits), values.float().numpy())
    with pytest.raises(TypeError):
        bits.astype(np.float32)  # numpy refuses: the bits never pass for numbers


def _write(path, header: dict, data: bytes = b"", length: int | None = None):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@pytest.mark.parametrize(
    "header,data,length,message",
    [
        ({"logits": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, b"\0" * 20, None, "data_offsets"),
        ({"logits": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}, b"\0" * 24, None, "data_offsets"),
        ({"logits": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 2, None, "F8_E4M3"),
        ({"logits": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, None, "shape"),
        ({"logits": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, None, "data_offsets"),
        ({"logits": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"", 10**12, "header would be"),
        ({"__metadata__": {"format": "pt"}}, b"", None, "no tensors"),
    ],
)
def test_hostile_files_are_one_line_errors(tmp_path, header, data, length, message):
    path = _write(tmp_path / "bad.safetensors", header, data, length)
    np.save(tmp_path / "y.npy", np.array([0]))
    line = error_line(xent("compute", path, tmp_path / "y.npy"))
    assert "bad.safetensors" in line and message in line


def test_a_header_that_is_not_json(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 5) + b"{oops" + b"\0" * 8)
    np.save(tmp_path / "y.npy", np.array([0]))
    assert "not JSON" in error_line(xent("compute", path, tmp_path / "y.npy"))

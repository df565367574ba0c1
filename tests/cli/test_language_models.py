"""Language-model dumps from the command line: --shift, --mask, archives with
input_ids and attention_mask, --per-sequence; expected numbers from torch,
written here as Hugging Face's causal-LM loss writes it."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import error_line, xent, xent_json


@pytest.fixture
def dump(tmp_path):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 8, 17)).astype(np.float32)
    ids = rng.integers(0, 17, size=(3, 8))
    mask = np.ones((3, 8), dtype=np.int64)
    mask[1, 5:] = 0
    mask[2, :3] = 0
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", mask)
    return tmp_path, logits, ids, mask


def causal_loss(logits, ids, mask=None, reduction="mean"):
    labels = torch.tensor(ids).clone()
    if mask is not None:
        labels[torch.tensor(mask) == 0] = -100
    x = torch.tensor(logits, dtype=torch.float64)[..., :-1, :].reshape(-1, logits.shape[-1])
    return F.cross_entropy(x, labels[..., 1:].reshape(-1), reduction=reduction)


def test_shift_and_mask_give_the_trainers_loss(dump):
    folder, logits, ids, mask = dump
    args = (folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1", "--shift")
    assert xent_json(*args)["loss"] == pytest.approx(float(causal_loss(logits, ids)), rel=1e-6)
    found = xent_json(*args, "--mask", folder / "mask.npy")
    assert found["loss"] == pytest.approx(float(causal_loss(logits, ids, mask)), rel=1e-6)
    assert found["options"]["shift"] is True and found["options"]["mask"].endswith("mask.npy")
    pd.DataFrame(mask).to_csv(folder / "mask.csv", index=False)  # pandas writes a header 0,1,...
    assert xent_json(*args, "--mask", folder / "mask.csv")["loss"] == found["loss"]
    unshifted = xent_json(folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1")["loss"]
    assert unshifted != pytest.approx(found["loss"], rel=1e-3)  # the shift matters


def test_logits_ids_and_mask_in_one_archive(dump):
    folder, logits, ids, mask = dump
    np.savez(folder / "all.npz", logits=logits, input_ids=ids, attention_mask=mask)
    result = xent("compute", folder / "all.npz", "--class-axis", "-1", "--shift", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["loss"] == pytest.approx(float(causal_loss(logits, ids, mask)), rel=1e-6)
    assert "all.npz[attention_mask]: its 0s are ignored" in result.stderr
    unshifted = xent("compute", folder / "all.npz", "--class-axis", "-1")
    assert "say --shift" in error_line(unshifted)


def test_per_sequence_in_json_csv_and_the_table(dump):
    folder, logits, ids, mask = dump
    args = (folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1", "--shift", "--mask", folder / "mask.npy",
            "--per-sequence")
    found = xent_json(*args)
    expected = [causal_loss(logits[b : b + 1], ids[b : b + 1], mask[b : b + 1]) for b in range(3)]
    assert [s["tokens"] for s in found["per_sequence"]] == [int(mask[b, 1:].sum()) for b in range(3)]
    np.testing.assert_allclose([s["loss"] for s in found["per_sequence"]], [float(e) for e in expected], rtol=1e-6)
    np.testing.assert_allclose([s["perplexity"] for s in found["per_sequence"]],
                               [float(torch.exp(e)) for e in expected], rtol=1e-6)
    assert found["token_mean"] == found["loss"] == pytest.approx(float(causal_loss(logits, ids, mask)), rel=1e-6)
    assert found["sequence_mean"] == pytest.approx(float(np.mean([float(e) for e in expected])), rel=1e-6)
    rows = list(csv.DictReader(io.StringIO(xent("compute", *args, "-f", "csv").stdout)))
    assert list(rows[0]) == ["sequence", "tokens", "loss", "perplexity"] and len(rows) == 3
    assert float(rows[2]["loss"]) == pytest.approx(float(expected[2]), rel=1e-6)
    table = xent("compute", *args).stdout
    assert "loss (token mean)" in table and "sequence mean" in table
    assert f"{float(expected[1]):.4f}" in table


def test_errors_point_at_the_label_that_was_shifted_in(dump):
    folder, logits, ids, _ = dump
    ids[1, 4] = 99  # out of the vocabulary: position (1, 3) predicts it
    np.save(folder / "ids.npy", ids)
    line = error_line(xent("compute", folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1", "--shift"))
    assert "ids.npy[1, 4]" in line and "99" in line


def test_mask_errors(dump):
    folder, *_ = dump
    np.save(folder / "short.npy", np.ones((3, 7), dtype=np.int64))
    args = (folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1", "--shift", "--mask")
    assert "shape" in error_line(xent("compute", *args, folder / "short.npy"))
    np.save(folder / "twos.npy", np.full((3, 8), 2))
    assert "like an attention mask" in error_line(xent("compute", *args, folder / "twos.npy"))


def test_the_readmes_example_on_the_sample_dump():
    from conftest import SAMPLES

    dump = np.load(SAMPLES / "lm_dump.npz")
    logits, ids, mask = dump["logits"], dump["input_ids"], dump["attention_mask"]
    assert f"{float(causal_loss(logits, ids, mask)):.4f}" == "1.4217"
    per_sequence = [float(causal_loss(logits[b : b + 1], ids[b : b + 1], mask[b : b + 1])) for b in range(2)]
    assert [f"{v:.4f}" for v in per_sequence] == ["1.4329", "1.4022"]
    assert f"{np.mean(per_sequence):.4f}" == "1.4176"
    found = xent_json(SAMPLES / "lm_dump.npz", "--class-axis", "-1", "--shift", "--per-sequence")
    assert found["loss"] == pytest.approx(float(causal_loss(logits, ids, mask)), rel=1e-6)


def test_z_loss_softcap_and_temperature_from_the_command_line(dump):
    folder, logits, ids, mask = dump
    found = xent_json(folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1", "--shift", "--mask",
                      folder / "mask.npy", "--z-loss", "1e-3", "--softcap", "4", "--temperature", "0.8")
    x = torch.tanh(torch.tensor(logits, dtype=torch.float64)[:, :-1] / 4) * 4 / 0.8
    labels = torch.tensor(ids).clone()
    labels[torch.tensor(mask) == 0] = -100
    target = labels[:, 1:].reshape(-1)
    kept = target != -100
    ce = F.cross_entropy(x.reshape(-1, x.shape[-1]), target)
    z = (1e-3 * torch.logsumexp(x.reshape(-1, x.shape[-1]), -1) ** 2)[kept].mean()
    assert found["loss"] == pytest.approx(float(ce + z), rel=1e-6)
    assert found["z_loss"]["mean"] == pytest.approx(float(z), rel=1e-6) and found["z_loss"]["coefficient"] == 1e-3
    assert found["cross_entropy"] == pytest.approx(float(ce), rel=1e-6)
    assert found["perplexity"] == pytest.approx(float(torch.exp(ce)), rel=1e-6)
    assert {k: found["options"][k] for k in ("z_loss", "softcap", "temperature")} == {
        "z_loss": 1e-3, "softcap": 4.0, "temperature": 0.8}
    probs = xent("compute", folder / "logits.npy", folder / "ids.npy", "--class-axis", "-1", "--softcap", "3",
                 "--input", "probs")
    assert "act on a softmax's logits" in error_line(probs)


def test_explain_a_token_shows_the_top_10_with_ids_and_strings(tmp_path):
    rng = np.random.default_rng(9)
    vocab_size = 300
    logits = rng.normal(size=(1, 5, vocab_size)).astype(np.float32)
    ids = rng.integers(0, vocab_size, size=(1, 5))
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", ids)
    tokens = [f"tok{k}" for k in range(vocab_size - 10)]  # padded past the tokenizer, as models are
    tokens[int(ids[0, 3])] = "▁the\x1b[31m"  # a control character is shown escaped, never sent to the terminal
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    args = ("explain", tmp_path / "x.npy", tmp_path / "y.npy", "--class-axis", "-1", "--shift", "--row", "2")
    data = json.loads(xent(*args, "-f", "json").stdout)
    probabilities = torch.softmax(torch.tensor(logits[0, 2], dtype=torch.float64), 0)
    assert data["target"] == int(ids[0, 3])
    assert data["loss"] == pytest.approx(float(-torch.log(probabilities[ids[0, 3]])), rel=1e-6)
    table = xent(*args, "--vocab", tmp_path / "vocab.txt").stdout
    top = torch.topk(probabilities, 10).indices.tolist()
    body = table.split("───\n", 1)[1].split("\n…", 1)[0]  # the class rows: under the rule, above the caption
    lines = body.splitlines()
    shown = [int(line.split()[0]) for line in lines]
    assert shown[:10] == top and (int(ids[0, 3]) in shown)
    assert f"{top[0]} tok{top[0]}" in table or top[0] >= vocab_size - 10
    assert "\x1b" not in table and "▁the" in table
    assert f"… {vocab_size - len(shown)} more classes" in table
    (tmp_path / "big.txt").write_text("\n".join(["t"] * (vocab_size + 1)) + "\n")
    assert "301 tokens but the logits have 300" in error_line(xent(*args, "--vocab", tmp_path / "big.txt"))

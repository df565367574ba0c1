"""Files as other tools really write them: read right, or refused with the fix.

Every expected loss here comes from torch or scikit-learn on the arrays the
files were written from, never from xent itself.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss
from sklearn.utils.class_weight import compute_class_weight

from conftest import SAMPLES, assert_user_error, xent, xent_json

CLASSES = ["cat", "dog", "bird"]


def torch_loss(logits, target, weight=None) -> float:
    w = None if weight is None else torch.as_tensor(np.asarray(weight, dtype=np.float64))
    return float(F.cross_entropy(torch.as_tensor(np.asarray(logits, dtype=np.float64)), torch.as_tensor(np.asarray(target)), weight=w))


@pytest.fixture
def batch():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(6, 3)) * 2
    target = rng.integers(0, 3, size=6)
    return logits, target


def error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xent: error: "), result.stderr
    return lines[0]


# pandas' own CSVs ------------------------------------------------------------


def test_pandas_default_headers_are_headers_and_said(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits).to_csv(tmp_path / "L.csv", index=False)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["rows"] == 6
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "pandas' column index" in result.stderr and "L.csv:1" in result.stderr
    assert "Y.csv:1" in result.stderr and "header" in result.stderr
    # --no-header keeps both first rows as data: seven rows of each.
    assert xent_json(tmp_path / "L.csv", tmp_path / "Y.csv", "--no-header")["rows"] == 7


def test_pandas_header_on_probabilities(tmp_path, batch):
    logits, target = batch
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pd.DataFrame(probs).to_csv(tmp_path / "P.csv", index=False)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)
    data = xent_json(tmp_path / "P.csv", tmp_path / "Y.csv", "--input", "probs", "--convention", "sklearn")
    assert data["loss"] == pytest.approx(log_loss(target, probs, labels=[0, 1, 2]), rel=1e-12)


def test_pandas_index_columns_are_ids(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits).to_csv(tmp_path / "L.csv")
    pd.Series(target).to_csv(tmp_path / "Y.csv")
    data = xent_json(tmp_path / "L.csv", tmp_path / "Y.csv")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_labels_one_line_too_many_or_few_name_both_readings(tmp_path, batch):
    logits, target = batch
    np.savetxt(tmp_path / "L.csv", logits, delimiter=",")
    (tmp_path / "Y.csv").write_text("0\n" + "\n".join(map(str, target[:4])) + "\n")  # 5 lines for 6 rows
    line = error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv"))
    assert "5 rows of labels (or 4 if the first line '0' is a header)" in line and "6 rows" in line


def test_a_name_over_names_is_settled_by_counting(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "L.csv", index=False)
    names = [CLASSES[t] for t in target]
    (tmp_path / "Y.csv").write_text("\n".join(["animal", *names]) + "\n")
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "'animal' is a header" in result.stderr


# Identifier columns ------------------------------------------------------------


def test_kaggle_ids_are_joined_in_any_order(tmp_path, batch):
    logits, target = batch
    ids = [f"img_{k:03d}" for k in range(6)]
    pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    order = [3, 0, 5, 1, 4, 2]
    pd.DataFrame({"id": [ids[k] for k in order], "label": [CLASSES[target[k]] for k in order]}).to_csv(
        tmp_path / "Y.csv", index=False
    )
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "value")
    assert result.exit_code == 0, result.stderr
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "joined" in result.stderr


def test_named_id_column_by_option(tmp_path, batch):
    logits, target = batch
    frame = pd.DataFrame(logits, columns=CLASSES)
    frame.insert(0, "key", range(100, 106))
    frame.to_csv(tmp_path / "L.csv", index=False)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)
    data = xent_json(tmp_path / "L.csv", tmp_path / "Y.csv", "--id-col", "key")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


@pytest.mark.parametrize("labels,what", [
    ("id,label\n0,1\n1,0\n1,2\n", "id '1' appears twice"),
    ("id,label\n0,1\n1,0\n7,2\n", "id '2' has no label"),
])
def test_missing_or_duplicate_ids_are_named(tmp_path, labels, what):
    (tmp_path / "L.csv").write_text("id,a,b,c\n0,1,2,3\n1,3,2,1\n2,0,0,1\n")
    (tmp_path / "Y.csv").write_text(labels)
    assert what in error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv"))


def test_pandas_multi_index_and_pivot_index_are_not_classes(tmp_path, batch):
    logits, target = batch
    index = pd.MultiIndex.from_tuples([("run", k) for k in range(6)])
    pd.DataFrame(logits, index=index, columns=["a", "b", "c"]).to_csv(tmp_path / "multi.csv")
    long = pd.DataFrame(
        [(r, c, logits[r, k]) for r in range(6) for k, c in enumerate("abc")], columns=["row", "class", "v"]
    )
    long.pivot(index="row", columns="class", values="v").to_csv(tmp_path / "pivot.csv")
    np.savetxt(tmp_path / "Y.csv", target, fmt="%d")
    for name in ("multi.csv", "pivot.csv"):
        data = xent_json(tmp_path / name, tmp_path / "Y.csv")
        assert data["classes"] == 3 and data["class_names"] == ["a", "b", "c"]
        assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


# Names decide, never positions -------------------------------------------------


def test_soft_labels_from_get_dummies_are_matched_by_name(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "L.csv", index=False)
    names = pd.Series([CLASSES[t] for t in target])
    pd.get_dummies(names).to_csv(tmp_path / "bool.csv", index=False)  # alphabetical, True/False
    pd.get_dummies(names).astype(int).to_csv(tmp_path / "int.csv", index=False)
    for name in ("bool.csv", "int.csv"):
        data = xent_json(tmp_path / "L.csv", tmp_path / name)
        assert data["soft_labels"] is True
        assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_classes_in_another_order_reorder_the_columns(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "L.csv", index=False)
    order = ["bird", "cat", "dog"]
    np.savetxt(tmp_path / "Y.csv", [order.index(CLASSES[t]) for t in target], fmt="%d")
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--classes", ",".join(order), "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "reordered" in result.stderr
    line = error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--classes", "bird,cat,cow"))
    assert "does not match the header" in line


def test_class_weights_keyed_by_name(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "L.csv", index=False)
    np.savetxt(tmp_path / "Y.csv", target, fmt="%d")
    weights = {"cat": 0.5, "dog": 2.0, "bird": 3.0}
    pd.Series(weights).sort_index().to_csv(tmp_path / "w.csv")  # alphabetical, as compute_class_weight
    expected = torch_loss(logits, target, [weights[c] for c in CLASSES])
    assert xent_json(tmp_path / "L.csv", tmp_path / "Y.csv", "--weight", tmp_path / "w.csv")["loss"] == pytest.approx(expected, rel=1e-12)
    (tmp_path / "bad.csv").write_text("cat,1\ndog,2\n")
    assert "no weight for class 'bird'" in error_line(
        xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--weight", tmp_path / "bad.csv")
    )


def test_balanced_weights_are_scikit_learns(tmp_path):
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(40, 4)), rng.choice(4, size=40, p=[0.1, 0.2, 0.3, 0.4])
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    weights = compute_class_weight("balanced", classes=np.arange(4), y=target)
    expected = torch_loss(logits, target, weights)
    assert xent_json(tmp_path / "L.npy", tmp_path / "Y.npy", "--weight", "balanced")["loss"] == pytest.approx(expected, rel=1e-12)


def test_one_rule_for_numeric_labels(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    # Class names that are numbers other than their positions: labels are names, always.
    names = ["1", "2", "3"]
    np.savetxt(tmp_path / "Y.csv", target + 1, fmt="%d")
    data = xent_json(tmp_path / "L.npy", tmp_path / "Y.csv", "--classes", ",".join(names))
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)
    np.savetxt(tmp_path / "Y0.csv", target, fmt="%d")
    if 0 in target:
        assert "unknown class '0'" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "Y0.csv", "--classes", "1,2,3"))
    # Strings in an NPY: numeric strings are indices; names need --classes, and never exit 70.
    np.save(tmp_path / "S.npy", np.array([str(t) for t in target]))
    assert xent_json(tmp_path / "L.npy", tmp_path / "S.npy")["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)
    np.save(tmp_path / "N.npy", np.array([CLASSES[t] for t in target]))
    assert "class names are unknown" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "N.npy"))
    data = xent_json(tmp_path / "L.npy", tmp_path / "N.npy", "--classes", ",".join(CLASSES))
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


# Shards -------------------------------------------------------------------------


def test_twelve_shards_in_natural_order_paired_by_name(tmp_path):
    rng = np.random.default_rng(12)
    logits, target = rng.normal(size=(12 * 5, 4)), rng.integers(0, 4, size=60)
    sample = rng.uniform(0.1, 3, size=60)
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for k in range(12):
        np.save(tmp_path / "x" / f"logits_{k + 1}.npy", logits[5 * k : 5 * k + 5])
        np.save(tmp_path / "y" / f"labels_{k + 1:02d}.npy", target[5 * k : 5 * k + 5])
    np.save(tmp_path / "w.npy", sample)
    data = xent_json(str(tmp_path / "x" / "logits_*.npy"), str(tmp_path / "y" / "labels_*.npy"), "--sample-weight", tmp_path / "w.npy")
    per_row = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), reduction="none").numpy()
    assert data["loss"] == pytest.approx(float((per_row * sample).sum() / sample.sum()), rel=1e-12)
    assert [f["logits"].rsplit("_", 1)[1] for f in data["files"]] == [f"{k}.npy" for k in range(1, 13)]
    assert all(f["logits"].rsplit("_")[-1].split(".")[0].lstrip("0") == f["labels"].rsplit("_")[-1].split(".")[0].lstrip("0")
               for f in data["files"])
    np.save(tmp_path / "y" / "labels_13.npy", target[:5])
    (tmp_path / "y" / "labels_01.npy").unlink()
    line = error_line(xent("compute", str(tmp_path / "x" / "logits_*.npy"), str(tmp_path / "y" / "labels_*.npy")))
    assert "logits_1.npy" in line and "no labels file matches" in line


# A bad first row is not a header --------------------------------------------------


@pytest.mark.parametrize("first,cell", [("3,,0.5", "''"), ("NA,1,2", "'NA'"), ("0x1p3,1,2", "'0x1p3'")])
def test_a_bad_first_row_is_named_not_taken_for_a_header(tmp_path, first, cell):
    (tmp_path / "L.csv").write_text(f"{first}\n0.1,0.2,0.3\n1,2,3\n")
    np.savetxt(tmp_path / "Y.csv", [0, 1, 2], fmt="%d")
    line = error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv"))
    assert "L.csv:1:" in line and cell in line


def test_a_misspelled_first_label_is_named(tmp_path):
    (tmp_path / "L.csv").write_text("1,2,3\n3,2,1\n0,0,1\n")
    (tmp_path / "Y.csv").write_text("brid\ncat\ndog\n")
    line = error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--classes", "cat,dog,bird"))
    assert "Y.csv:1: unknown class 'brid'" in line


# Shapes people have ----------------------------------------------------------------


def test_keras_sparse_labels_and_one_hot_matrices(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "col.npy", target.reshape(-1, 1))
    np.save(tmp_path / "onehot.npy", np.eye(3, dtype=np.int64)[target])
    expected = torch_loss(logits, target)
    assert xent_json(tmp_path / "L.npy", tmp_path / "col.npy")["loss"] == pytest.approx(expected, rel=1e-12)
    for convention in ("torch", "keras", "optax"):
        data = xent_json(tmp_path / "L.npy", tmp_path / "onehot.npy", "--convention", convention)
        assert data["loss"] == pytest.approx(expected, rel=1e-6)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.save(tmp_path / "P.npy", probs)
    indicator = np.eye(3, dtype=np.int64)[target]
    data = xent_json(tmp_path / "P.npy", tmp_path / "onehot.npy", "--convention", "sklearn", "--input", "probs")
    assert data["loss"] == pytest.approx(log_loss(indicator, probs), rel=1e-12)


def test_npz_labels_key_and_string_labels(tmp_path, batch):
    logits, target = batch
    np.savez(tmp_path / "d.npz", scores=logits, gold=np.array([CLASSES[t] for t in target]))
    line = error_line(xent("compute", tmp_path / "d.npz", "--key", "scores"))
    assert "no labels" in line or "--labels-key" in line
    data = xent_json(tmp_path / "d.npz", "--key", "scores", "--labels-key", "gold", "--classes", ",".join(CLASSES))
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


# Files named by their content ---------------------------------------------------------


def test_content_decides_where_the_suffix_says_nothing(tmp_path, batch):
    logits, target = batch
    expected = torch_loss(logits, target)
    buffer = io.BytesIO()
    np.save(buffer, logits)
    (tmp_path / "logits").write_bytes(buffer.getvalue())
    with open(tmp_path / "both.bin", "wb") as file:
        np.savez(file, logits=logits, labels=target)
    torch.save(torch.from_numpy(logits), tmp_path / "model.out")
    text = "\n".join(",".join(repr(float(v)) for v in row) for row in logits).encode()
    (tmp_path / "t.gzdata").write_bytes(gzip.compress(text))
    (tmp_path / "t.bz").write_bytes(bz2.compress(text))
    (tmp_path / "t.xzd").write_bytes(lzma.compress(text))
    np.savetxt(tmp_path / "Y.csv", target, fmt="%d")
    for name in ("logits", "model.out", "t.gzdata", "t.bz", "t.xzd"):
        assert xent_json(tmp_path / name, tmp_path / "Y.csv")["loss"] == pytest.approx(expected, rel=1e-12), name
    assert xent_json(tmp_path / "both.bin")["loss"] == pytest.approx(expected, rel=1e-12)


def test_process_substitution(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    labels = " ".join(map(str, target))
    script = f"{sys.executable} -m xentcli compute {tmp_path / 'L.npy'} <(printf '%s\\n' {labels}) --format value"
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)


# Integers that don't fit ---------------------------------------------------------------


def test_huge_labels_are_named_as_written(tmp_path, batch):
    logits, _ = batch
    np.save(tmp_path / "L.npy", logits[:2])
    np.save(tmp_path / "u.npy", np.array([0, 18446744073709551516], dtype=np.uint64))
    assert "label 18446744073709551516 is out of range" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "u.npy"))
    for written in ("9223372036854775807", "1e300"):
        (tmp_path / "y.csv").write_text(f"0\n{written}\n")
        result = xent("compute", tmp_path / "L.npy", tmp_path / "y.csv")
        line = error_line(result)
        assert f"y.csv:2: label {written} is out of range" in line
        assert "Warning" not in result.stderr
    np.save(tmp_path / "f.npy", np.array([0.0, 1e300]))
    assert "out of range" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "f.npy"))


def test_decompression_stops_at_the_limit(tmp_path):
    (tmp_path / "z.csv.gz").write_bytes(gzip.compress(b"0\n" * 600_000))
    line = error_line(xent("compute", tmp_path / "z.csv.gz", SAMPLES / "labels.csv", "--max-bytes", "1000000"))
    assert "--max-bytes" in line
    np.savez_compressed(tmp_path / "big.npz", logits=np.zeros((1000, 1000)), labels=np.zeros(1000, dtype=int))
    line = error_line(xent("compute", tmp_path / "big.npz", "--max-bytes", "1000000"))
    assert "big.npz[logits]" in line and "--max-bytes" in line


# Exit 2, never 70, for files a user can bring ---------------------------------------------


def test_odd_files_are_user_errors(tmp_path):
    import warnings
    import zipfile

    np.save(tmp_path / "zero.npy", np.float64(3.0))
    torch.save(torch.eye(3).to_sparse(), tmp_path / "sparse.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(torch.quantize_per_tensor(torch.rand(3, 3), 0.1, 0, torch.quint8), tmp_path / "q.pt")
    torch.save(torch.empty(3, 3, device="meta"), tmp_path / "meta.pt")
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as archive:
        archive.writestr("logits.txt", "1,2,3")
    (tmp_path / "arabic.csv").write_text("\u0661,2,3\n4,5,6\n")
    (tmp_path / "y.csv").write_text("0\n1\n2\n")
    cases = {
        "zero.npy": "a 0-d array",
        "sparse.pt": "sparse tensor",
        "q.pt": "quantized tensor",
        "meta.pt": "meta device",
        "odd.npz": "not an NPY member",
        "arabic.csv": "digits other than 0-9",
    }
    for name, what in cases.items():
        assert what in error_line(xent("compute", tmp_path / name, tmp_path / "y.csv")), name
    assert "quote" in error_line(xent("compute", tmp_path / "arabic.csv", tmp_path / "y.csv", "--delimiter", '"'))


def test_hints_for_common_mix_ups(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target + 1)
    if (target + 1).max() == 3:
        assert "labels 1..3? xent counts classes from 0" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "Y.npy"))
    np.save(tmp_path / "I.npy", np.eye(3, dtype=np.int64)[target])
    assert "other way round" in error_line(xent("compute", tmp_path / "I.npy", tmp_path / "Y.npy"))
    np.save(tmp_path / "lm.npy", np.zeros((2, 4, 7)))
    np.save(tmp_path / "tok.npy", np.zeros((2, 4), dtype=np.int64))
    assert "--class-axis -1" in error_line(xent("compute", tmp_path / "lm.npy", tmp_path / "tok.npy"))


def test_a_row_of_25_million_columns_is_not_split_into_strings(tmp_path, monkeypatch):
    from xentcli.readers import text

    split_sizes = []
    original = text.split
    monkeypatch.setattr(text, "split", lambda *args: split_sizes.append(len(original(*args))) or original(*args))
    (tmp_path / "wide.csv").write_text(",".join(["0.5"] * 200_000) + "\n")
    (tmp_path / "y.csv").write_text("7\n")
    data = xent_json(tmp_path / "wide.csv", tmp_path / "y.csv")
    assert data["classes"] == 200_000
    assert data["loss"] == pytest.approx(float(np.log(200_000)), rel=1e-12)
    assert max(split_sizes) <= text.HEADER_CELLS + 1


def test_sklearn_judges_the_whole_batch_not_each_file(tmp_path):
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.ones(3), size=8)
    target = rng.integers(0, 3, size=8)
    np.save(tmp_path / "a.npy", probs[:4])
    np.save(tmp_path / "b.npy", probs[4:])
    np.save(tmp_path / "ya.npy", np.full(4, -100))  # every row of the first file ignored
    np.save(tmp_path / "yb.npy", target[4:])
    data = xent_json(f"{tmp_path / 'a.npy'},{tmp_path / 'b.npy'}", f"{tmp_path / 'ya.npy'},{tmp_path / 'yb.npy'}",
                     "--convention", "sklearn", "--input", "probs")
    assert data["loss"] == pytest.approx(log_loss(target[4:], probs[4:], labels=[0, 1, 2]), rel=1e-12)
    np.save(tmp_path / "yb.npy", np.full(4, -100))
    assert "refuses an empty batch" in error_line(
        xent("compute", f"{tmp_path / 'a.npy'},{tmp_path / 'b.npy'}", f"{tmp_path / 'ya.npy'},{tmp_path / 'yb.npy'}",
             "--convention", "sklearn", "--input", "probs")
    )


def test_log_probabilities_that_do_not_normalise_warn_like_probabilities(tmp_path):
    log_p = np.log(np.array([[0.2, 0.3, 0.1], [0.5, 0.3, 0.2]]))  # the first row sums to 0.6
    np.save(tmp_path / "L.npy", log_p)
    np.save(tmp_path / "Y.npy", np.array([0, 1]))
    result = xent("compute", tmp_path / "L.npy", tmp_path / "Y.npy", "--input", "log-probs", "--format", "value")
    expected = float(F.nll_loss(torch.from_numpy(log_p), torch.tensor([0, 1])))
    assert float(result.stdout) == pytest.approx(expected, rel=1e-12)
    assert "1 of 2 rows of log-probabilities do not sum to 1" in result.stderr and "[0]" in result.stderr


@pytest.mark.parametrize("where", ["small", "streamed"])
def test_nul_bytes_are_named_with_their_line(where, tmp_path, monkeypatch):
    """A binary file given as text: one line naming the line of its first NUL byte,
    found up front for a small file and by the row-counting threads for one that streams."""
    from xentcli.readers import text

    if where == "streamed":
        monkeypatch.setattr(text, "STREAM_BYTES", 100)
        monkeypatch.setattr(text, "STREAM_CHUNK_BYTES", 64)
    lines = [f"{i}.5,{i}.25" for i in range(60)]
    lines[41] = "1.5,\x002.5"
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "y.csv").write_text("\n".join("0" for _ in range(60)) + "\n")
    result = xent("compute", tmp_path / "x.csv", tmp_path / "y.csv")
    assert_user_error(result, where=f"{tmp_path / 'x.csv'}:42", contains="NUL")

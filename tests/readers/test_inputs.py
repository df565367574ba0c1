"""Every input form gives the same numbers as the arrays it holds."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SAMPLES, SEED_LOGITS, SEED_TARGETS, write_csv, xent, xent_json

SEED_EXACT = float(F.cross_entropy(torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS)))


def seed_text(delimiter=",", header=None) -> str:
    lines = [delimiter.join(header)] if header else []
    lines += [delimiter.join(f"{v:.4f}" for v in row) for row in SEED_LOGITS]
    return "\n".join(lines) + "\n"


@pytest.fixture
def labels(tmp_path):
    return write_csv(tmp_path / "labels.csv", SEED_TARGETS)


@pytest.mark.parametrize(
    "name,text",
    [
        ("comma.csv", seed_text(",")),
        ("tab.tsv", seed_text("\t")),
        ("semicolon.csv", seed_text(";")),
        ("space.txt", seed_text(" ")),
        ("header.csv", seed_text(",", ["a", "b", "c", "d", "e"])),
        ("crlf.csv", seed_text(",").replace("\n", "\r\n")),
        ("bom.csv", "\ufeff" + seed_text(",")),
        ("blank_and_comment.dat", "# seed\n\n" + seed_text(" ") + "\n\n"),
    ],
)
def test_text_forms(tmp_path, labels, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    data = xent_json(path, labels)
    assert data["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)
    assert data["rows"] == 3 and data["classes"] == 5


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)])
def test_compressed_text(tmp_path, labels, suffix, compress):
    path = tmp_path / f"logits.csv{suffix}"
    path.write_bytes(compress(seed_text().encode()))
    assert xent_json(path, labels)["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)


def test_header_names_classes_and_labels_are_names(tmp_path):
    logits = tmp_path / "x.csv"
    logits.write_text(seed_text(",", ["v", "w", "x", "y", "z"]))
    names = write_csv(tmp_path / "y.csv", ["y", "v", "x"])
    data = xent_json(logits, names)
    assert data["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)
    assert data["class_names"] == ["v", "w", "x", "y", "z"]


def test_names_file_with_header_row(tmp_path):
    names = write_csv(tmp_path / "y.csv", ["y", "v", "x"], header=["label"])
    logits = tmp_path / "x.csv"
    logits.write_text(seed_text())
    data = xent_json(logits, names, "--classes", "v,w,x,y,z")
    assert data["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)
    assert data["rows"] == 3


def test_label_column_by_name_and_index():
    by_name = xent_json(SAMPLES / "animals.csv", "--label-col", "label", "--per-row")
    by_index = xent_json(SAMPLES / "animals.csv", "--label-col", "3")
    assert by_name["class_names"] == ["cat", "dog", "bird"]
    assert by_name["loss"] == by_index["loss"]
    table = np.genfromtxt(SAMPLES / "animals.csv", delimiter=",", dtype=str, skip_header=1)
    logits = table[:, :3].astype(float)
    target = np.array([["cat", "dog", "bird"].index(n) for n in table[:, 3]])
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)))
    assert by_name["loss"] == pytest.approx(expected, rel=1e-12)
    assert [r["target"] for r in by_name["per_row"]] == target.tolist()


def test_pandas_row_id_column_is_not_a_class(tmp_path):
    path = tmp_path / "x.csv"
    rows = [",".join([str(i)] + [f"{v:.4f}" for v in r]) for i, r in enumerate(SEED_LOGITS)]
    path.write_text(",0,1,2,3,4\n" + "\n".join(rows) + "\n")
    labels = tmp_path / "y.csv"
    labels.write_text(",label\n0,3\n1,0\n2,2\n")
    data = xent_json(path, labels)
    assert data["classes"] == 5
    assert data["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)


def test_npy_pair_and_float16_upcast(tmp_path):
    np.save(tmp_path / "x.npy", SEED_LOGITS.astype(np.float16))
    np.save(tmp_path / "y.npy", SEED_TARGETS)
    data = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")
    assert data["dtype"] == "float32"
    half = torch.from_numpy(SEED_LOGITS.astype(np.float16)).float()
    assert data["loss"] == pytest.approx(float(F.cross_entropy(half, torch.from_numpy(SEED_TARGETS))), rel=1e-5)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">f2"])
def test_big_endian_npy_reads_as_its_native_twin(tmp_path, dtype):
    """np.save keeps a big-endian array's byte order: the loss is the native array's, the
    dtype is named as numpy names it (float32, not >f4), and a big-endian label file reads too."""
    native = SEED_LOGITS.astype(dtype).astype(np.dtype(dtype).newbyteorder("="))
    np.save(tmp_path / "x.npy", SEED_LOGITS.astype(dtype))
    np.save(tmp_path / "y.npy", SEED_TARGETS.astype(">i8"))
    data = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")
    expected = F.cross_entropy(torch.from_numpy(native.astype(np.float32 if dtype == ">f2" else native.dtype)),
                               torch.from_numpy(SEED_TARGETS))
    assert data["dtype"] == ("float32" if dtype == ">f2" else native.dtype.name)
    assert data["loss"] == pytest.approx(float(expected), rel=1e-6 if dtype != ">f8" else 1e-15)


def test_dtype_option_forces_float32(tmp_path, labels):
    path = tmp_path / "x.csv"
    path.write_text(seed_text())
    assert xent_json(path, labels, "--dtype", "float32")["dtype"] == "float32"


def test_npz_with_logits_and_labels_serves_as_both(tmp_path):
    np.savez(tmp_path / "d.npz", logits=SEED_LOGITS, targets=SEED_TARGETS)
    data = xent_json(tmp_path / "d.npz")
    assert data["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)
    assert data["inputs"]["labels"].endswith("[targets]")


def test_npz_key_picks_the_logits(tmp_path):
    np.savez(tmp_path / "d.npz", scores=SEED_LOGITS, other=np.zeros(3))
    np.save(tmp_path / "y.npy", SEED_TARGETS)
    assert xent_json(tmp_path / "d.npz", tmp_path / "y.npy", "--key", "scores")["loss"] == pytest.approx(SEED_EXACT)


def test_stdin_text_and_npy(labels):
    assert xent_json("-", labels, input=seed_text())["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)
    buffer = io.BytesIO()
    np.save(buffer, SEED_LOGITS)
    assert xent_json("-", labels, input=buffer.getvalue())["loss"] == pytest.approx(SEED_EXACT, rel=1e-15)


def test_stdin_labels(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(seed_text())
    assert xent_json(path, "-", input="3\n0\n2\n")["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)


def test_soft_labels_csv_matches_torch():
    logits = np.loadtxt(SAMPLES / "logits.csv", delimiter=",")
    soft = np.loadtxt(SAMPLES / "soft_labels.csv", delimiter=",")
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(soft)))
    data = xent_json(SAMPLES / "logits.csv", SAMPLES / "soft_labels.csv")
    assert data["soft_labels"] is True
    assert data["loss"] == pytest.approx(expected, rel=1e-12)


def test_extra_dimensions_from_npy_with_class_axis_last():
    logits = np.load(SAMPLES / "lm_logits.npy")
    tokens = np.load(SAMPLES / "lm_tokens.npy")
    expected = float(F.cross_entropy(torch.from_numpy(logits).permute(0, 2, 1), torch.from_numpy(tokens)))
    data = xent_json(SAMPLES / "lm_logits.npy", SAMPLES / "lm_tokens.npy", "--class-axis", "-1", "--per-row")
    assert data["loss"] == pytest.approx(expected, rel=1e-5)
    assert data["ignored"] == int((tokens == -100).sum())
    assert data["per_row"][5]["index"] == [1, 1]


def test_class_indices_written_as_floats_are_accepted(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(seed_text())
    labels = write_csv(tmp_path / "y.csv", ["3.0", "0.0", "2.0"])
    assert xent_json(path, labels)["loss"] == pytest.approx(SEED_EXACT, rel=1e-12)


def test_weights_from_a_file(tmp_path, labels):
    path = tmp_path / "x.csv"
    path.write_text(seed_text())
    weights = write_csv(tmp_path / "w.csv", [0.5, 1, 2, 1, 3])
    expected = float(
        F.cross_entropy(
            torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS),
            weight=torch.tensor([0.5, 1, 2, 1, 3], dtype=torch.float64),
        )
    )
    assert xent_json(path, labels, "--weight", weights)["loss"] == pytest.approx(expected, rel=1e-12)
    assert xent_json(path, labels, "--weight", "0.5,1,2,1,3")["loss"] == pytest.approx(expected, rel=1e-12)


def test_probs_that_do_not_sum_to_one_warn(tmp_path):
    probs = write_csv(tmp_path / "p.csv", [[0.5, 0.4], [0.2, 0.8]])
    labels = write_csv(tmp_path / "y.csv", [0, 1])
    result = xent("compute", probs, labels, "--input", "probs", "--format", "value")
    assert result.exit_code == 0
    assert "1 of 2 rows of probabilities do not sum to 1" in result.stderr
    assert f"{tmp_path / 'p.csv'}:1" in result.stderr


def test_double_softmax_warning(tmp_path):
    probs = write_csv(tmp_path / "p.csv", [[0.5, 0.5], [0.2, 0.8]])
    labels = write_csv(tmp_path / "y.csv", [0, 1])
    result = xent("compute", probs, labels, "--format", "value")
    assert result.exit_code == 0
    assert "look like probabilities" in result.stderr
    quiet = xent("compute", probs, labels, "--format", "value", "--quiet")
    assert quiet.stderr == ""

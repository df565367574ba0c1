"""The sigmoid family from the command line, on files the tools really write.

Expected numbers come from scikit-learn (log_loss, roc_auc_score,
average_precision_score, brier_score_loss) and torch
(binary_cross_entropy_with_logits) on the arrays the files were written from.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
import torch
import torch.nn.functional as F
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from conftest import SAMPLES, error_line, xent, xent_json


@pytest.fixture(scope="module")
def classifier():
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(X[:400], y[:400])
    return model.predict_proba(X[400:])[:, 1], model.decision_function(X[400:]), y[400:]


@pytest.mark.parametrize("index", [True, False])
def test_predict_proba_written_by_pandas_is_sklearns_log_loss(tmp_path, classifier, index):
    p, _, y = classifier
    pd.Series(p, name="p_malignant").to_csv(tmp_path / "p.csv", index=index)
    pd.Series(y, name="label").to_csv(tmp_path / "y.csv", index=index)
    found = xent_json(tmp_path / "p.csv", tmp_path / "y.csv", "--input", "probs", "--convention", "sklearn")
    assert found["task"] == "binary" and found["rows"] == len(y)
    assert found["loss"] == pytest.approx(sklearn.metrics.log_loss(y, p), rel=1e-12)
    metrics = found["metrics"]
    assert metrics["roc_auc"] == pytest.approx(sklearn.metrics.roc_auc_score(y, p), rel=1e-12)
    assert metrics["average_precision"] == pytest.approx(sklearn.metrics.average_precision_score(y, p), rel=1e-12)
    assert metrics["brier"] == pytest.approx(sklearn.metrics.brier_score_loss(y, p), rel=1e-12)
    rate, mean_p = calibration_curve(y, p, n_bins=15)
    np.testing.assert_allclose([b["positive_rate"] for b in metrics["reliability"]], rate, rtol=1e-12)
    np.testing.assert_allclose([b["mean_p"] for b in metrics["reliability"]], mean_p, rtol=1e-12)
    shares = np.array([b["rows"] for b in metrics["reliability"]]) / len(y)
    assert metrics["ece"] == pytest.approx(float(np.sum(shares * np.abs(rate - mean_p))), rel=1e-12)
    assert found["accuracy"] == pytest.approx(np.mean((p >= 0.5) == y))


def test_decision_function_is_torchs_loss_with_logits(tmp_path, classifier):
    _, scores, y = classifier
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", y)
    expected = F.binary_cross_entropy_with_logits(torch.tensor(scores), torch.tensor(y, dtype=torch.float64))
    assert xent_json(tmp_path / "s.npy", tmp_path / "y.npy")["loss"] == pytest.approx(float(expected), rel=1e-12)
    weighted = F.binary_cross_entropy_with_logits(torch.tensor(scores), torch.tensor(y, dtype=torch.float64),
                                                  pos_weight=torch.tensor([3.0], dtype=torch.float64))
    assert xent_json(tmp_path / "s.npy", tmp_path / "y.npy", "--pos-weight", "3")["loss"] == pytest.approx(
        float(weighted), rel=1e-12)
    np.save(tmp_path / "s2.npy", scores.reshape(-1, 1))  # Keras' (N, 1) output
    assert xent_json(tmp_path / "s2.npy", tmp_path / "y.npy")["loss"] == pytest.approx(float(expected), rel=1e-12)


def test_labels_as_booleans_words_and_names(tmp_path):
    scores = np.array([0.3, -1.0, 2.0, 0.1])
    y = np.array([1, 0, 1, 0])
    np.savetxt(tmp_path / "s.csv", scores)
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    expected = xent_json(tmp_path / "s.csv", tmp_path / "y.csv")["loss"]
    assert expected == pytest.approx(float(F.binary_cross_entropy_with_logits(torch.tensor(scores), torch.tensor(y * 1.0))))
    pd.Series(y.astype(bool)).to_csv(tmp_path / "bool.csv", index=False, header=False)  # True / False
    (tmp_path / "words.csv").write_text("true\nFALSE\nTrue\nfalse\n")
    (tmp_path / "names.csv").write_text("spam\nham\nspam\nham\n")
    np.save(tmp_path / "bool.npy", y.astype(bool))
    assert xent_json(tmp_path / "s.csv", tmp_path / "bool.csv")["loss"] == expected
    assert xent_json(tmp_path / "s.csv", tmp_path / "words.csv")["loss"] == expected
    assert xent_json(tmp_path / "s.csv", tmp_path / "bool.npy")["loss"] == expected
    named = xent_json(tmp_path / "s.csv", tmp_path / "names.csv", "--classes", "ham,spam")
    assert named["loss"] == expected and named["class_names"] == ["ham", "spam"]
    # the other order makes ham the positive class: a different number, not the same one
    assert xent_json(tmp_path / "s.csv", tmp_path / "names.csv", "--classes", "spam,ham")["loss"] != expected


@pytest.mark.parametrize(
    "labels,options,message",
    [
        ("1\n2\n1\n0\n", (), "y.csv:2: label 2 is not 0 or 1"),
        ("1\nmaybe\n1\n0\n", (), "y.csv:2: label 'maybe' is not a binary target"),
        ("spam\nham\neggs\nham\n", ("--classes", "ham,spam"), "y.csv:3: label 'eggs'"),
        ("1\n0\n1\n0\n", ("--classes", "a,b,c"), "two classes"),
        ("1\n0\n1\n0\n", ("--backend", "torch"), "numpy backend"),
    ],
)
def test_bad_binary_labels_are_one_line_naming_the_row(tmp_path, labels, options, message):
    np.savetxt(tmp_path / "s.csv", [0.3, -1.0, 2.0, 0.1])
    (tmp_path / "y.csv").write_text(labels)
    assert message in error_line(xent("compute", tmp_path / "s.csv", tmp_path / "y.csv", *options))


def test_multilabel_is_asked_for_and_matches_torch(tmp_path):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 4)) * 3, (rng.uniform(size=(50, 4)) < 0.3).astype(int)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    soft = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")  # auto: an (N, C) target is soft labels
    assert soft["task"] == "multiclass" and soft["soft_labels"]
    pos = [1.0, 3.0, 2.0, 0.5]
    found = xent_json(tmp_path / "x.npy", tmp_path / "y.npy", "--task", "multilabel", "--pos-weight", "1,3,2,0.5")
    expected = F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y * 1.0), pos_weight=torch.tensor(pos))
    assert found["task"] == "multilabel" and found["loss"] == pytest.approx(float(expected), rel=1e-12)
    assert found["accuracy"] == pytest.approx(np.mean(((x >= 0) == y).all(axis=1)))


def test_class_weights_of_a_binary_task(tmp_path):
    scores, y = np.array([0.3, -1.0, 2.0, 0.1, -0.4]), np.array([1, 0, 1, 0, 0])
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", y)
    w = np.array([1.0, 3.0])[y]
    expected = F.binary_cross_entropy_with_logits(torch.tensor(scores), torch.tensor(y * 1.0), weight=torch.tensor(w))
    assert xent_json(tmp_path / "s.npy", tmp_path / "y.npy", "--weight", "1,3")["loss"] == pytest.approx(float(expected))


def test_a_vector_of_logits_with_one_label_is_still_one_row(tmp_path):
    np.save(tmp_path / "x.npy", np.array([0.5, 2.0, -1.0]))
    np.save(tmp_path / "y.npy", np.array(1))
    found = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")
    expected = F.cross_entropy(torch.tensor([[0.5, 2.0, -1.0]]), torch.tensor([1]))
    assert found["task"] == "multiclass" and found["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_binary_shards_add_up_to_one_file(tmp_path, classifier):
    p, _, y = classifier
    (tmp_path / "parts").mkdir()
    for k, part in enumerate(np.array_split(np.arange(len(y)), 3)):
        np.save(tmp_path / "parts" / f"p_{k}.npy", p[part])
        np.save(tmp_path / "parts" / f"y_{k}.npy", y[part])
    found = xent_json(str(tmp_path / "parts" / "p_*.npy"), str(tmp_path / "parts" / "y_*.npy"),
                      "--input", "probs", "--convention", "sklearn")
    assert found["loss"] == pytest.approx(sklearn.metrics.log_loss(y, p), rel=1e-12)
    assert found["metrics"]["roc_auc"] == pytest.approx(sklearn.metrics.roc_auc_score(y, p), rel=1e-12)


def test_the_table_shows_p_positive_and_the_ranking(tmp_path, classifier):
    p, _, y = classifier
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    result = xent("compute", tmp_path / "p.npy", tmp_path / "y.npy", "--input", "probs", "--rows", "4")
    assert result.exit_code == 0, result.stderr
    assert "p(positive)" in result.stdout and f"{p[0]:.4f}" in result.stdout
    assert f"ROC AUC {sklearn.metrics.roc_auc_score(y, p):.4f}" in result.stdout
    rate, mean_p = calibration_curve(y, p, n_bins=15)
    chart = result.stdout[result.stdout.index("\ncalibration  p "):]
    assert [line.split("positive ")[1][:4] for line in chart.strip().splitlines()] == [f"{r:.2f}" for r in rate]
    assert f"mean p {mean_p[-1]:.2f}" in chart.splitlines()[-1]


def test_explain_walks_a_binary_row_through_the_stable_log_sigmoid(tmp_path):
    np.savetxt(tmp_path / "s.csv", [0.5, -1.2, 2.0])
    (tmp_path / "y.csv").write_text("1\n0\n1\n")
    result = xent("explain", tmp_path / "s.csv", tmp_path / "y.csv", "--row", "1")
    assert result.exit_code == 0, result.stderr
    expected = float(F.binary_cross_entropy_with_logits(torch.tensor(-1.2, dtype=torch.float64),
                                                        torch.tensor(0.0, dtype=torch.float64)))
    assert "log σ(-x) = min(-x, 0) - log1p(e^-|x|)" in result.stdout and "s.csv:2" in result.stdout
    assert f"xent compute = {expected:.4f}" in result.stdout
    data = json.loads(xent("explain", tmp_path / "s.csv", tmp_path / "y.csv", "--row", "1", "-f", "json").stdout)
    assert data["task"] == "binary" and data["loss"] == pytest.approx(expected, rel=1e-12)
    assert data["p"] == [pytest.approx(1 / (1 + np.exp(1.2)), rel=1e-12)]
    markdown = xent("explain", tmp_path / "s.csv", tmp_path / "y.csv", "--row", "-1", "-f", "markdown").stdout
    assert markdown.startswith("### row 2 of 3") and "\n5. cross-entropy" in markdown


def test_explain_a_multilabel_row_with_the_focal_loss(tmp_path):
    import jax
    import optax

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 3)) * 2, rng.integers(0, 2, size=(6, 3))
    pd.DataFrame(x, columns=["cat", "dog", "bird"]).to_csv(tmp_path / "x.csv", index=False)
    np.save(tmp_path / "y.npy", y)
    args = ("explain", tmp_path / "x.csv", tmp_path / "y.npy", "--task", "multilabel", "--row", "2",
            "--convention", "optax", "--focal-gamma", "2")
    data = json.loads(xent(*args, "-f", "json").stdout)
    expected = optax.losses.sigmoid_focal_loss(x[2], y[2].astype(np.float64), gamma=2.0)
    assert data["loss"] == pytest.approx(float(np.sum(expected)), rel=1e-12)
    assert data["class_names"] == ["cat", "dog", "bird"]
    table = xent(*args).stdout
    costliest = ["cat", "dog", "bird"][int(np.argmax(expected))]
    assert f"the costliest class, {costliest}, step by step:" in table and "focal factor" in table


def test_compare_of_two_binary_models(tmp_path, classifier):
    p, _, y = classifier
    q = np.clip(p * 0.9 + 0.05, 0, 1)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    np.save(tmp_path / "y.npy", y)
    result = xent("compare", tmp_path / "p.npy", tmp_path / "q.npy", tmp_path / "y.npy", "--input", "probs",
                  "--convention", "sklearn", "-f", "json")
    assert result.exit_code == 0, result.stderr
    import json

    found = json.loads(result.stdout)
    assert found["base"]["loss"] == pytest.approx(sklearn.metrics.log_loss(y, p), rel=1e-12)
    assert found["new"]["loss"] == pytest.approx(sklearn.metrics.log_loss(y, q), rel=1e-12)


def test_probabilities_read_as_logits_are_warned_about(tmp_path, classifier):
    p, _, y = classifier
    pd.Series(p).to_csv(tmp_path / "p.csv")  # pandas' default: index and a 0 header
    pd.Series(y).to_csv(tmp_path / "y.csv")
    result = xent("compute", tmp_path / "p.csv", tmp_path / "y.csv", "-f", "value")
    assert result.exit_code == 0
    assert "look like probabilities" in result.stderr and "--input probs" in result.stderr
    quiet = xent("compute", tmp_path / "p.csv", tmp_path / "y.csv", "--input", "probs", "--convention", "sklearn", "-f", "value")
    assert "look like" not in quiet.stderr
    assert float(quiet.stdout) == pytest.approx(sklearn.metrics.log_loss(y, p), rel=1e-12)


def test_binary_asked_of_several_columns_says_what_to_use():
    line = error_line(xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--task", "binary"))
    assert "one score per row, but the logits have 5 columns" in line and "--task multilabel" in line


def test_focal_loss_from_the_command_line_is_optaxs(tmp_path, classifier):
    import jax
    import optax

    jax.config.update("jax_enable_x64", True)
    _, scores, y = classifier
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", y)
    expected = float(np.mean(optax.losses.sigmoid_focal_loss(scores, y.astype(np.float64), alpha=0.25, gamma=2.0)))
    found = xent_json(tmp_path / "s.npy", tmp_path / "y.npy", "--focal-gamma", "2", "--focal-alpha", "0.25",
                      "--convention", "optax")
    assert found["loss"] == pytest.approx(expected, rel=1e-12)
    assert found["perplexity"] is None  # a focal loss is no log-likelihood
    assert found["options"]["focal_gamma"] == 2.0 and found["options"]["focal_alpha"] == 0.25
    table = xent("compute", tmp_path / "s.npy", tmp_path / "y.npy", "--focal-gamma", "2", "--convention", "optax")
    assert "focal loss (mean, γ = 2)" in table.stdout
    assert error_line(xent("compute", tmp_path / "s.npy", tmp_path / "y.npy", "--focal-gamma", "2")).endswith(
        "use --convention keras or optax")
    softmax = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--focal-gamma", "2")
    assert "for --task binary or multilabel" in error_line(softmax)


def test_multilabel_by_class_names_its_classes_from_the_header(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 3)) * 2
    y = (rng.uniform(size=(50, 3)) < 1 / (1 + np.exp(-x))).astype(int)
    pd.DataFrame(x, columns=["sports", "politics", "tech"]).to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame(y, columns=["sports", "politics", "tech"]).to_csv(tmp_path / "y.csv", index=False)
    found = xent_json(tmp_path / "x.csv", tmp_path / "y.csv", "--task", "multilabel", "--by-class")
    p = 1 / (1 + np.exp(-x))
    assert [c["name"] for c in found["metrics"]["by_class"]] == ["sports", "politics", "tech"]
    np.testing.assert_allclose([c["roc_auc"] for c in found["metrics"]["by_class"]],
                               sklearn.metrics.roc_auc_score(y, p, average=None), rtol=1e-12)
    table = xent("compute", tmp_path / "x.csv", tmp_path / "y.csv", "--task", "multilabel", "--by-class").stdout
    auc = sklearn.metrics.roc_auc_score(y, p, average=None)
    assert "1 politics" in table and f"{auc[1]:.4f}" in table
    assert f"micro {sklearn.metrics.roc_auc_score(y, p, average='micro'):.4f}" in table
    np.savetxt(tmp_path / "s.csv", x[:, 0])
    np.savetxt(tmp_path / "b.csv", y[:, 0], fmt="%d")
    assert "one score per row" in error_line(xent("compute", tmp_path / "s.csv", tmp_path / "b.csv", "--by-class"))


def test_the_readmes_worked_examples_on_the_sample_data():
    """The numbers the README shows for sample_data/spam_* and tags_*, from torch and scikit-learn."""
    scores = pd.read_csv(SAMPLES / "spam_scores.csv")["spam_logit"].to_numpy()
    y = (pd.read_csv(SAMPLES / "spam_labels.csv")["label"] == "spam").to_numpy().astype(np.float64)
    found = xent_json(SAMPLES / "spam_scores.csv", SAMPLES / "spam_labels.csv", "--classes", "ham,spam")
    expected = F.binary_cross_entropy_with_logits(torch.tensor(scores), torch.tensor(y))
    assert found["loss"] == pytest.approx(float(expected), rel=1e-12) and f"{float(expected):.4f}" == "0.3598"
    p = 1 / (1 + np.exp(-scores))
    assert f"{sklearn.metrics.roc_auc_score(y, p):.4f}" == "0.9143" == f"{found['metrics']['roc_auc']:.4f}"
    assert f"{sklearn.metrics.average_precision_score(y, p):.4f}" == "0.8767"
    assert f"{sklearn.metrics.brier_score_loss(y, p):.4f}" == "0.1150"
    x = pd.read_csv(SAMPLES / "tags_logits.csv").to_numpy()
    t = pd.read_csv(SAMPLES / "tags_targets.csv").to_numpy().astype(np.float64)
    found = xent_json(SAMPLES / "tags_logits.csv", SAMPLES / "tags_targets.csv", "--task", "multilabel", "--by-class")
    expected = F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t))
    assert found["loss"] == pytest.approx(float(expected), rel=1e-12) and f"{float(expected):.4f}" == "0.3739"
    q = 1 / (1 + np.exp(-x))
    assert f"{sklearn.metrics.roc_auc_score(t, q, average='macro'):.4f}" == "0.8951"
    assert f"{sklearn.metrics.roc_auc_score(t, q, average='micro'):.4f}" == "0.8889"
    assert [f"{v:.4f}" for v in sklearn.metrics.average_precision_score(t, q, average=None)] == [
        "0.8095", "0.9167", "0.9167", "0.8333"]


def test_many_files_are_one_batch_for_sklearns_single_class_refusal(tmp_path):
    p = np.array([0.2, 0.7, 0.9, 0.4])
    for k, labels in enumerate(([0, 0], [1, 1])):
        np.save(tmp_path / f"p{k}.npy", p[2 * k : 2 * k + 2])
        np.save(tmp_path / f"y{k}.npy", np.array(labels))
    args = (tmp_path / "p*.npy", tmp_path / "y*.npy", "--input", "probs", "--convention", "sklearn")
    found = xent_json(*args)  # each file holds one class; the batch holds both
    assert found["loss"] == pytest.approx(sklearn.metrics.log_loss([0, 0, 1, 1], p), rel=1e-12)
    np.save(tmp_path / "y0.npy", np.array([1, 1]))
    assert "single class" in error_line(xent("compute", *args))
    np.save(tmp_path / "y0.npy", np.array([0.5, 0.0]))  # soft targets in one file only: still one batch (torch)
    torch_args = (tmp_path / "p*.npy", tmp_path / "y*.npy", "--input", "probs")
    expected = F.binary_cross_entropy(torch.tensor(p), torch.tensor([0.5, 0.0, 1.0, 1.0], dtype=torch.float64))
    assert xent_json(*torch_args)["loss"] == pytest.approx(float(expected), rel=1e-12)


def test_explain_a_row_of_a_one_dimensional_array_and_of_a_bfloat16_archive(tmp_path):
    from safetensors.torch import save_file

    scores, y = np.array([0.3, -1.0, 2.0, 0.5]), np.array([1, 0, 1, 0])
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", y)
    data = json.loads(xent("explain", tmp_path / "s.npy", tmp_path / "y.npy", "--row", "2", "-f", "json").stdout)
    assert data["where"].endswith("s.npy[2]")
    assert data["loss"] == pytest.approx(float(F.binary_cross_entropy_with_logits(torch.tensor(2.0), torch.tensor(1.0))))
    logits = torch.tensor([0.5, -2.0, 1.25, 3.0]).bfloat16()
    save_file({"logits": logits, "labels": torch.tensor([1, 0, 0, 1])}, tmp_path / "b.safetensors")
    found = xent_json(tmp_path / "b.safetensors")
    expected = F.binary_cross_entropy_with_logits(logits.float(), torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert found["task"] == "binary" and found["loss"] == pytest.approx(float(expected), rel=1e-6)
    data = json.loads(xent("explain", tmp_path / "b.safetensors", "--row", "2", "-f", "json").stdout)
    assert data["where"].endswith("[logits][2]") and data["scores"] == [1.25]


def test_explain_refuses_a_vocabulary_for_sigmoid_scores(tmp_path):
    np.savetxt(tmp_path / "s.csv", [0.5, -1.2, 2.0])
    (tmp_path / "y.csv").write_text("1\n0\n1\n")
    (tmp_path / "v.txt").write_text("a\nb\n")
    line = error_line(xent("explain", tmp_path / "s.csv", tmp_path / "y.csv", "--vocab", tmp_path / "v.txt"))
    assert "--vocab names the tokens of a softmax" in line

"""The seed notebook's numbers: the first golden test."""

import numpy as np

import xentcli
from conftest import SAMPLES, SEED_LOG_SOFTMAX, SEED_LOGITS, SEED_LOSS, SEED_TARGETS, xent, xent_json

# The notebook printed its logits to 4 decimals; recomputed from those rounded
# logits, its 4-decimal numbers agree within one unit of the last place.
LAST_PLACE = 1e-4


def test_library_gives_the_seed_loss_and_rows():
    result = xentcli.cross_entropy(SEED_LOGITS, SEED_TARGETS)
    assert abs(result.loss - SEED_LOSS) < LAST_PLACE / 2 + 1e-5
    log_p = SEED_LOG_SOFTMAX[np.arange(3), SEED_TARGETS]
    np.testing.assert_allclose(result.losses, -log_p, atol=LAST_PLACE)
    np.testing.assert_allclose(result.log_p_target, log_p, atol=LAST_PLACE)


def test_log_softmax_matrix_matches_the_notebook():
    p = xentcli.softmax(SEED_LOGITS)
    np.testing.assert_allclose(np.log(p), SEED_LOG_SOFTMAX, atol=LAST_PLACE)


def test_both_routes_of_the_notebook_agree():
    """-mean(log(softmax(x))[i, t_i]) equals nll_loss(log_softmax(x), t)."""
    by_softmax = -np.mean(np.log(xentcli.softmax(SEED_LOGITS))[np.arange(3), SEED_TARGETS])
    by_log_probs = xentcli.cross_entropy(
        np.log(xentcli.softmax(SEED_LOGITS)), SEED_TARGETS, input="log-probs"
    ).loss
    assert abs(by_softmax - by_log_probs) < 1e-12
    assert abs(by_softmax - xentcli.cross_entropy(SEED_LOGITS, SEED_TARGETS).loss) < 1e-12


def test_sample_data_shows_the_seed_loss():
    data = xent_json(SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--per-row")
    assert round(data["loss"], 4) == SEED_LOSS
    assert [round(r["loss"], 4) for r in data["per_row"]] == [3.4055, 1.8442, 0.9350]
    assert [r["pred"] for r in data["per_row"]] == [2, 1, 2]


def test_no_input_uses_the_bundled_example_with_a_notice():
    result = xent("compute", "--format", "value")
    assert result.exit_code == 0
    assert round(float(result.stdout), 4) == SEED_LOSS
    assert "bundled 3×5 example" in result.stderr


def test_table_shows_the_seed_rows_and_summary():
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv")
    assert result.exit_code == 0, result.stderr
    assert "2.0616" in result.stdout
    for loss in ("3.4055", "1.8442", "0.9350"):
        assert loss in result.stdout
    assert "33.3% (1/3)" in result.stdout

"""Next-token targets and the loss per sequence, against torch written here
as Hugging Face's causal-LM loss writes it (shift, reshape, cross_entropy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from xentcli.engine.rows import ClassRows
from xentcli.engine.sequences import masked_targets, next_token_targets, per_sequence
from xentcli.errors import XentError


def lm_batch(seed: int, batch: int = 3, length: int = 9, vocab: int = 13):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(batch, length, vocab)) * rng.choice([0.5, 3.0])).astype(np.float64)
    ids = rng.integers(0, vocab, size=(batch, length))
    mask = np.ones((batch, length), dtype=np.int64)
    for b in range(batch):  # right padding, and a prompt masked at the front of one sequence
        mask[b, length - int(rng.integers(0, 4)):] = 0
    mask[0, :2] = 0
    return logits, ids, mask


def hugging_face_loss(logits, ids, mask=None, reduction="mean", weight=None):
    """transformers' ForCausalLMLoss: labels = ids with padding -100, shifted, flattened."""
    labels = torch.tensor(ids).clone()
    if mask is not None:
        labels[torch.tensor(mask) == 0] = -100
    shift_logits = torch.tensor(logits)[..., :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[..., 1:].reshape(-1)
    w = None if weight is None else torch.tensor(weight)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction=reduction, weight=w)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("masked", [False, True])
def test_next_token_loss_is_hugging_faces(seed, masked):
    logits, ids, mask = lm_batch(seed)
    target = next_token_targets(ids, mask=mask if masked else None)
    ours = xentcli.cross_entropy(logits, target, class_axis=-1)
    theirs = hugging_face_loss(logits, ids, mask if masked else None)
    assert ours.loss == pytest.approx(float(theirs), rel=1e-12)
    summed = xentcli.cross_entropy(logits, target, class_axis=-1, reduction="sum")
    assert summed.loss == pytest.approx(float(hugging_face_loss(logits, ids, mask if masked else None, "sum")), rel=1e-12)
    weight = np.random.default_rng(seed).uniform(0.5, 2, size=logits.shape[-1])
    weighted = xentcli.cross_entropy(logits, target, class_axis=-1, weight=weight)
    assert weighted.loss == pytest.approx(float(hugging_face_loss(logits, ids, mask if masked else None, weight=weight)),
                                          rel=1e-12)


def test_the_last_position_has_no_next_token():
    ids = np.array([[5, 6, 7], [1, 2, 3]])
    assert next_token_targets(ids).tolist() == [[6, 7, -100], [2, 3, -100]]
    assert next_token_targets(ids, ignore_index=-1, mask=np.array([[1, 1, 0], [0, 1, 1]])).tolist() == [
        [6, -1, -1], [2, 3, -1]]
    assert next_token_targets(np.array([4, 5])).tolist() == [5, -100]  # one sequence, 1-D
    assert masked_targets(ids, mask=np.array([[1, 0, 1], [1, 1, 1]])).tolist() == [[5, -100, 7], [1, 2, 3]]


@pytest.mark.parametrize(
    "labels,mask,message",
    [
        (np.array([[1.0, 2.0]]), None, "token ids"),
        (np.array([[1, 2]]), np.array([1, 1]), "shape"),
        (np.array([[1, 2]]), np.array([[1, 2]]), r"1 \(count\) or 0"),
        (np.array([[1, 2]]), np.array([[0.5, 1.0]]), r"1 \(count\) or 0"),
    ],
)
def test_bad_labels_and_masks_are_named(labels, mask, message):
    with pytest.raises(XentError, match=message):
        next_token_targets(labels, mask=mask)


@pytest.mark.parametrize("seed", range(4))
def test_per_sequence_is_a_loop_over_the_sequences(seed):
    logits, ids, mask = lm_batch(seed, batch=4)
    result = xentcli.cross_entropy(logits, next_token_targets(ids, mask=mask), class_axis=-1)
    found = per_sequence(result)
    for b in range(len(ids)):
        expected = hugging_face_loss(logits[b : b + 1], ids[b : b + 1], mask[b : b + 1])
        counted = int((mask[b, 1:] == 1).sum())
        assert found.tokens[b] == counted
        assert found.losses[b] == pytest.approx(float(expected), rel=1e-12)
        assert found.perplexities[b] == pytest.approx(float(torch.exp(expected)), rel=1e-12)
    assert found.mean == pytest.approx(float(np.mean(found.losses)), rel=1e-15)
    # the token-weighted mean is the batch's loss, and the sequences' sums add up to it
    assert found.sums.sum() / found.denominators.sum() == pytest.approx(result.loss, rel=1e-12)


def test_a_sequence_without_tokens_is_nan_and_left_out_of_the_mean():
    logits, ids, mask = lm_batch(1)
    mask[1] = 0
    found = per_sequence(xentcli.cross_entropy(logits, next_token_targets(ids, mask=mask), class_axis=-1))
    assert found.tokens[1] == 0 and np.isnan(found.losses[1])
    assert found.mean == pytest.approx(float(np.mean(found.losses[[0, 2]])), rel=1e-15)


def test_a_contiguous_batch_of_sequences_streams_a_few_positions_at_a_time():
    logits = np.zeros((2, 1000, 50), dtype=np.float32)
    rows = ClassRows(logits, -1)
    assert rows.shape == (2, 1000) and rows.array.shape == (2000, 50)
    assert max(b - a for a, b in rows.spans(64)) == 64  # not a whole sequence per block
    strided = ClassRows(logits[:, ::2], -1)  # a view that is not contiguous keeps its layout
    assert strided.shape == (2, 500) and strided.array.ndim == 3


def test_unsigned_token_ids_take_the_ignore_index():
    ids = np.array([[5, 6, 7], [1, 2, 3]], dtype=np.uint16)  # as nanoGPT-style token files store them
    assert next_token_targets(ids).tolist() == [[6, 7, -100], [2, 3, -100]]
    assert next_token_targets(ids, mask=np.array([[1, 0, 1], [1, 1, 1]])).tolist() == [[-100, 7, -100], [2, 3, -100]]

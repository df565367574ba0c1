"""The randomized grid of cases that every backend is checked on."""

from __future__ import annotations

import itertools

import numpy as np

TOLERANCE = {np.float64: 1e-9, np.float32: 1e-5}
# Per-position losses near zero are compared with this floor as well.
FLOOR = {np.float64: 1e-12, np.float32: 1e-6}

# torch refuses ignore_index with soft labels (test_parity checks that), so
# that pairing is left out.
GRID = [
    case
    for case in itertools.product(
        [False, True],  # class weights
        [None, 1],  # ignore_index: torch's default (-100), or a valid class
        [0.0, 0.3],  # label smoothing
        ["mean", "sum", "none"],
        [False, True],  # soft labels
        [False, True],  # extra dimensions (N, C, d1, d2)
        [np.float64, np.float32],
    )
    if not (case[4] and case[1] is not None)
]
GRID_NAMES = "weighted,ignore_index,smoothing,reduction,soft,kdim,dtype"


def make_case(case: tuple):
    """Logits, targets and weights for one grid case, seeded by its position."""
    weighted, ignore_index, _, _, soft, kdim, dtype = case
    rng = np.random.default_rng(GRID.index(case))
    n, c = int(rng.integers(1, 40)), int(rng.integers(2, 12))
    shape = (n, c, int(rng.integers(1, 4)), int(rng.integers(1, 4))) if kdim else (n, c)
    logits = (rng.normal(size=shape) * rng.choice([0.5, 3.0, 30.0])).astype(dtype)
    positions = shape[:1] + shape[2:]
    if soft:
        raw = rng.random(size=shape)
        target = (raw / raw.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        target = rng.integers(0, c, size=positions)
        fraction = 0.3 if ignore_index is not None else 0.2
        target[rng.random(size=positions) < fraction] = -100 if ignore_index is None else ignore_index
    weight = rng.uniform(0.1, 3.0, size=c) if weighted else None
    return logits, target, weight

"""Readers: files -> a Batch, one module per format behind one registry.

``registry`` maps suffixes and magic bytes to the modules ``npy``, ``npz``, ``safetensors``,
``pt`` and ``textfile`` (which parses with ``text``); ``batch`` matches the
logits with their labels (by class name and row id), ``labels`` turns label
cells into class indices by one rule, ``paths`` expands and pairs many
files, ``vectors`` reads class and sample weights. Nothing read here is ever
executed: NPY/NPZ load with ``allow_pickle=False``, torch files with
``weights_only=True``, and text is parsed as numbers or plain strings.
"""

from .batch import EXAMPLE_NAME, Batch, array_locator, class_name, example_batch, load_batch, position_shape
from .paths import expand_paths, is_pattern, natural_key, pair_paths
from .registry import DEFAULT_MAX_BYTES, STDIN, ReadOptions, read_source
from .vectors import ClassWeights, read_class_weights, read_mask, read_sample_weights, read_vector, read_vocabulary

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXAMPLE_NAME",
    "STDIN",
    "Batch",
    "ClassWeights",
    "ReadOptions",
    "array_locator",
    "class_name",
    "example_batch",
    "expand_paths",
    "is_pattern",
    "load_batch",
    "natural_key",
    "pair_paths",
    "position_shape",
    "read_class_weights",
    "read_mask",
    "read_sample_weights",
    "read_source",
    "read_vector",
    "read_vocabulary",
]

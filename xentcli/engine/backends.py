"""The array operations the engine needs, on numpy or on torch (CPU or CUDA).

The loss is written once, in the engine, against this small interface; a
backend only moves blocks of rows to where it computes and supplies the
handful of operations whose spelling differs between numpy and torch.
torch is imported only when a torch backend is asked for.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np

from ..bfloat16 import BFLOAT16, widened
from ..errors import XentError

INSTALL_TORCH = "pip install 'xentcli[torch]'"

# Bytes of logits per block. numpy: 4 MiB, and at most 64K rows so that the
# per-row temporaries of short rows stay in cache (measured with two threads
# by benchmarks/bench.py: smaller blocks pay more Python per element).
# torch: large enough to amortise kernel launches; on CUDA peak GPU memory
# measured 2.1x the block (benchmarks/results/gpu_check_h200.txt).
NUMPY_BLOCK_BYTES = 1 << 22
NUMPY_BLOCK_ROWS = 1 << 16
TORCH_CPU_BLOCK_BYTES = 1 << 22
CUDA_BLOCK_BYTES = 1 << 26
# Rows of at most this many classes take numpy's short-row paths below
# (uint8 class ranks need at most 255).
SHORT_ROW = 32

# `--device auto` picks CUDA only when it pays after torch's start-up.
# Measured on an H200 host with 16 CPUs (benchmarks/results/gpu_check_h200.txt):
# torch's import plus CUDA's start-up take 3.4-5.5 s in a fresh process; after
# that CUDA runs a memory-mapped NPY at ~15 GB/s end to end (the host's copy
# into pinned memory bounds it), and the fused C kernel at ~2.2 GB/s per
# thread (18 GB/s on 8 threads: faster than CUDA there). The GPU wins from
# start-up / (1/numpy_rate - 1/cuda_rate): ~34 GB with 2 threads, never with 8.
CUDA_STARTUP_SECONDS = 5.5
CUDA_BYTES_PER_SECOND = 15.4e9
NUMPY_BYTES_PER_SECOND_PER_THREAD = 2.2e9


def cuda_pays_off(input_bytes: int) -> bool:
    """Whether the GPU finishes sooner than numpy on this machine's cores, start-up included."""
    numpy_rate = NUMPY_BYTES_PER_SECOND_PER_THREAD * NumpyOps.threads
    saved_per_byte = 1 / numpy_rate - 1 / CUDA_BYTES_PER_SECOND
    return saved_per_byte > 0 and input_bytes * saved_per_byte > CUDA_STARTUP_SECONDS


def sum_split(x: np.ndarray) -> tuple[float, float]:
    """x's sum as (big, small), big exact: each value is cut at a grid so
    coarse (4 × 2^ceil(log2(n max|x|)), one float64's span below it) that
    the big parts add up exactly in any order, the small parts (below the
    grid's last bit) rounded once. fsum'd over blocks, the batch's total is
    then the same wherever the blocks begin (the small parts' rounding
    moves it in about one case in 2^29), as the C kernel's compensated sums
    make it: text read whole or a chunk at a time gave totals an ulp apart."""
    x = np.asarray(x, dtype=np.float64)
    top = max(float(x.max()), -float(x.min())) * x.size if x.size else 0.0
    if not top < 2.0**1000:  # an inf or NaN, or near overflow (the grid and x + grid must stay finite)
        return float(x.sum()), 0.0
    grid = math.ldexp(1.0, math.frexp(top)[1] + 2)
    part = x + grid  # one temporary, reused: the big parts, then the small
    part -= grid
    big = float(part.sum())
    np.subtract(x, part, out=part)
    return big, float(part.sum())


class NumpyOps:
    """numpy on the CPU: blocks are used in place (memory-mapped files included)."""

    name = "numpy"
    device = "cpu"
    device_name = None
    # numpy releases the GIL inside its ufuncs: blocks run on every core.
    threads = min(8, os.cpu_count() or 1)

    def block_rows(self, classes: int, itemsize: int) -> int:
        return max(1, min(NUMPY_BLOCK_ROWS, NUMPY_BLOCK_BYTES // max(classes * itemsize, 1)))

    def load(self, block: np.ndarray, dtype: np.dtype, channel: str = "logits") -> np.ndarray:
        return np.asarray(widened(block), dtype=dtype)

    def vector(self, values: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    def empty(self, shape: int | tuple[int, ...], dtype: str) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    exp = staticmethod(np.exp)
    tanh = staticmethod(np.tanh)
    log = staticmethod(np.log)
    abs = staticmethod(np.abs)
    clip = staticmethod(np.clip)
    where = staticmethod(np.where)
    isfinite = staticmethod(np.isfinite)

    def __init__(self) -> None:
        self._local = threading.local()

    def exp_shifted(self, x: np.ndarray, top: np.ndarray) -> np.ndarray:
        """e^(x - top) per row, into this thread's scratch buffer (no fresh pages per block)."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None or scratch.size < x.size or scratch.dtype != x.dtype:
            scratch = self._local.scratch = np.empty(x.size, dtype=x.dtype)
        out = scratch[: x.size].reshape(x.shape)
        np.subtract(x, top[:, None], out=out)
        return np.exp(out, out=out)

    def sum64(self, x: np.ndarray) -> np.ndarray:
        return x.sum(dtype=np.float64)

    def sum_split(self, x: np.ndarray) -> tuple[float, float]:
        return sum_split(x)

    def row_min(self, x: np.ndarray) -> np.ndarray:
        return x.min(axis=1)

    def row_max(self, x: np.ndarray) -> np.ndarray:
        return x.max(axis=1)

    def all_true(self, count: int) -> np.ndarray:
        return np.ones(count, dtype=bool)

    def class_index(self, classes: int) -> np.ndarray:
        return np.arange(classes)

    def cast(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return np.asarray(x, dtype=dtype)

    def bin_index(self, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """The bin of each value: edges[i] <= value < edges[i + 1] (the last bin is open)."""
        return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 1)

    def bincount(self, index: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=length)

    def row_argmax(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of the first maximum, the maximum) of every row; NaN rows give NaN.

        numpy reduces short rows one row at a time (~2 ns an element for 10
        classes); on the transposed block the same work runs across rows, in
        SIMD. The first maximum is found as C - max_c((x_c == m) * (C - c)).
        """
        classes = x.shape[1]
        if classes > SHORT_ROW:
            pred = x.argmax(axis=1)
            return pred, self.pick(x, pred)
        columns = np.ascontiguousarray(x.T)
        top = columns.max(axis=0)
        rank = np.arange(classes, 0, -1, dtype=np.uint8)[:, None]
        pred = classes - ((columns == top).view(np.uint8) * rank).max(axis=0).astype(np.int64)
        return pred, top

    def row_sum(self, x: np.ndarray) -> np.ndarray:
        # numpy's pairwise sum runs one short row at a time; einsum sums them
        # ~5x faster. Long rows keep the more accurate pairwise sum.
        if x.shape[1] <= SHORT_ROW:
            return np.einsum("ij->i", x)
        return x.sum(axis=1)

    def pick(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        """x[i, index[i]] for every row i."""
        if x.flags.c_contiguous:
            return x.reshape(-1)[np.arange(len(x)) * x.shape[1] + index]
        return x[np.arange(len(x)), index]

    def rowdot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", a, b)

    def to_host(self, values: np.ndarray) -> np.ndarray:
        return values


class TorchOps:
    """torch on the CPU or an NVIDIA GPU.

    On CUDA, blocks go through two pinned host buffers: while the GPU works
    on one block the CPU fills the other, and the copies are asynchronous.
    bfloat16 travels as its 16 bits (half float32's bytes) and is widened on
    the GPU. (Reading a memory-mapped file's blocks with pread in place of
    copying them from the map was measured no faster on an H200 host:
    benchmarks/results/gpu_check_h200.txt.)
    """

    name = "torch"
    threads = 1  # torch parallelises each operation itself

    def __init__(self, device: str) -> None:
        try:
            import torch
        except ImportError:
            raise XentError(f"the torch backend needs PyTorch: {INSTALL_TORCH}") from None
        self.torch = torch
        if device == "cuda" and not torch.cuda.is_available():
            raise XentError("--device cuda: torch sees no CUDA GPU (torch.cuda.is_available() is False)")
        self.device = device
        self.device_name = torch.cuda.get_device_name() if device == "cuda" else None
        self._slots: dict[str, list[dict[str, Any]]] = {}
        self._turns: dict[str, int] = {}
        self._threads = min(8, os.cpu_count() or 1) if device == "cuda" else 1
        if self._threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._copier = ThreadPoolExecutor(self._threads)
        else:
            self._copier = None

    def block_rows(self, classes: int, itemsize: int) -> int:
        size = CUDA_BLOCK_BYTES if self.device == "cuda" else TORCH_CPU_BLOCK_BYTES
        return max(1, size // max(classes * itemsize, 1))

    def _dtype(self, dtype: np.dtype | str) -> Any:
        return getattr(self.torch, np.dtype(dtype).name)

    def _slot(self, channel: str, shape: tuple[int, ...], dtype: np.dtype) -> dict[str, Any]:
        """One of a channel's two host staging buffers (pinned on CUDA), in turn."""
        slots = self._slots.setdefault(channel, [{"buffer": None, "event": None} for _ in range(2)])
        turn = self._turns.get(channel, 0)
        self._turns[channel] = turn + 1
        slot = slots[turn % 2]
        buffer = slot["buffer"]
        if buffer is None or buffer.shape[0] < shape[0] or buffer.shape[1:] != shape[1:]:
            slot["buffer"] = self.torch.empty(shape, dtype=self._dtype(dtype), pin_memory=self.device == "cuda")
        return slot

    def load(self, block: np.ndarray, dtype: np.dtype, channel: str = "logits") -> Any:
        """A block on the device; `channel` keeps logits and soft labels apart.
        bfloat16 travels as its 16 bits and is widened by torch, on the device."""
        bits = block.dtype == BFLOAT16
        host = np.ascontiguousarray(block).view("<i2") if bits else block
        slot = self._slot(channel, host.shape, host.dtype if bits else dtype)
        if slot["event"] is not None:
            slot["event"].synchronize()  # its previous copy to the GPU is done
        staging = slot["buffer"][: len(host)]
        self._copy(staging.numpy(), host)
        on_device = staging
        if self.device != "cpu":
            on_device = staging.to(self.device, non_blocking=True)
            slot["event"] = self.torch.cuda.Event()
            slot["event"].record()
        return on_device.view(self.torch.bfloat16).to(self._dtype(dtype)) if bits else on_device

    def _copy(self, target: np.ndarray, source: np.ndarray) -> None:
        """Copy a block into the staging buffer, in parallel row ranges on CUDA."""
        parts = min(self._threads, max(1, len(source) // 64))
        if self._copier is None or parts == 1:
            np.copyto(target, source, casting="unsafe")
            return
        bounds = np.linspace(0, len(source), parts + 1).astype(int)
        jobs = [
            self._copier.submit(np.copyto, target[a:b], source[a:b], casting="unsafe")
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
        for job in jobs:
            job.result()

    def vector(self, values: np.ndarray, dtype: np.dtype | str) -> Any:
        return self.torch.as_tensor(np.array(values, dtype=dtype), device=self.device)

    def empty(self, shape: int | tuple[int, ...], dtype: str) -> Any:
        return self.torch.empty(shape, dtype=self._dtype(dtype), device=self.device)

    def exp(self, x: Any) -> Any:
        return x.exp()

    def tanh(self, x: Any) -> Any:
        return x.tanh()

    def exp_shifted(self, x: Any, top: Any) -> Any:
        return (x - top[:, None]).exp_()

    def log(self, x: Any) -> Any:
        return x.log()

    def abs(self, x: Any) -> Any:
        return x.abs()

    def isfinite(self, x: Any) -> Any:
        return self.torch.isfinite(x)

    def sum64(self, x: Any) -> Any:
        return x.sum(dtype=self.torch.float64)

    def sum_split(self, x: Any) -> tuple[Any, float]:
        """The sum, and 0: numpy's split (NumpyOps.sum_split) would wait on the device every block."""
        return self.sum64(x), 0.0

    def clip(self, x: Any, low: float, high: float) -> Any:
        return x.clamp(low, high)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self.torch.where(condition, a, b)

    def row_argmax(self, x: Any) -> tuple[Any, Any]:
        top, pred = x.max(dim=1)
        return pred, top

    def row_sum(self, x: Any) -> Any:
        return x.sum(dim=1)

    def row_min(self, x: Any) -> Any:
        return x.amin(dim=1)

    def row_max(self, x: Any) -> Any:
        return x.amax(dim=1)

    def all_true(self, count: int) -> Any:
        return self.torch.ones(count, dtype=self.torch.bool, device=self.device)

    def class_index(self, classes: int) -> Any:
        return self.torch.arange(classes, device=self.device)

    def cast(self, x: Any, dtype: str) -> Any:
        return x.to(self._dtype(dtype))

    def bin_index(self, values: Any, edges: np.ndarray) -> Any:
        boundaries = self.torch.as_tensor(edges, dtype=values.dtype, device=self.device)
        return (self.torch.searchsorted(boundaries, values.contiguous(), right=True) - 1).clamp(0, len(edges) - 1)

    def bincount(self, index: Any, weights: Any, length: int) -> Any:
        return self.torch.bincount(index, weights=weights, minlength=length)

    def pick(self, x: Any, index: Any) -> Any:
        return x.gather(1, index[:, None])[:, 0]

    def rowdot(self, a: Any, b: Any) -> Any:
        return (a * b).sum(dim=1)

    def to_host(self, values: Any) -> np.ndarray:
        return values.cpu().numpy()


def select(backend: str, device: str, input_bytes: int = 0) -> NumpyOps | TorchOps:
    """The ops for `--backend` / `--device` (auto: numpy on CPU, torch on CUDA)."""
    if device == "auto":
        device = "cuda" if cuda_pays_off(input_bytes) and _cuda_available() else "cpu"
    if backend == "auto":
        backend = "torch" if device == "cuda" else "numpy"
    if backend == "numpy":
        if device != "cpu":
            raise XentError("the numpy backend runs on the CPU only: use --backend torch for CUDA")
        return NumpyOps()
    if backend == "torch":
        if device not in ("cpu", "cuda"):
            raise XentError(f"unknown device {device!r} (cpu, cuda or auto)")
        return TorchOps(device)
    raise XentError(f"unknown backend {backend!r} (numpy, torch or auto)")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()

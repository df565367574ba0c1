"""The CUDA check: parity on a GPU, and the CUDA path timed end to end on a >= 2 GB NPY.

Run on a machine with an NVIDIA GPU, from the repository root:

    python benchmarks/gpu_check.py [--gib 2] [--dir /tmp]

It prints: the CUDA parity grid's result (pytest -m cuda) and the fused C
kernel's tests, the end-to-end throughput of `xent compute` on the GPU
(in-process and as a command, median of runs), peak GPU memory for several
block sizes, torch's own F.cross_entropy on GPU-resident data for
reference, a (4096 x 128000) bfloat16 safetensors file the same way, and
numpy (the C kernel) vs CUDA times by input size (the basis of `--device
auto`'s threshold).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import xentcli  # noqa: E402
from xentcli.engine import backends  # noqa: E402


def timed(function, repeats: int = 3) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        value = function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def make_inputs(folder: Path, gib: float, classes: int) -> tuple[Path, Path, int]:
    rows = int(gib * 2**30) // (classes * 4)
    logits_path, labels_path = folder / "big_logits.npy", folder / "big_labels.npy"
    out = np.lib.format.open_memmap(logits_path, mode="w+", dtype=np.float32, shape=(rows, classes))
    generator = torch.Generator(device="cuda").manual_seed(0)
    step = 1 << 16
    for start in range(0, rows, step):
        block = torch.randn(min(step, rows - start), classes, device="cuda", generator=generator) * 3
        out[start : start + len(block)] = block.cpu().numpy()
    out.flush()
    del out
    np.save(labels_path, np.random.default_rng(0).integers(0, classes, size=rows))
    return logits_path, labels_path, rows


def language_model(folder: Path) -> None:
    """A (4096 x 128000) bfloat16 safetensors file: xent on CUDA end to end vs
    F.cross_entropy on the same logits already on the GPU (upcast to float32, as xent computes)."""
    from safetensors.torch import save_file

    rows, vocab = 4096, 128_000
    path = folder / "lm_logits.safetensors"
    generator = torch.Generator(device="cuda").manual_seed(1)
    logits = (torch.randn(rows, vocab, device="cuda", generator=generator) * 3).bfloat16()
    labels = torch.randint(0, vocab, (rows,), device="cuda", generator=generator)
    save_file({"logits": logits.cpu(), "labels": labels.cpu()}, str(path))
    size = rows * vocab * 2
    batch = lambda: xentcli.load_batch(str(path), None)  # noqa: E731

    def run_xent():
        b = batch()
        return xentcli.cross_entropy(b.logits, b.target, backend="torch", device="cuda", keep_rows=False)

    run_xent()
    seconds, result = timed(run_xent)
    resident, expected = timed(lambda: F.cross_entropy(logits.float(), labels), repeats=5)
    relative = abs(result.loss - float(expected)) / abs(float(expected))
    print(f"== LM (4096 x 128000) bf16 safetensors, {size / 1e9:.2f} GB: xent end to end {seconds * 1e3:.1f} ms "
          f"({size / seconds / 1e9:.1f} GB/s); F.cross_entropy(logits.float()) on the GPU-resident logits "
          f"{resident * 1e3:.1f} ms; relative difference {relative:.1e} ({'ok' if relative <= 1e-5 else 'FAIL'})",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--classes", type=int, default=1024)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, numpy {np.__version__}, GPU: {torch.cuda.get_device_name()}, "
          f"{os.cpu_count()} CPUs", flush=True)

    if not args.skip_tests:
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda",
             "tests/engine/test_backends.py", "tests/engine/test_metrics.py"],
            capture_output=True, text=True,
        )
        print("== CUDA parity grid (pytest -m cuda):", tests.stdout.strip().splitlines()[-1], flush=True)
        if tests.returncode:
            print(tests.stdout[-4000:], tests.stderr[-2000:])
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/engine/test_kernel.py",
             "tests/engine/test_parity.py", "tests/cli/test_row_writer.py"],
            capture_output=True, text=True,
        )
        print("== fused C kernel, parity grid and C row writer on this CPU:", tests.stdout.strip().splitlines()[-1], flush=True)
        if tests.returncode:
            print(tests.stdout[-4000:], tests.stderr[-2000:])

    folder = Path(args.dir)
    start = time.perf_counter()
    logits_path, labels_path, rows = make_inputs(folder, args.gib, args.classes)
    size = logits_path.stat().st_size
    print(f"== input: {rows} x {args.classes} float32, {size / 1e9:.2f} GB "
          f"(made in {time.perf_counter() - start:.1f} s)", flush=True)

    def run_xent(device: str, backend: str = "torch", limit: int | None = None):
        batch = xentcli.load_batch(str(logits_path), str(labels_path))
        logits, target = batch.logits, batch.target
        if limit is not None:
            logits, target = logits[:limit], target[:limit]
        return xentcli.cross_entropy(logits, target, backend=backend, device=device, keep_rows=False)

    xentcli.cross_entropy(np.zeros((2, 3), np.float32), np.zeros(2, int), backend="torch", device="cuda")

    print("== end to end, in-process (memory-mapped NPY -> pinned blocks -> GPU), by block size:")
    result = None
    for block_mib in (16, 64, 256):
        backends.CUDA_BLOCK_BYTES = block_mib << 20
        torch.cuda.reset_peak_memory_stats()
        seconds, result = timed(lambda: run_xent("cuda"))
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"   block {block_mib:4d} MiB: {seconds:.3f} s, {size / seconds / 1e9:6.2f} GB/s, "
              f"peak GPU memory {peak:8.1f} MiB ({peak / block_mib:.1f}x the block)", flush=True)
    backends.CUDA_BLOCK_BYTES = 64 << 20

    logits = np.load(logits_path)
    labels = np.load(labels_path)
    x_gpu, y_gpu = torch.from_numpy(logits).cuda(), torch.from_numpy(labels).cuda()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    kernel_seconds, expected = timed(lambda: F.cross_entropy(x_gpu, y_gpu), repeats=5)
    extra = (torch.cuda.max_memory_allocated() - base) / 2**20
    print(f"== torch F.cross_entropy alone on GPU-resident logits: {kernel_seconds * 1e3:.1f} ms, "
          f"{size / kernel_seconds / 1e9:.0f} GB/s, allocates {extra:.0f} MiB beyond its inputs")
    relative = abs(result.loss - float(expected)) / abs(float(expected))
    print(f"== parity on the big file: xent {result.loss!r} vs torch {float(expected)!r}: "
          f"relative difference {relative:.2e} ({'ok' if relative <= 1e-5 else 'FAIL'})")
    x_gpu = y_gpu = None  # the GPU memory back before the next runs

    def user_script():
        x = torch.from_numpy(np.load(logits_path)).cuda()
        y = torch.from_numpy(np.load(labels_path)).cuda()
        return float(F.cross_entropy(x, y))

    script_seconds, _ = timed(user_script)
    xent_seconds, _ = timed(lambda: run_xent("cuda"))
    print(f"== np.load + .cuda() + F.cross_entropy: {script_seconds:.3f} s; xent in-process: {xent_seconds:.3f} s "
          f"({script_seconds / xent_seconds:.2f}x)")

    command = [sys.executable, "-m", "xentcli", "compute", str(logits_path), str(labels_path),
               "--backend", "torch", "--device", "cuda", "--format", "value"]
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        process = subprocess.run(command, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
    print(f"== `xent compute --device cuda` as a command (torch import + CUDA start-up included): "
          f"median {statistics.median(walls):.2f} s, {size / statistics.median(walls) / 1e9:.2f} GB/s; "
          f"exit {process.returncode}, loss {process.stdout.strip()} {process.stderr.strip()}")

    language_model(folder)
    print("== numpy (CPU, the fused C kernel) vs torch CUDA, in-process after start-up, by input size (for --device auto):")
    for fraction in (1 / 32, 1 / 8, 1 / 2, 1):
        limit = int(rows * fraction)
        numpy_seconds, _ = timed(lambda: run_xent("cpu", "numpy", limit), repeats=1)
        cuda_seconds, _ = timed(lambda: run_xent("cuda", "torch", limit))
        print(f"   {size * fraction / 2**20:7.0f} MiB: numpy {numpy_seconds:.3f} s, cuda {cuda_seconds:.3f} s", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch; torch.zeros(1, device='cuda')"], check=True)
    print(f"== torch import + CUDA initialisation in a fresh process: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

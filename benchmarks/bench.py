"""xent against what a user would do instead, in one run: ratios of medians.

    python benchmarks/bench.py [--runs 5] [--dir /tmp/xent-bench] [--only kernel,csv,startup,npy,lm,shards,perrow]

1. kernel:  xentcli.cross_entropy on in-memory float32 and float64 arrays,
            totals only (keep_rows=False: torch's mean keeps no per-row
            losses either), vs torch.nn.functional.cross_entropy (torch CPU,
            default threads), and vs the exp floor: numpy's SIMD exp over the
            same elements on the same threads; then xent keeping every row's
            numbers (the default); in turn, each run after a pause (cold),
            then each right after an untimed run of itself (warm).
2. csv:     `xent compute` end to end on a 95 MB CSV (1M x 10, 6 decimals)
            vs scripts that import pandas, pyarrow or polars and read it;
            xent's rate after start-up vs polars' read_csv call alone, on
            that file and on the same shape written by pandas' to_csv
            (float64 with 17 significant digits, 196 MB).
3. startup: `xent compute` on a 2-row file, --format value, vs `python -c "import numpy"`.
4. npy:     `xent compute` end to end on a 2 GB float32 NPY vs np.load +
            torch F.cross_entropy; and xent's peak anonymous memory (RssAnon,
            sampled every 5 ms: memory-mapped file pages are not anonymous).
5. lm:      `xent compute` on (4096 x 128000) and (1024 x 256000) logits, as
            float32 NPY and bfloat16 safetensors, vs loading the file and
            torch F.cross_entropy (bfloat16 upcast to float32 first, as xent
            computes it); the peak anonymous memory of each; and the kernel
            alone on the float32 array in memory.
6. shards:  16 NPY files of 250 MB, `--scheduler local` (a LocalCluster with a
            worker per core) vs the same command in one process.
7. perrow:  `xent compute --format csv` of 2M rows end to end vs pandas'
            to_csv of the same columns (the write alone).

Targets (issue 15): kernel >= 4x faster than torch on every shape and dtype,
within 2x of the exp floor; csv <= 0.8x; startup <= 2x; npy >= 5 GB/s with
<= 300 MB peak anonymous memory; per-row csv >= 5x faster than pandas. Not
a test: timings depend on the machine; run it on an idle one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

PYTHON = sys.executable
XENT = [PYTHON, "-m", "xentcli"]
# As a user's Python runs: with its bytecode cached (pip compiles it at install; Python writes it on
# the first run). A sandbox's PYTHONDONTWRITEBYTECODE=1 would make every run compile xent's source.
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def in_turn(functions, runs: int, warm: bool = False) -> list[float]:
    """Median times of functions run in turn (first, second, ..., first, ...)
    so that a change in the machine's load falls on all alike. Each run starts
    after a pause of 50 ms: torch's OpenMP threads spin for a while after an
    operation, and would otherwise take the cores from the run after it.
    `warm`: each timed run comes right after an untimed run of the same
    function. After the pause this machine's cores start slow (a 15 ms kernel
    takes 25 ms, torch's 100 ms about as long), so a short run measures the
    wake-up more than the work; warm runs measure the work."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(runs):
        for function, bucket in zip(functions, times):
            time.sleep(0.05)
            if warm:
                function()
            start = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def interleaved(ours, theirs, runs: int) -> tuple[float, float]:
    """in_turn of two functions, cold: (ours, theirs)."""
    first, second = in_turn((ours, theirs), runs)
    return first, second


def run_command(command: list[str]) -> None:
    process = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr}")


def peak_anonymous_mb(command: list[str]) -> float:
    """Run a command, sampling its RssAnon; the peak in MB."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    peak = 0
    status = Path(f"/proc/{process.pid}/status")

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    process.wait()
    sampler.join()
    return peak / 1024


def report(name: str, ours: float, theirs: float, target: str) -> None:
    print(f"  {name:<28} xent {ours * 1e3:9.1f} ms   other {theirs * 1e3:9.1f} ms   "
          f"xent/other {ours / theirs:5.2f}x   ({target})", flush=True)


def exp_floor(x: np.ndarray, threads: int) -> None:
    """A bare vectorised exp (numpy's SIMD one) over every element of x, in
    blocks of 4 MiB on `threads` threads, each into its own scratch block:
    the floor of any kernel that must take an exponential of every logit."""
    from concurrent.futures import ThreadPoolExecutor

    step = max(1, (1 << 22) // (x.shape[1] * x.itemsize))
    scratch = [np.empty((step, x.shape[1]), x.dtype) for _ in range(threads)]
    starts = list(range(0, len(x), step))

    def run(k: int) -> None:
        block = x[starts[k] : starts[k] + step]
        np.exp(block, out=scratch[k % threads][: len(block)])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(len(starts))))


def kernel(runs: int) -> None:
    import torch
    import torch.nn.functional as F

    import xentcli
    from xentcli.engine import backends, fast

    threads = backends.NumpyOps.threads
    path = "the fused C kernel" if fast._kernel is not None else "numpy (the C kernel is not built)"
    print(f"1. kernel: xentcli.cross_entropy ({path}, {threads} threads) vs torch F.cross_entropy "
          f"({torch.get_num_threads()} threads); and vs a bare exp over the same elements ({threads} threads)")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for rows, classes in ((1_000_000, 10), (100_000, 1000), (2_000, 50_000)):
            logits = rng.normal(size=(rows, classes)).astype(dtype)
            target = rng.integers(0, classes, size=rows)
            x, t = torch.from_numpy(logits), torch.from_numpy(target)
            # Totals only, as torch's mean keeps no per-row losses (and as `xent
            # compute` runs without a per-row output); then keeping every row's
            # loss, log p and prediction (24 bytes a row of fresh memory).
            functions = (lambda: xentcli.cross_entropy(logits, target, keep_rows=False), lambda: F.cross_entropy(x, t),
                         lambda: exp_floor(logits, threads), lambda: xentcli.cross_entropy(logits, target))
            ours_loss, theirs_loss = xentcli.cross_entropy(logits, target).loss, float(F.cross_entropy(x, t))
            for warm in (False, True):
                ours, theirs, floor, kept = in_turn(functions, runs, warm)
                name = f"{np.dtype(dtype).name} ({rows} x {classes}){', warm' if warm else ''}"
                report(name, ours, theirs, f"target <= 0.25x; |rel diff| {abs(ours_loss / theirs_loss - 1):.1e}")
                print(f"  {'':<28} exp floor {floor * 1e3:6.1f} ms   xent/floor {ours / floor:5.2f}x   (target <= 2x)",
                      flush=True)
                print(f"  {'':<28} rows kept {kept * 1e3:6.1f} ms   xent/other {kept / theirs:5.2f}x", flush=True)


def csv(folder: Path, runs: int) -> None:
    logits, labels = folder / "logits.csv", folder / "labels.csv"
    if not logits.exists():
        rng = np.random.default_rng(0)
        np.savetxt(logits, rng.normal(size=(1_000_000, 10)), fmt="%.6f", delimiter=",")
        np.savetxt(labels, rng.integers(0, 10, size=1_000_000), fmt="%d")
    size = logits.stat().st_size
    print(f"2. csv: xent compute end to end vs scripts that import a reader and read the file, {size / 1e6:.0f} MB")
    command = [*XENT, "compute", str(logits), str(labels), "--format", "value"]
    readers = {
        "pandas": f"import pandas as pd; pd.read_csv({str(logits)!r}, header=None, engine='c')",
        "pyarrow": "import pyarrow.csv as c; "
                   f"c.read_csv({str(logits)!r}, read_options=c.ReadOptions(autogenerate_column_names=True))",
        "polars": f"import polars as pl; pl.read_csv({str(logits)!r}, has_header=False)",
    }
    tiny = tiny_files(folder)
    run_command(command)
    fastest = None
    for name, script in readers.items():
        try:
            __import__(name)
        except ImportError:
            print(f"  {name} is not installed: pip install {name} to compare")
            continue
        ours, theirs = interleaved(lambda: run_command(command), lambda: run_command([PYTHON, "-c", script]), runs)
        report(f"1M x 10 CSV vs {name}", ours, theirs, "target <= 0.8x the fastest reader")
        fastest = theirs if fastest is None else min(fastest, theirs)
        if name == "pandas":
            print(f"  peak anonymous memory: xent {peak_anonymous_mb(command):.0f} MB "
                  f"(pandas: {peak_anonymous_mb([PYTHON, '-c', script]):.0f} MB)")
    if fastest is not None:
        print(f"  {'':<28} xent / the fastest reader {ours / fastest:5.2f}x   (target <= 0.8x)")
    ours, start = interleaved(lambda: run_command(command), lambda: run_command(tiny), runs)
    print(f"  xent's parse rate after start-up (end to end minus a 2-row run): {size / (ours - start) / 1e6:.0f} MB/s")
    try:
        import polars as pl
    except ImportError:
        return
    _, read = interleaved(lambda: None, lambda: pl.read_csv(logits, has_header=False), runs)
    print(f"  polars' read_csv call alone ({pl.thread_pool_size()} threads): {size / read / 1e6:.0f} MB/s   "
          f"xent / polars rate {(size / (ours - start)) / (size / read):.2f}x   (target >= 2x)", flush=True)
    written = folder / "logits_pandas.csv"
    if not written.exists():  # what DataFrame.to_csv writes of float64: 17 significant digits
        try:
            import pandas as pd
        except ImportError:
            return
        pd.DataFrame(np.random.default_rng(0).normal(size=(1_000_000, 10))).to_csv(written, header=False, index=False)
    command = [*XENT, "compute", str(written), str(labels), "--format", "value"]
    run_command(command)
    ours, start, read = in_turn(
        (lambda: run_command(command), lambda: run_command(tiny), lambda: pl.read_csv(written, has_header=False)), runs
    )
    size = written.stat().st_size
    print(f"  {size / 1e6:.0f} MB CSV from pandas' to_csv: xent {ours * 1e3:.0f} ms end to end, "
          f"{size / (ours - start) / 1e6:.0f} MB/s after start-up; polars' read_csv call {size / read / 1e6:.0f} MB/s   "
          f"xent / polars rate {(size / (ours - start)) / (size / read):.2f}x", flush=True)
    big = folder / "logits_big.csv"
    if not big.exists():  # 2.5M rows, about 240 MB: past the size where xent parses text in chunks
        with open(big, "w") as file:
            for _ in range(5):
                file.write(logits.read_text()[: 48_000_000].rsplit("\n", 1)[0] + "\n")
        rows = sum(1 for _ in open(big))
        np.savetxt(folder / "labels_big.csv", np.random.default_rng(1).integers(0, 10, size=rows), fmt="%d")
    command = [*XENT, "compute", str(big), str(folder / "labels_big.csv"), "--format", "value"]
    script = f"import pandas as pd; pd.read_csv({str(big)!r}, header=None, engine='c')"
    ours, theirs = interleaved(lambda: run_command(command), lambda: run_command([PYTHON, "-c", script]), runs)
    report(f"{big.stat().st_size / 1e6:.0f} MB CSV, streamed", ours, theirs, "chunks of 1 MiB")
    print(f"  peak anonymous memory: xent {peak_anonymous_mb(command):.0f} MB "
          f"(pandas: {peak_anonymous_mb([PYTHON, '-c', script]):.0f} MB)")


def tiny_files(folder: Path) -> list[str]:
    """`xent compute` of a 2-row file, --format value: start-up and nothing else."""
    logits, labels = folder / "tiny.csv", folder / "tiny_labels.csv"
    logits.write_text("0.5,1.5\n2.0,0.1\n")
    labels.write_text("1\n0\n")
    command = [*XENT, "compute", str(logits), str(labels), "--format", "value"]
    run_command(command)  # the first run writes the bytecode, as a user's first run does
    return command


def startup(folder: Path, runs: int) -> None:
    print("3. startup: xent compute on 2 rows --format value vs python -c 'import numpy'")
    command = tiny_files(folder)
    ours, theirs = interleaved(lambda: run_command(command), lambda: run_command([PYTHON, "-c", "import numpy"]), runs)
    report("2-row file", ours, theirs, "target <= 2x; bytecode cached")


def npy(folder: Path, runs: int) -> None:
    logits, labels = folder / "big.npy", folder / "big_labels.npy"
    rows, classes = 500_000, 1000
    if not logits.exists():
        rng = np.random.default_rng(0)
        out = np.lib.format.open_memmap(logits, mode="w+", dtype=np.float32, shape=(rows, classes))
        for start in range(0, rows, 50_000):
            out[start : start + 50_000] = rng.standard_normal((50_000, classes), dtype=np.float32)
        out.flush()
        del out
        np.save(labels, rng.integers(0, classes, size=rows))
    size = logits.stat().st_size
    print(f"4. npy: xent compute end to end vs np.load + torch F.cross_entropy, {size / 1e9:.2f} GB float32")
    command = [*XENT, "compute", str(logits), str(labels), "--format", "value"]
    script = (
        "import numpy as np, torch, torch.nn.functional as F; "
        f"x = torch.from_numpy(np.load({str(logits)!r})); y = torch.from_numpy(np.load({str(labels)!r})); "
        "print(float(F.cross_entropy(x, y)))"
    )
    ours, theirs = interleaved(lambda: run_command(command), lambda: run_command([PYTHON, "-c", script]), runs)
    report(f"({rows} x {classes})", ours, theirs, "target <= 0.5x")
    tiny = tiny_files(folder)
    ours, start = interleaved(lambda: run_command(command), lambda: run_command(tiny), runs)
    print(f"  xent's rate after start-up (end to end minus a 2-row run): {size / (ours - start) / 1e9:.1f} GB/s "
          "(target >= 5 GB/s)")
    print(f"  peak anonymous memory: xent {peak_anonymous_mb(command):.0f} MB "
          f"(np.load + torch: {peak_anonymous_mb([PYTHON, '-c', script]):.0f} MB); target <= 300 MB")


def lm(folder: Path, runs: int) -> None:
    """Language-model shapes at vocabulary size, float32 NPY and bfloat16 safetensors."""
    import torch
    from safetensors.torch import save_file

    print("5. lm: xent compute end to end vs loading the file + torch F.cross_entropy (bf16 upcast to float32)")
    rng = np.random.default_rng(0)
    for rows, vocab in ((4096, 128_000), (1024, 256_000)):
        labels = folder / f"lm_{rows}_labels.npy"
        f32, bf16 = folder / f"lm_{rows}x{vocab}.npy", folder / f"lm_{rows}x{vocab}_bf16.safetensors"
        if not f32.exists():
            out = np.lib.format.open_memmap(f32, mode="w+", dtype=np.float32, shape=(rows, vocab))
            for start in range(0, rows, 256):
                out[start : start + 256] = rng.standard_normal((min(256, rows - start), vocab), dtype=np.float32) * 3
            out.flush()
            np.save(labels, rng.integers(0, vocab, size=rows))
            save_file({"logits": torch.from_numpy(np.asarray(out)).bfloat16()}, str(bf16))
            del out
        for path, load in (
            (f32, f"torch.from_numpy(np.load({str(f32)!r}))"),
            (bf16, f"safetensors.torch.load_file({str(bf16)!r})['logits'].float()"),
        ):
            command = [*XENT, "compute", str(path), str(labels), "--format", "value", "--quiet"]
            script = (
                "import numpy as np, torch, safetensors.torch, torch.nn.functional as F; "
                f"x = {load}; y = torch.from_numpy(np.load({str(labels)!r})); print(float(F.cross_entropy(x, y)))"
            )
            ours, theirs = interleaved(lambda: run_command(command), lambda: run_command([PYTHON, "-c", script]), runs)
            kind = "bf16 safetensors" if path == bf16 else "f32 NPY"
            values = [float(subprocess.run(c, capture_output=True, text=True).stdout) for c in (command, [PYTHON, "-c", script])]
            report(f"({rows} x {vocab}) {kind}", ours, theirs, f"|rel diff| {abs(values[0] / values[1] - 1):.1e}")
            print(f"  {'':<28} peak anonymous memory: xent {peak_anonymous_mb(command):.0f} MB, "
                  f"torch {peak_anonymous_mb([PYTHON, '-c', script]):.0f} MB; file {path.stat().st_size / 1e9:.2f} GB")
        in_memory(f32, labels, runs, f"({rows} x {vocab}) in memory")


def sharded(folder: Path, runs: int) -> None:
    """16 NPY shards of 250 MB: in this process vs --scheduler local (a LocalCluster, a worker per core)."""
    rows, classes, count = 62_500, 1000, 16
    rng = np.random.default_rng(0)
    for k in range(count):
        path = folder / f"shard_{k:02d}.npy"
        if not path.exists():
            np.save(path, rng.standard_normal((rows, classes), dtype=np.float32))
            np.save(folder / f"shard_labels_{k:02d}.npy", rng.integers(0, classes, size=rows))
    files = [str(folder / "shard_??.npy"), str(folder / "shard_labels_??.npy")]
    local = [*XENT, "compute", *files, "--format", "value", "--quiet"]
    dask = [*local, "--scheduler", "local"]
    print(f"6. shards: {count} NPY files of {rows * classes * 4 / 1e6:.0f} MB, --scheduler local "
          f"({os.cpu_count()} workers) vs in this process")
    ours, theirs = interleaved(lambda: run_command(dask), lambda: run_command(local), runs)
    same = subprocess.run(dask, capture_output=True, text=True).stdout == subprocess.run(local, capture_output=True, text=True).stdout
    report("16 x 250 MB", ours, theirs, f"the same loss to the last digit: {same}")


def per_row(folder: Path, runs: int) -> None:
    """`--format csv` of 2M rows end to end vs pandas writing the same columns (to_csv alone, the frame built)."""
    logits, labels, out = folder / "rows_2m.npy", folder / "rows_2m_labels.npy", folder / "rows_2m.csv"
    if not logits.exists():
        rng = np.random.default_rng(0)
        np.save(logits, rng.standard_normal((2_000_000, 10), dtype=np.float32))
        np.save(labels, rng.integers(0, 10, size=2_000_000))
    command = [*XENT, "compute", str(logits), str(labels), "--format", "csv", "--quiet", "--output", str(out)]
    run_command(command)
    script = (
        f"import pandas as pd, time; frame = pd.read_csv({str(out)!r}); start = time.perf_counter(); "
        f"frame.to_csv({str(folder / 'rows_2m_pandas.csv')!r}, index=False); print(time.perf_counter() - start)"
    )
    print("7. per-row: xent compute --format csv of 2M rows end to end vs pandas to_csv of the same columns")
    ours, theirs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        run_command(command)
        ours.append(time.perf_counter() - start)
        theirs.append(float(subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, env=ENV).stdout))
    report("2M rows x 6 columns", statistics.median(ours), statistics.median(theirs), "target: 5x faster, 0.2x")
    for fmt in ("jsonl", "json"):
        command = [*XENT, "compute", str(logits), str(labels), "--format", fmt, "--per-row", "--quiet",
                   "--output", str(folder / f"rows_2m.{fmt}")]
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            run_command(command)
            times.append(time.perf_counter() - start)
        report(f"  --format {fmt} --per-row", statistics.median(times), statistics.median(theirs),
               f"vs the same to_csv; peak anonymous memory {peak_anonymous_mb(command):.0f} MB")


def in_memory(logits: Path, labels: Path, runs: int, name: str) -> None:
    """The kernel alone on an NPY file loaded into memory, xent vs F.cross_entropy on the same threads."""
    import torch
    import torch.nn.functional as F

    import xentcli

    x, y = np.load(logits), np.load(labels)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    ours, theirs = interleaved(lambda: xentcli.cross_entropy(x, y), lambda: F.cross_entropy(tx, ty), runs)
    report(name, ours, theirs, f"kernel; torch {torch.get_num_threads()} threads")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/xent-bench")
    parser.add_argument("--only", default="kernel,csv,startup,npy,lm,shards,perrow")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    print(f"xent benchmark: {os.cpu_count()} CPUs, numpy {np.__version__}, median of {args.runs} interleaved runs")
    sections = {"kernel": lambda: kernel(args.runs), "csv": lambda: csv(folder, args.runs),
                "startup": lambda: startup(folder, args.runs), "npy": lambda: npy(folder, args.runs),
                "lm": lambda: lm(folder, args.runs), "shards": lambda: sharded(folder, args.runs),
                "perrow": lambda: per_row(folder, args.runs)}
    for name, section in sections.items():
        if name in only:
            section()


if __name__ == "__main__":
    main()

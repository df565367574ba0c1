"""Inputs named by URL, through fsspec: a real HTTP server started here (one that
honours Range requests, as object stores do, and counts what it sends), and
fsspec's in-memory filesystem for globs. Expected numbers: the same files read
locally, and torch."""

from __future__ import annotations

import gzip
import http.server
import os
import re
import subprocess
import sys
import threading

import fsspec
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import error_line, xent, xent_json


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    sent = 0  # bytes of file content sent, over all requests

    def log_message(self, *args):
        pass

    def send_head(self):
        if "forbidden" in self.path:
            self.send_error(403)
            return None
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = (int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)) if match else (0, size - 1)
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        handle = open(path, "rb")
        handle.seek(start)
        self.left = end - start + 1
        return handle

    def copyfile(self, source, outputfile):
        data = source.read(self.left)
        type(self).sent += len(data)
        outputfile.write(data)


@pytest.fixture
def served(tmp_path):
    """(folder, base URL, handler class): files written to the folder are served at the URL."""
    handler = type("Handler", (RangeHandler,), {"sent": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_npy_over_http_is_the_local_number(served):
    folder, url, _ = served
    rng = np.random.default_rng(0)
    x, ids = rng.normal(size=(3, 9, 40)).astype(np.float32), rng.integers(0, 40, size=(3, 9))
    np.save(folder / "x.npy", x)
    np.save(folder / "ids.npy", ids)
    args = ("--class-axis", "-1", "--shift")
    remote = xent_json(f"{url}/x.npy", f"{url}/ids.npy", *args)
    assert remote["loss"] == xent_json(folder / "x.npy", folder / "ids.npy", *args)["loss"]
    expected = F.cross_entropy(torch.tensor(x[:, :-1]).double().reshape(-1, 40), torch.tensor(ids[:, 1:]).reshape(-1))
    assert remote["loss"] == pytest.approx(float(expected), rel=1e-6)
    assert remote["inputs"]["logits"] == f"{url}/x.npy"


def test_ranges_fetch_each_byte_about_once_and_only_the_columns_asked_for(served):
    folder, url, handler = served
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6000, 1000)).astype(np.float32)  # 24 MB
    np.save(folder / "big.npy", x)
    np.save(folder / "y.npy", np.zeros(6000, dtype=np.int64))
    handler.sent = 0
    found = xent_json(f"{url}/big.npy", folder / "y.npy")
    assert found["loss"] == pytest.approx(float(F.cross_entropy(torch.tensor(x).double(), torch.zeros(6000, dtype=torch.long))), rel=1e-6)
    assert handler.sent < 1.25 * (folder / "big.npy").stat().st_size  # read by ranges, not again per block
    wide = pd.DataFrame(rng.normal(size=(20000, 40)), columns=[f"c{k}" for k in range(40)]).assign(label=0)
    wide.to_parquet(folder / "wide.parquet", row_group_size=5000)
    handler.sent = 0
    found = xent_json(f"{url}/wide.parquet", "--logits-cols", "c0,c1", "--label-col", "label")
    assert found["classes"] == 2
    assert handler.sent < (folder / "wide.parquet").stat().st_size / 4  # 2 columns of 41, not the whole file


def test_parquet_csv_and_gzip_over_http(served):
    folder, url, _ = served
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(200, 3)), rng.integers(0, 3, size=200)
    pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y).to_parquet(folder / "e.parquet", row_group_size=50)
    expected = float(F.cross_entropy(torch.tensor(x), torch.tensor(y)))
    assert xent_json(f"{url}/e.parquet")["loss"] == pytest.approx(expected, rel=1e-12)
    np.savetxt(folder / "x.csv", x, delimiter=",", fmt="%.17g")
    np.savetxt(folder / "y.csv", y, fmt="%d")
    assert xent_json(f"{url}/x.csv", f"{url}/y.csv")["loss"] == pytest.approx(expected, rel=1e-12)
    (folder / "x.csv.gz").write_bytes(gzip.compress((folder / "x.csv").read_bytes()))
    assert xent_json(f"{url}/x.csv.gz", f"{url}/y.csv")["loss"] == pytest.approx(expected, rel=1e-12)
    many = xent_json(f"{url}/x.csv,{url}/x.csv", f"{url}/y.csv,{url}/y.csv")  # a list of URLs: one batch
    assert many["rows"] == 400 and many["loss"] == pytest.approx(expected, rel=1e-12)


def test_errors_name_the_url_without_its_credentials(served):
    folder, url, _ = served
    np.save(folder / "y.npy", np.array([0]))
    secret = url.replace("http://", "http://alice:hunter2@") + "/missing.npy?X-Amz-Signature=abc123"
    result = xent("compute", secret, folder / "y.npy")
    line = error_line(result)
    assert "missing.npy" in line and "no such file" in line
    assert "hunter2" not in result.stderr and "alice" not in result.stderr and "abc123" not in result.stderr
    forbidden = url.replace("http://", "http://alice:hunter2@") + "/forbidden.npy?token=abc123"
    result = xent("compute", forbidden, folder / "y.npy")
    assert "forbidden.npy" in error_line(result)  # the server's refusal, in the library's words, scrubbed
    assert "hunter2" not in result.stderr and "alice" not in result.stderr and "abc123" not in result.stderr


def test_globs_over_a_filesystem_that_lists():
    memory = fsspec.filesystem("memory")
    rng = np.random.default_rng(3)
    shards = [(rng.normal(size=(50, 4)), rng.integers(0, 4, size=50)) for _ in range(3)]
    for k, (x, y) in enumerate(shards):
        with memory.open(f"/xent-test/logits/part{k}.npy", "wb") as handle:
            np.save(handle, x)
        with memory.open(f"/xent-test/labels/part{k}.npy", "wb") as handle:
            np.save(handle, y)
    found = xent_json("memory://xent-test/logits/*.npy", "memory://xent-test/labels/*.npy")
    x, y = np.concatenate([s[0] for s in shards]), np.concatenate([s[1] for s in shards])
    assert found["rows"] == 150
    assert found["loss"] == pytest.approx(float(F.cross_entropy(torch.tensor(x), torch.tensor(y))), rel=1e-12)
    assert "no file matches" in error_line(xent("compute", "memory://xent-test/none/*.npy", "memory://a.npy"))
    memory.rm("/xent-test", recursive=True)


def test_fsspec_is_an_extra_imported_only_for_urls(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    code = (
        "import sys; from typer.testing import CliRunner; from xentcli.cli import app; "
        "r = CliRunner().invoke(app, sys.argv[1:]); print(r.exit_code, 'fsspec' in sys.modules); print(r.stderr)"
    )
    local = subprocess.run([sys.executable, "-c", code, "compute", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                           capture_output=True, text=True).stdout
    assert local.split()[:2] == ["0", "False"]
    hidden = "import sys; sys.modules['fsspec'] = None; " + code
    out = subprocess.run([sys.executable, "-c", hidden, "compute", "https://example.invalid/x.npy", str(tmp_path / "y.npy")],
                         capture_output=True, text=True).stdout
    assert out.startswith("2 ") and "pip install 'xentcli[remote]'" in out


@pytest.fixture
def s3(monkeypatch):
    """A local S3-compatible server (moto's server mode), and an s3fs filesystem on it."""
    from moto.server import ThreadedMotoServer
    import s3fs

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in (("AWS_ENDPOINT_URL", f"http://{host}:{port}"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir("xent-test")
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_s3_globs_ranges_and_errors(s3):
    rng = np.random.default_rng(7)
    shards = [(rng.normal(size=(80, 6)), rng.integers(0, 6, size=80)) for _ in range(3)]
    for k, (x, y) in enumerate(shards):
        with s3.open(f"xent-test/eval/logits_{k}.npy", "wb") as handle:
            np.save(handle, x)
        with s3.open(f"xent-test/eval/labels_{k}.npy", "wb") as handle:
            np.save(handle, y)
    pd.DataFrame(shards[0][0], columns=list("abcdef")).assign(label=shards[0][1]).to_parquet(
        s3.open("xent-test/eval/one.parquet", "wb"))
    found = xent_json("s3://xent-test/eval/logits_*.npy", "s3://xent-test/eval/labels_*.npy")
    x, y = np.concatenate([s[0] for s in shards]), np.concatenate([s[1] for s in shards])
    assert found["rows"] == 240
    assert found["loss"] == pytest.approx(float(F.cross_entropy(torch.tensor(x), torch.tensor(y))), rel=1e-12)
    one = xent_json("s3://xent-test/eval/one.parquet")
    assert one["loss"] == pytest.approx(float(F.cross_entropy(torch.tensor(shards[0][0]), torch.tensor(shards[0][1]))),
                                        rel=1e-12)
    assert "no such file" in error_line(xent("compute", "s3://xent-test/eval/nope.npy", "s3://xent-test/eval/labels_0.npy"))


def test_an_unreachable_server_is_not_called_a_missing_file(tmp_path):
    import socket

    np.save(tmp_path / "y.npy", np.array([0]))
    # A port held, never listened on: refused, and nothing else can take it meanwhile
    # (a port found free and let go was once taken by another server: "no such file").
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        line = error_line(xent("compute", f"http://127.0.0.1:{port}/x.npy?sig=s3cr3t", tmp_path / "y.npy"))
    assert "cannot reach it" in line and "s3cr3t" not in line

"""The container writer, checked without torch: layout, alignment, checksum, and (where the
ember CLI is built, EMBER_CLI) that ember's C++ reader accepts the file and computes with it."""
import os
import struct
import subprocess

import numpy as np
import pytest

from ember_export import writer
from ember_export.checksum import content_checksum, xxh3_64


def tiny_graph():
    """y = relu(x @ W^T + b) with x [batch, 3]."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    b = np.array([0.5, -1.0], dtype=np.float32)
    g = writer.Graph()
    g.values = [
        writer.Value("x", "float32", ["batch", 3], "input"),
        writer.Value("fc.weight", "float32", [2, 3], "parameter", w.tobytes(), True),
        writer.Value("fc.bias", "float32", [2], "parameter", b.tobytes(), True),
        writer.Value("linear", "float32", ["batch", 2], "intermediate"),
        writer.Value("y", "float32", ["batch", 2], "output"),
    ]
    g.nodes = [writer.Node("linear", [0, 1, 2], [3], name="linear"),
               writer.Node("relu", [3], [4], name="relu")]
    g.inputs, g.outputs = [0], [4]
    g.metadata = {"purpose": "test"}
    return g, w, b


def test_layout_and_checksum(tmp_path):
    g, _, _ = tiny_graph()
    data = writer.file_bytes(g)
    assert data[8:12] == b"EMBR"
    fb_size = struct.unpack("<I", data[:4])[0]
    data_start = (fb_size + 4 + 4095) // 4096 * 4096
    assert len(data) == data_start + 64 + 8 + 16  # weight (24 B) padded to 64, bias (8 B), trailer
    assert data[-8:] == b"EMBRHSH1"
    # One chunk: the checksum is XXH3 of the chunk's little-endian digest.
    assert struct.unpack("<Q", data[-16:-8])[0] == xxh3_64(struct.pack("<Q", xxh3_64(data[:-16])))
    assert content_checksum(data[:-16]) == xxh3_64(struct.pack("<Q", xxh3_64(data[:-16])))
    path = tmp_path / "m.ember"
    writer.write_atomically(str(path), data)
    assert path.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["m.ember"]  # no temporary left behind


@pytest.mark.skipif(not os.environ.get("EMBER_CLI"), reason="EMBER_CLI (the built ember tool) not set")
def test_cpp_reader_accepts_and_runs(tmp_path):
    g, w, b = tiny_graph()
    path = tmp_path / "m.ember"
    writer.write_atomically(str(path), writer.file_bytes(g))
    cli = os.environ["EMBER_CLI"]
    out = subprocess.run([cli, "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    x = np.array([[1, 2, 3], [-1, 0, 2]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([cli, "run", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                          str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(y, np.maximum(x @ w.T + b, 0), rtol=1e-6)
    # A flipped byte in the weights is caught by the checksum.
    data = bytearray(path.read_bytes())
    data[-16 - 20] ^= 0x40
    bad = tmp_path / "bad.ember"
    bad.write_bytes(bytes(data))
    out = subprocess.run([cli, "validate", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "checksum mismatch" in out.stderr


@pytest.mark.skipif(not os.environ.get("EMBER_CLI"), reason="EMBER_CLI (the built ember tool) not set")
def test_multi_chunk_checksum_agrees_with_cpp(tmp_path):
    """A file of several 1 MiB checksum chunks, written here, verified by ember's reader."""
    g, _, _ = tiny_graph()
    big = np.random.default_rng(0).standard_normal((700, 1000)).astype(np.float32)  # 2.8 MB
    g.values.append(writer.Value("extra", "float32", [700, 1000], "buffer", big.tobytes()))
    path = tmp_path / "big.ember"
    writer.write_atomically(str(path), writer.file_bytes(g))
    out = subprocess.run([os.environ["EMBER_CLI"], "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr

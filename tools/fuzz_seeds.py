"""Crafted seeds for tools/fuzz.sh: valid-checksum .ember files whose contents are hostile (dims
of INT32_MAX and INT64_MAX, products that overflow, negative dims, data at the very end of the
file, ids out of range, many values) and .npy files with hostile headers. The fuzzer mutates
them further. Usage: python3 tools/fuzz_seeds.py CORPUS_DIR"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ember_export"))
from ember_export import writer as w  # noqa: E402

I32, I64 = 2**31 - 1, 2**63 - 1


def linear(weight_shape, weight_data, x_shape=("batch", 4), extra=None):
    g = w.Graph()
    g.values.append(w.Value("x", "float32", list(x_shape), "input"))
    g.values.append(w.Value("weight", "float32", list(weight_shape), "parameter", weight_data))
    g.values.append(w.Value("y", "float32", ["batch", 3], "output"))
    g.nodes.append(w.Node("linear", [0, 1, -1], [2]))
    g.inputs, g.outputs = [0], [2]
    if extra:
        extra(g)
    return g


def many_values(g):
    for i in range(2000):
        g.values.append(w.Value(f"c{i}", "float32", [1], "constant", b"\0\0\0\0"))


def bad_ids(g):
    g.nodes.append(w.Node("relu", [7, 99], [12345]))


CASES = {
    "ok": linear([3, 4], bytes(48)),
    "int32_max_dim": linear([I32, 4], bytes(48)),
    "int64_max_dim": linear([I64, 1], bytes(48)),
    "overflowing_product": linear([2**32, 2**32], bytes(48)),
    "huge_input": linear([3, 4], bytes(48), x_shape=(I64, I64)),
    "negative_dim": linear([-3, 4], bytes(48)),
    "short_data": linear([3, 4], bytes(4)),
    "empty_data": linear([3, 4], b""),
    "many_values": linear([3, 4], bytes(48), extra=many_values),
    "bad_ids": linear([3, 4], bytes(48), extra=bad_ids),
}


def npy(header_dict, payload=b""):
    header = repr(header_dict).encode() + b" "
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


NPY = {
    "ok": npy({"descr": "<f4", "fortran_order": False, "shape": (2, 2)}, bytes(16)),
    "huge_shape": npy({"descr": "<f4", "fortran_order": False, "shape": (I64, I64)}),
    "int32_max": npy({"descr": "<i8", "fortran_order": False, "shape": (I32, 1)}, bytes(8)),
    "negative": npy({"descr": "<f8", "fortran_order": False, "shape": (-1, 4)}),
    "fortran": npy({"descr": "<f4", "fortran_order": True, "shape": (3, 2)}, bytes(24)),
    "big_endian": npy({"descr": ">f4", "fortran_order": False, "shape": (2,)}, bytes(8)),
    "truncated": npy({"descr": "<f4", "fortran_order": False, "shape": (100,)}, bytes(10)),
}


def main():
    corpus = sys.argv[1]
    os.makedirs(os.path.join(corpus, "model"), exist_ok=True)
    os.makedirs(os.path.join(corpus, "npy"), exist_ok=True)
    made = 0
    for name, g in CASES.items():
        try:
            data = w.file_bytes(g)
        except (struct.error, ValueError, OverflowError) as e:  # the writer refuses some outright
            print(f"seed {name}: not writable ({e})")
            continue
        with open(os.path.join(corpus, "model", f"crafted_{name}.ember"), "wb") as f:
            f.write(data)
        made += 1
    for name, data in NPY.items():
        with open(os.path.join(corpus, "npy", f"crafted_{name}.npy"), "wb") as f:
            f.write(data)
    print(f"{made} crafted models, {len(NPY)} crafted .npy files")


if __name__ == "__main__":
    main()

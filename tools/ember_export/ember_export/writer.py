"""Writes the .ember container: a size-prefixed flatbuffer (serialization/ember.fbs), zero
padding to the page boundary, the data segment (64-byte aligned blobs), and the checksum
trailer. Field slots follow the order of the fields in ember.fbs."""
import os
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import flatbuffers

from .checksum import content_checksum

DATA_ALIGNMENT = 4096
BLOB_ALIGNMENT = 64
TRAILER_MAGIC = b"EMBRHSH1"
VERSION_MAJOR, VERSION_MINOR = 1, 0

# ember.fbs enums
DTYPES = {"bool": 0, "uint8": 1, "int8": 2, "int32": 3, "int64": 4, "float16": 5, "bfloat16": 6,
          "float32": 7, "float64": 8}
KINDS = {"input": 0, "output": 1, "parameter": 2, "buffer": 3, "constant": 4, "intermediate": 5}
ATTR_NONE, ATTR_INT, ATTR_FLOAT, ATTR_BOOL, ATTR_STRING, ATTR_INTS, ATTR_FLOATS, ATTR_DTYPE = range(8)


@dataclass
class Value:
    name: str
    dtype: str                 # a key of DTYPES
    shape: List[object]        # ints, or str symbols
    kind: str                  # a key of KINDS
    data: Optional[bytes] = None
    requires_grad: bool = False


@dataclass
class DTypeAttr:
    name: str                  # a key of DTYPES


@dataclass
class Node:
    op: str
    inputs: List[int]          # value ids, -1 for an absent optional input
    outputs: List[int]
    attributes: Dict[str, object] = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    values: List[Value] = field(default_factory=list)
    nodes: List[Node] = field(default_factory=list)
    inputs: List[int] = field(default_factory=list)
    outputs: List[int] = field(default_factory=list)
    metadata: Dict[str, str] = field(default_factory=dict)
    producer: str = "ember_export"
    producer_version: str = ""
    torch_version: str = ""


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _end_vector(b, n):
    try:
        return b.EndVector()
    except TypeError:  # flatbuffers < 2.0
        return b.EndVector(n)


def _offsets(b, offs):
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    return _end_vector(b, len(offs))


def _scalars(b, xs, size, prepend):
    b.StartVector(size, len(xs), size)
    for x in reversed(xs):
        prepend(x)
    return _end_vector(b, len(xs))


def _attribute(b, name, v):
    n = b.CreateString(name)
    s = ints = floats = None
    if isinstance(v, str):
        s = b.CreateString(v)
    elif isinstance(v, (list, tuple)):
        if all(isinstance(x, int) for x in v):  # bools are ints too; [] is an empty int list
            ints = _scalars(b, [int(x) for x in v], 8, b.PrependInt64)
        else:
            floats = _scalars(b, [float(x) for x in v], 8, b.PrependFloat64)
    b.StartObject(9)
    b.PrependUOffsetTRelativeSlot(0, n, 0)
    if v is None:
        b.PrependUint8Slot(1, ATTR_NONE, 0)
    elif isinstance(v, bool):
        b.PrependUint8Slot(1, ATTR_BOOL, 0)
        b.PrependBoolSlot(4, v, False)
    elif isinstance(v, int):
        b.PrependUint8Slot(1, ATTR_INT, 0)
        b.PrependInt64Slot(2, v, 0)
    elif isinstance(v, float):
        b.PrependUint8Slot(1, ATTR_FLOAT, 0)
        b.PrependFloat64Slot(3, v, 0.0)
    elif isinstance(v, str):
        b.PrependUint8Slot(1, ATTR_STRING, 0)
        b.PrependUOffsetTRelativeSlot(5, s, 0)
    elif isinstance(v, DTypeAttr):
        b.PrependUint8Slot(1, ATTR_DTYPE, 0)
        b.PrependUint8Slot(8, DTYPES[v.name], 0)
    elif ints is not None:
        b.PrependUint8Slot(1, ATTR_INTS, 0)
        b.PrependUOffsetTRelativeSlot(6, ints, 0)
    elif floats is not None:
        b.PrependUint8Slot(1, ATTR_FLOATS, 0)
        b.PrependUOffsetTRelativeSlot(7, floats, 0)
    else:
        raise TypeError(f"attribute {name!r}: cannot store {type(v).__name__}")
    return b.EndObject()


def _flatbuffer(g: Graph, offsets: List[int], data_size: int) -> bytes:
    b = flatbuffers.Builder(1 << 16)
    values = []
    for i, v in enumerate(g.values):
        dims = []
        for d in v.shape:
            sym = b.CreateString(d) if isinstance(d, str) else None
            b.StartObject(2)
            if isinstance(d, str):
                b.PrependUOffsetTRelativeSlot(1, sym, 0)
            else:
                b.PrependInt64Slot(0, int(d), -1)
            dims.append(b.EndObject())
        shape = _offsets(b, dims)
        name = b.CreateString(v.name)
        b.StartObject(6)
        b.PrependUOffsetTRelativeSlot(0, name, 0)
        b.PrependUint8Slot(1, DTYPES[v.dtype], 7)
        b.PrependUOffsetTRelativeSlot(2, shape, 0)
        b.PrependUint8Slot(3, KINDS[v.kind], 5)
        if v.data is not None:
            b.Prep(8, 16)  # struct Blob { offset: ulong; size: ulong; }, fields written last first
            b.PrependUint64(len(v.data))
            b.PrependUint64(offsets[i])
            b.PrependStructSlot(4, b.Offset(), 0)
        b.PrependBoolSlot(5, bool(v.requires_grad), False)
        values.append(b.EndObject())
    op_names: List[str] = []
    nodes = []
    for n in g.nodes:
        if n.op not in op_names:
            op_names.append(n.op)
        attrs = [_attribute(b, k, v) for k, v in sorted(n.attributes.items())]
        attr_vec = _offsets(b, attrs)
        ins = _scalars(b, n.inputs, 4, b.PrependInt32)
        outs = _scalars(b, n.outputs, 4, b.PrependUint32)
        nm = b.CreateString(n.name) if n.name else None
        b.StartObject(5)
        b.PrependUint32Slot(0, op_names.index(n.op), 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        b.PrependUOffsetTRelativeSlot(3, attr_vec, 0)
        if nm is not None:
            b.PrependUOffsetTRelativeSlot(4, nm, 0)
        nodes.append(b.EndObject())
    meta = []
    for k, v in sorted(g.metadata.items()):
        ks, vs = b.CreateString(k), b.CreateString(str(v))
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, ks, 0)
        b.PrependUOffsetTRelativeSlot(1, vs, 0)
        meta.append(b.EndObject())
    pn, pv, pt = b.CreateString(g.producer), b.CreateString(g.producer_version), b.CreateString(g.torch_version)
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, pn, 0)
    b.PrependUOffsetTRelativeSlot(1, pv, 0)
    b.PrependUOffsetTRelativeSlot(2, pt, 0)
    producer = b.EndObject()
    meta_vec = _offsets(b, meta)
    value_vec = _offsets(b, values)
    op_vec = _offsets(b, [b.CreateString(s) for s in op_names])
    node_vec = _offsets(b, nodes)
    in_vec = _scalars(b, g.inputs, 4, b.PrependUint32)
    out_vec = _scalars(b, g.outputs, 4, b.PrependUint32)
    b.StartObject(10)
    b.PrependUint32Slot(0, VERSION_MAJOR, 1)
    b.PrependUint32Slot(1, VERSION_MINOR, 0)
    b.PrependUOffsetTRelativeSlot(2, producer, 0)
    b.PrependUOffsetTRelativeSlot(3, meta_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, value_vec, 0)
    b.PrependUOffsetTRelativeSlot(5, op_vec, 0)
    b.PrependUOffsetTRelativeSlot(6, node_vec, 0)
    b.PrependUOffsetTRelativeSlot(7, in_vec, 0)
    b.PrependUOffsetTRelativeSlot(8, out_vec, 0)
    b.PrependUint64Slot(9, data_size, 0)
    model = b.EndObject()
    b.FinishSizePrefixed(model, file_identifier=b"EMBR")
    return bytes(b.Output())


def file_bytes(g: Graph) -> bytes:
    offsets, data_size = [0] * len(g.values), 0
    for i, v in enumerate(g.values):
        if v.data is not None:
            offsets[i] = _align(data_size, BLOB_ALIGNMENT)
            data_size = offsets[i] + len(v.data)
    out = bytearray(_flatbuffer(g, offsets, data_size))
    data_start = _align(len(out), DATA_ALIGNMENT)
    out += bytes(data_start - len(out))
    out += bytes(data_size)
    for i, v in enumerate(g.values):
        if v.data is not None:
            out[data_start + offsets[i]:data_start + offsets[i] + len(v.data)] = v.data
    out += struct.pack("<Q", content_checksum(bytes(out))) + TRAILER_MAGIC
    return bytes(out)


def write_atomically(path: str, data: bytes) -> None:
    """Temporary file beside `path`, fsync, rename over it, fsync of the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)

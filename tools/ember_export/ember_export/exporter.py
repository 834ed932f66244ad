"""torch.export → ember graph. Each ATen op that ember runs maps to one of ember's graph
operators (graph/ops.cpp, listed in docs/FORMAT.md); anything else is refused by name."""
import operator
from typing import Dict, List, Optional, Sequence

import torch

from . import writer
from .errors import UnsupportedOpsError
from .translate import KEEP_OPS, TRANSLATIONS, Emitter

_DTYPE_NAMES = {
    torch.bool: "bool", torch.uint8: "uint8", torch.int8: "int8", torch.int32: "int32", torch.int64: "int64",
    torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.float64: "float64",
}


def dtype_name(dt: torch.dtype) -> str:
    if dt not in _DTYPE_NAMES:
        raise UnsupportedOpsError([f"dtype {dt}"])
    return _DTYPE_NAMES[dt]


def _decomposition_table():
    if hasattr(torch.export, "default_decompositions"):
        table = torch.export.default_decompositions()
    else:  # torch < 2.6
        from torch._decomp import core_aten_decompositions
        table = core_aten_decompositions()
    for op in KEEP_OPS:
        try:
            table.pop(op, None)
        except KeyError:
            pass
    return table


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


class _Builder(Emitter):
    def __init__(self, dynamic_symbols: Dict[str, str]):
        self.graph = writer.Graph()
        self.ids: Dict[str, int] = {}          # fx node name -> value id
        self.symbols = dynamic_symbols
        self.names = set()

    def shape_of(self, val) -> List[object]:
        dims = []
        for d in val.shape:
            # int() of a SymInt would give its traced example value: keep symbols symbolic.
            if isinstance(d, torch.SymInt) and not getattr(d.node.expr, "is_number", False):
                s = str(d)
                dims.append(self.symbols.get(s, s))
            else:
                dims.append(int(d))
        return dims

    def add_value(self, name, val, kind, data=None, requires_grad=False) -> int:
        vid = len(self.graph.values)
        # Value names are unique; state_dict names come first, so fx names give way.
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        self.graph.values.append(writer.Value(name=name, dtype=dtype_name(val.dtype), shape=self.shape_of(val),
                                              kind=kind, data=data, requires_grad=requires_grad))
        return vid

    def emit(self, op, inputs, attributes, outputs, name=""):
        self.graph.nodes.append(writer.Node(op=op, inputs=list(inputs), outputs=list(outputs),
                                            attributes=dict(attributes), name=name))


def export(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], path: str, dynamic_batch: bool = False,
           trainable: bool = True, metadata: Optional[Dict[str, str]] = None) -> None:
    """Exports `module`, traced on `example_inputs`, to `path` (written atomically).

    dynamic_batch: dim 0 of every input is the symbol "batch" (use an example batch of 2 or
    more, as torch.export specialises sizes 0 and 1). trainable: parameters that require grad
    are marked for fine-tuning. The module's train/eval mode decides batch-norm behaviour; dropout
    follows the mode the loaded model is put in.
    """
    args = tuple(example_inputs)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch")
        dynamic_shapes = tuple({0: batch} if isinstance(a, torch.Tensor) and a.dim() > 0 else None for a in args)
    ep = torch.export.export(module, args, dynamic_shapes=dynamic_shapes, strict=False)
    ep = ep.run_decompositions(_decomposition_table())
    graph = _translate(ep, dynamic_batch, trainable, module)
    from . import __version__
    graph.producer_version = __version__
    graph.torch_version = torch.__version__
    graph.metadata = {"module": type(module).__name__, **(metadata or {})}
    writer.write_atomically(path, writer.file_bytes(graph))


def _translate(ep, dynamic_batch: bool, trainable: bool, module) -> writer.Graph:
    from torch.export.graph_signature import InputKind, OutputKind

    sig = ep.graph_signature
    for spec in sig.output_specs:
        if spec.kind not in (OutputKind.USER_OUTPUT,):
            raise UnsupportedOpsError([f"output kind {spec.kind.name} (a module that mutates "
                                       f"{spec.target!r} during forward; export it in eval mode)"])
    input_kind = {spec.arg.name: spec for spec in sig.input_specs}
    state = ep.state_dict
    constants = getattr(ep, "constants", {}) or {}
    params = dict(module.named_parameters())

    gm = ep.graph_module
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    # Name the batch symbol: the symbol of dim 0 of the first user input.
    symbols: Dict[str, str] = {}
    if dynamic_batch:
        for n in placeholders:
            spec = input_kind.get(n.name)
            if spec is not None and spec.kind == InputKind.USER_INPUT and isinstance(n.meta.get("val"), torch.Tensor):
                d0 = n.meta["val"].shape[0]
                if not isinstance(d0, int):
                    symbols[str(d0)] = "batch"
                break
    b = _Builder(symbols)

    output_node = next(n for n in gm.graph.nodes if n.op == "output")
    user_outputs = list(output_node.args[0]) if isinstance(output_node.args[0], (list, tuple)) else [output_node.args[0]]

    for n in placeholders:
        spec = input_kind[n.name]
        val = n.meta.get("val")
        if spec.kind == InputKind.USER_INPUT:
            if not isinstance(val, torch.Tensor):
                raise UnsupportedOpsError([f"non-tensor input {n.name!r}"])
            b.ids[n.name] = b.add_value(n.name, val, "input")
            b.graph.inputs.append(b.ids[n.name])
        elif spec.kind == InputKind.PARAMETER:
            t = state[spec.target]
            rg = trainable and bool(params[spec.target].requires_grad) if spec.target in params else trainable
            b.ids[n.name] = b.add_value(spec.target, t, "parameter", _tensor_bytes(t), rg)
        elif spec.kind == InputKind.BUFFER:
            t = state[spec.target] if spec.target in state else constants[spec.target]
            b.ids[n.name] = b.add_value(spec.target, t, "buffer", _tensor_bytes(t))
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            t = constants[spec.target]
            b.ids[n.name] = b.add_value(spec.target, t, "constant", _tensor_bytes(t))
        else:
            raise UnsupportedOpsError([f"input kind {spec.kind.name} ({n.name!r})"])

    unsupported: List[str] = []
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        val = n.meta.get("val")
        if n.target is operator.getitem:
            src, index = n.args
            key = f"{src.name}[{index}]"
            if key in b.ids:
                b.ids[n.name] = b.ids[key]
            elif src.name in b.ids and index == 0:
                b.ids[n.name] = b.ids[src.name]
            else:
                unsupported.append(f"output {index} of {src.target}")
            continue
        if not isinstance(val, (torch.Tensor, list, tuple)):
            continue  # symbolic sizes (sym_size, arithmetic on them): folded into shapes below
        fn = TRANSLATIONS.get(n.target)
        if fn is None:
            unsupported.append(str(n.target))
            continue
        try:
            fn(b, n)
        except UnsupportedOpsError as e:
            unsupported.extend(e.ops)
    if unsupported:
        raise UnsupportedOpsError(sorted(set(unsupported)))

    for n in user_outputs:
        if not isinstance(n, torch.fx.Node) or n.name not in b.ids:
            raise UnsupportedOpsError([f"output {n!r} is not a tensor computed by the graph"])
        vid = b.ids[n.name]
        if b.graph.values[vid].kind == "intermediate":
            b.graph.values[vid].kind = "output"
        b.graph.outputs.append(vid)
    return b.graph

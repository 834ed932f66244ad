"""ATen → ember graph operators. Each translation reads an fx node's arguments, emits one or
more ember nodes and records the value id of the node's result in `b.ids`."""
from types import SimpleNamespace
from typing import Callable, Dict, List

import torch

from .errors import UnsupportedOpsError
from .writer import DTypeAttr

aten = torch.ops.aten


class Emitter:
    """What translations use (implemented by exporter._Builder)."""
    ids: Dict[str, int]


# High-level ops kept out of the decomposition table, because ember runs them natively.
KEEP_OPS = [
    aten.linear.default, aten.matmul.default, aten.dropout.default, aten.flatten.using_ints,
    aten.softmax.int, aten.log_softmax.int, aten.silu.default, aten.hardswish.default, aten.hardsigmoid.default,
    aten.leaky_relu.default, aten.elu.default, aten.softplus.default, aten.gelu.default, aten.reshape.default,
    aten.logsumexp.default, aten.embedding.default, aten.hardtanh.default, aten.t.default, aten.squeeze.dims,
    aten.mean.dim, aten.var.correction, aten.contiguous.default if hasattr(aten, "contiguous") else aten.clone.default,
    aten.upsample_nearest2d.vec, aten.upsample_bilinear2d.vec, aten.pixel_shuffle.default,
    aten.adaptive_avg_pool2d.default, aten.layer_norm.default, aten.scaled_dot_product_attention.default,
] + ([aten.rms_norm.default] if hasattr(aten, "rms_norm") else [])

TRANSLATIONS: Dict[object, Callable] = {}


def _dtype(dt):
    from .exporter import dtype_name
    return DTypeAttr(dtype_name(dt))


def _in(b, a) -> int:
    if a is None:
        return -1
    if not isinstance(a, torch.fx.Node) or a.name not in b.ids:
        raise UnsupportedOpsError([f"argument {a!r} (not a tensor the graph computes)"])
    return b.ids[a.name]


def _is_tensor_arg(a) -> bool:
    return isinstance(a, torch.fx.Node) and isinstance(a.meta.get("val"), torch.Tensor)


def _number(a):
    if isinstance(a, (bool, int, float)):
        return a
    raise UnsupportedOpsError([f"non-constant scalar argument {a!r}"])


def _sizes(a) -> List[int]:
    """A size list; symbolic entries (sym_size nodes, SymInt arithmetic) become -1."""
    out = []
    for d in a:
        out.append(int(d) if isinstance(d, int) else -1)
    return out


def _out(b, n, op, inputs, attrs=None, index=None):
    """Emits `op` producing the value of fx node `n` (or its `index`-th output)."""
    val = n.meta["val"] if index is None else n.meta["val"][index]
    name = n.name if index is None else f"{n.name}_{index}"
    vid = b.add_value(name, val, "intermediate")
    b.ids[n.name if index is None else f"{n.name}[{index}]"] = vid
    return vid


def _emit1(b, n, op, inputs, attrs=None):
    vid = _out(b, n, op, inputs)
    b.emit(op, [_in(b, x) for x in inputs], attrs or {}, [vid], n.name)
    return vid


def _arg(n, i, name, default=None):
    if len(n.args) > i:
        return n.args[i]
    return n.kwargs.get(name, default)


def register(*targets):
    def wrap(fn):
        for t in targets:
            TRANSLATIONS[t] = fn
        return fn
    return wrap


def _unary(op):
    return lambda b, n: _emit1(b, n, op, [n.args[0]])


for _name in ["neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "erf",
              "reciprocal", "relu", "sign", "silu", "hardswish", "hardsigmoid", "logical_not"]:
    TRANSLATIONS[getattr(aten, _name).default] = _unary(_name)


@register(aten.gelu.default)
def _gelu(b, n):
    _emit1(b, n, "gelu", [n.args[0]], {"approximate": _arg(n, 1, "approximate", "none")})


@register(aten.leaky_relu.default)
def _leaky(b, n):
    _emit1(b, n, "leaky_relu", [n.args[0]], {"negative_slope": float(_arg(n, 1, "negative_slope", 0.01))})


@register(aten.elu.default)
def _elu(b, n):
    if float(_arg(n, 2, "scale", 1)) != 1 or float(_arg(n, 3, "input_scale", 1)) != 1:
        raise UnsupportedOpsError(["aten.elu with scale or input_scale other than 1"])
    _emit1(b, n, "elu", [n.args[0]], {"alpha": float(_arg(n, 1, "alpha", 1.0))})


@register(aten.softplus.default)
def _softplus(b, n):
    _emit1(b, n, "softplus", [n.args[0]], {"beta": float(_arg(n, 1, "beta", 1)), "threshold": float(_arg(n, 2, "threshold", 20))})


@register(aten.hardtanh.default)
def _hardtanh(b, n):
    _emit1(b, n, "clamp", [n.args[0]], {"min": _number(_arg(n, 1, "min_val", -1.0)), "max": _number(_arg(n, 2, "max_val", 1.0))})


@register(aten.clamp.default)
def _clamp(b, n):
    lo, hi = _arg(n, 1, "min"), _arg(n, 2, "max")
    _emit1(b, n, "clamp", [n.args[0]], {"min": None if lo is None else _number(lo), "max": None if hi is None else _number(hi)})


@register(aten.clamp_min.default)
def _clamp_min(b, n):
    _emit1(b, n, "clamp", [n.args[0]], {"min": _number(n.args[1])})


@register(aten.clamp_max.default)
def _clamp_max(b, n):
    _emit1(b, n, "clamp", [n.args[0]], {"max": _number(n.args[1])})


def _binary(op, with_alpha=False):
    def fn(b, n):
        a, o = n.args[0], n.args[1]
        attrs = {}
        if with_alpha:
            alpha = _arg(n, 2, "alpha", 1)
            if alpha != 1:
                attrs["alpha"] = _number(alpha)
        if _is_tensor_arg(o):
            _emit1(b, n, op, [a, o], attrs)
        else:
            attrs["other"] = _number(o)
            _emit1(b, n, op, [a], attrs)
    return fn


for _name, _alpha in [("add", True), ("sub", True), ("mul", False), ("div", False), ("remainder", False),
                      ("eq", False), ("ne", False), ("lt", False), ("le", False), ("gt", False), ("ge", False)]:
    for _ov in ("Tensor", "Scalar"):
        if hasattr(getattr(aten, _name), _ov):
            TRANSLATIONS[getattr(getattr(aten, _name), _ov)] = _binary(_name, _alpha)
for _name in ["maximum", "minimum", "logical_and", "logical_or"]:
    TRANSLATIONS[getattr(aten, _name).default] = _binary(_name)
TRANSLATIONS[aten.rsub.Scalar] = _binary("rsub", True)
TRANSLATIONS[aten.rsub.Tensor] = _binary("rsub", True)
TRANSLATIONS[aten.pow.Tensor_Scalar] = _binary("pow")
TRANSLATIONS[aten.pow.Tensor_Tensor] = _binary("pow")


@register(aten.div.Tensor_mode, aten.div.Scalar_mode)
def _div_mode(b, n):
    a, o = n.args[0], n.args[1]
    attrs = {}
    mode = _arg(n, 2, "rounding_mode")
    if mode is not None:
        attrs["rounding_mode"] = mode
    if _is_tensor_arg(o):
        _emit1(b, n, "div", [a, o], attrs)
    else:
        attrs["other"] = _number(o)
        _emit1(b, n, "div", [a], attrs)


@register(aten.where.self, aten.where.ScalarSelf if hasattr(aten.where, "ScalarSelf") else aten.where.self,
          aten.where.ScalarOther if hasattr(aten.where, "ScalarOther") else aten.where.self)
def _where(b, n):
    cond, x, y = n.args[0], n.args[1], n.args[2]
    inputs, attrs = [cond], {}
    if _is_tensor_arg(x):
        inputs.append(x)
    else:
        attrs["self"] = _number(x)
    if _is_tensor_arg(y):
        inputs.append(y)
    else:
        attrs["other"] = _number(y)
    _emit1(b, n, "where", inputs, attrs)


@register(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def _masked_fill(b, n):
    x, mask, v = n.args[0], n.args[1], n.args[2]
    if _is_tensor_arg(v):
        _emit1(b, n, "masked_fill", [x, mask, v])
    else:
        _emit1(b, n, "masked_fill", [x, mask], {"value": _number(v)})


# ---- matrix products -------------------------------------------------------------------------

@register(aten.linear.default)
def _linear(b, n):
    bias = _arg(n, 2, "bias")
    _emit1(b, n, "linear", [n.args[0], n.args[1]] + ([bias] if bias is not None else []))


for _name in ["mm", "bmm", "matmul"]:
    TRANSLATIONS[getattr(aten, _name).default] = (lambda op: lambda b, n: _emit1(b, n, op, [n.args[0], n.args[1]]))(_name)


@register(aten.addmm.default)
def _addmm(b, n):
    _emit1(b, n, "addmm", [n.args[0], n.args[1], n.args[2]],
           {"beta": float(_arg(n, 3, "beta", 1)), "alpha": float(_arg(n, 4, "alpha", 1))})


# ---- reductions ------------------------------------------------------------------------------

def _cast_first(b, n, x, dtype):
    """The value id of tensor argument x, cast to dtype by an extra node when a reduction asks."""
    if dtype is None or x.meta["val"].dtype == dtype:
        return _in(b, x)
    val = x.meta["val"]
    vid = b.add_value(f"{n.name}_cast", SimpleNamespace(shape=val.shape, dtype=dtype), "intermediate")
    b.emit("cast", [_in(b, x)], {"dtype": _dtype(dtype)}, [vid], f"{n.name}_cast")
    return vid


def _reduction(op, default_dims=None):
    def fn(b, n):
        x = n.args[0]
        dims = _arg(n, 1, "dim", default_dims)
        keepdim = bool(_arg(n, 2, "keepdim", False))
        dtype = n.kwargs.get("dtype")
        src = _cast_first(b, n, x, dtype)
        attrs = {"keepdim": keepdim}
        if dims is not None:
            attrs["dims"] = [dims] if isinstance(dims, int) else list(dims)
        vid = _out(b, n, op, [])
        b.emit(op, [src], attrs, [vid], n.name)
    return fn


TRANSLATIONS[aten.sum.dim_IntList] = _reduction("sum")
TRANSLATIONS[aten.mean.dim] = _reduction("mean")
TRANSLATIONS[aten.amax.default] = _reduction("amax")
TRANSLATIONS[aten.amin.default] = _reduction("amin")
TRANSLATIONS[aten.logsumexp.default] = _reduction("logsumexp")


@register(aten.sum.default, aten.mean.default)
def _reduce_all(b, n):
    op = "sum" if "sum" in str(n.target) else "mean"
    src = _cast_first(b, n, n.args[0], n.kwargs.get("dtype", _arg(n, 1, "dtype")))
    vid = _out(b, n, op, [])
    b.emit(op, [src], {"keepdim": False}, [vid], n.name)


@register(aten.var.correction)
def _var(b, n):
    dims = _arg(n, 1, "dim")
    correction = n.kwargs.get("correction", 1)
    attrs = {"keepdim": bool(n.kwargs.get("keepdim", False)), "correction": float(1 if correction is None else correction)}
    if dims is not None:
        attrs["dims"] = list(dims)
    _emit1(b, n, "var", [n.args[0]], attrs)


@register(aten.argmax.default)
def _argmax(b, n):
    dim = _arg(n, 1, "dim")
    _emit1(b, n, "argmax", [n.args[0]], {"dim": dim, "keepdim": bool(_arg(n, 2, "keepdim", False))})


@register(aten._softmax.default, aten.softmax.int)
def _softmax(b, n):
    _emit1(b, n, "softmax", [n.args[0]], {"dim": int(n.args[1])})


@register(aten._log_softmax.default, aten.log_softmax.int)
def _log_softmax(b, n):
    _emit1(b, n, "log_softmax", [n.args[0]], {"dim": int(n.args[1])})


# ---- shapes ----------------------------------------------------------------------------------

@register(aten.view.default, aten._unsafe_view.default, aten.reshape.default)
def _reshape(b, n):
    shape = _sizes(n.args[1])
    if shape.count(-1) > 1:
        # More than one symbolic size: take them from the traced shape where they are fixed.
        raise UnsupportedOpsError([f"{n.target} to a shape with several symbolic sizes"])
    _emit1(b, n, "reshape", [n.args[0]], {"shape": shape})


@register(aten.flatten.using_ints)
def _flatten(b, n):
    _emit1(b, n, "flatten", [n.args[0]], {"start_dim": int(_arg(n, 1, "start_dim", 0)), "end_dim": int(_arg(n, 2, "end_dim", -1))})


@register(aten.permute.default)
def _permute(b, n):
    _emit1(b, n, "permute", [n.args[0]], {"dims": list(n.args[1])})


@register(aten.transpose.int)
def _transpose(b, n):
    _emit1(b, n, "transpose", [n.args[0]], {"dim0": int(n.args[1]), "dim1": int(n.args[2])})


@register(aten.t.default)
def _t(b, n):
    if n.args[0].meta["val"].dim() < 2:
        _emit1(b, n, "contiguous", [n.args[0]])
    else:
        _emit1(b, n, "transpose", [n.args[0]], {"dim0": 0, "dim1": 1})


@register(aten.unsqueeze.default)
def _unsqueeze(b, n):
    _emit1(b, n, "unsqueeze", [n.args[0]], {"dim": int(n.args[1])})


@register(aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default)
def _squeeze(b, n):
    dims = _arg(n, 1, "dim")
    attrs = {} if dims is None else {"dims": [dims] if isinstance(dims, int) else list(dims)}
    _emit1(b, n, "squeeze", [n.args[0]], attrs)


@register(aten.expand.default)
def _expand(b, n):
    # The target sizes from the output's shape: PyTorch's -1 ("keep this size") is then a
    # number like any other. A symbolic size becomes ember's -1, which keeps the input's size:
    # right only where the input already has that same symbolic size.
    src = list(n.args[0].meta["val"].shape)
    out = list(n.meta["val"].shape)
    shape = []
    for i, d in enumerate(out):
        if isinstance(d, int):
            shape.append(d)
            continue
        j = i - (len(out) - len(src))
        if j < 0 or isinstance(src[j], int) or str(src[j]) != str(d):
            raise UnsupportedOpsError([f"{n.target} of a size-1 dim to a symbolic size"])
        shape.append(-1)
    _emit1(b, n, "expand", [n.args[0]], {"shape": shape})


@register(aten.slice.Tensor)
def _slice(b, n):
    start, end = _arg(n, 2, "start"), _arg(n, 3, "end")
    for v in (start, end):
        if v is not None and not isinstance(v, int):
            raise UnsupportedOpsError([f"{n.target} with symbolic bounds"])
    _emit1(b, n, "slice", [n.args[0]], {"dim": int(_arg(n, 1, "dim", 0)), "start": start, "end": end,
                                         "step": int(_arg(n, 4, "step", 1))})


@register(aten.select.int)
def _select(b, n):
    _emit1(b, n, "select", [n.args[0]], {"dim": int(n.args[1]), "index": int(n.args[2])})


@register(aten.cat.default, aten.stack.default)
def _cat(b, n):
    op = "cat" if "cat" in str(n.target) else "stack"
    tensors = list(n.args[0])
    vid = _out(b, n, op, [])
    b.emit(op, [_in(b, t) for t in tensors], {"dim": int(_arg(n, 1, "dim", 0))}, [vid], n.name)


@register(aten.split_with_sizes.default, aten.split.Tensor, aten.chunk.default)
def _split(b, n):
    vals = n.meta["val"]
    dim = int(_arg(n, 2, "dim", 0))
    sizes = [int(v.shape[dim]) for v in vals]
    outs = [_out(b, n, "split", [], index=i) for i in range(len(vals))]
    b.emit("split", [_in(b, n.args[0])], {"sizes": sizes, "dim": dim}, outs, n.name)


for _name, _op in [("clone", "clone"), ("alias", "contiguous"), ("lift_fresh_copy", "clone"), ("detach", "detach")]:
    if hasattr(aten, _name):
        TRANSLATIONS[getattr(aten, _name).default] = (lambda op: lambda b, n: _emit1(b, n, op, [n.args[0]]))(_op)
if hasattr(aten, "contiguous"):
    TRANSLATIONS[aten.contiguous.default] = lambda b, n: _emit1(b, n, "contiguous", [n.args[0]])


@register(aten._to_copy.default, aten.to.dtype)
def _to_copy(b, n):
    src, out = n.args[0].meta["val"], n.meta["val"]
    if out.dtype != src.dtype:
        _emit1(b, n, "cast", [n.args[0]], {"dtype": _dtype(out.dtype)})
    else:
        _emit1(b, n, "clone", [n.args[0]])  # a device move: the loaded model runs on one device


# ---- creation --------------------------------------------------------------------------------

def _full_like_shape(b, n, value):
    out = n.meta["val"]
    if any(not isinstance(d, int) for d in out.shape):
        raise UnsupportedOpsError([f"{n.target} of a symbolic shape"])
    vid = _out(b, n, "full", [])
    b.emit("full", [], {"shape": [int(d) for d in out.shape], "value": value, "dtype": _dtype(out.dtype)}, [vid], n.name)


@register(aten.full.default)
def _full(b, n):
    _full_like_shape(b, n, _number(n.args[1]))


@register(aten.zeros.default, aten.ones.default)
def _zeros_ones(b, n):
    _full_like_shape(b, n, 0 if "zeros" in str(n.target) else 1)


@register(aten.scalar_tensor.default)
def _scalar_tensor(b, n):
    _full_like_shape(b, n, _number(n.args[0]))


@register(aten.full_like.default, aten.zeros_like.default, aten.ones_like.default)
def _full_like(b, n):
    name = str(n.target)
    value = 0 if "zeros" in name else 1 if "ones" in name else _number(n.args[1])
    _emit1(b, n, "full_like", [n.args[0]], {"value": value, "dtype": _dtype(n.meta["val"].dtype)})


@register(aten.arange.default, aten.arange.start, aten.arange.start_step)
def _arange(b, n):
    nums = [_number(a) for a in n.args]
    start, end, step = (0, nums[0], 1) if len(nums) == 1 else (nums[0], nums[1], nums[2] if len(nums) > 2 else 1)
    vid = _out(b, n, "arange", [])
    b.emit("arange", [], {"start": start, "end": end, "step": step, "dtype": _dtype(n.meta["val"].dtype)}, [vid], n.name)


# ---- neural-network ops ----------------------------------------------------------------------

@register(aten.dropout.default)
def _dropout(b, n):
    _emit1(b, n, "dropout", [n.args[0]], {"p": float(n.args[1])})


@register(aten.native_dropout.default)
def _native_dropout(b, n):
    vid = _out(b, n, "dropout", [], index=0)
    b.emit("dropout", [_in(b, n.args[0])], {"p": float(n.args[1])}, [vid], n.name)


@register(aten.embedding.default)
def _embedding(b, n):
    pad = int(_arg(n, 2, "padding_idx", -1))
    _emit1(b, n, "embedding", [n.args[0], n.args[1]], {"padding_idx": None if pad == -1 else pad})


@register(aten.layer_norm.default)
def _layer_norm(b, n):
    x, shape = n.args[0], n.args[1]
    weight, bias = _arg(n, 2, "weight"), _arg(n, 3, "bias")
    b.emit("layer_norm", [_in(b, x), _in(b, weight), _in(b, bias)],
           {"normalized_shape": [int(d) for d in shape], "eps": float(_arg(n, 4, "eps", 1e-5))},
           [_out(b, n, "layer_norm", [])], n.name)


@register(aten.native_layer_norm.default)
def _native_layer_norm(b, n):
    # Outputs (y, mean, rstd); only y is used by models in evaluation and by ember's backward.
    x, shape, weight, bias, eps = n.args[:5]
    vid = _out(b, n, "layer_norm", [], index=0)
    b.emit("layer_norm", [_in(b, x), _in(b, weight), _in(b, bias)],
           {"normalized_shape": [int(d) for d in shape], "eps": float(eps)}, [vid], n.name)


if hasattr(aten, "rms_norm"):
    @register(aten.rms_norm.default)
    def _rms_norm(b, n):
        eps = _arg(n, 3, "eps")
        b.emit("rms_norm", [_in(b, n.args[0]), _in(b, _arg(n, 2, "weight"))],
               {"normalized_shape": [int(d) for d in n.args[1]], "eps": None if eps is None else float(eps)},
               [_out(b, n, "rms_norm", [])], n.name)


@register(aten.scaled_dot_product_attention.default)
def _sdpa(b, n):
    q, k, v = n.args[:3]
    mask = _arg(n, 3, "attn_mask")
    scale = n.kwargs.get("scale")
    attrs = {"dropout_p": float(_arg(n, 4, "dropout_p", 0.0)), "is_causal": bool(_arg(n, 5, "is_causal", False)),
             "scale": None if scale is None else float(scale), "enable_gqa": bool(n.kwargs.get("enable_gqa", False))}
    b.emit("scaled_dot_product_attention", [_in(b, q), _in(b, k), _in(b, v), _in(b, mask)], attrs,
           [_out(b, n, "scaled_dot_product_attention", [])], n.name)


@register(aten.index_select.default)
def _index_select(b, n):
    _emit1(b, n, "index_select", [n.args[0], n.args[2]], {"dim": int(n.args[1])})


@register(aten.gather.default)
def _gather(b, n):
    _emit1(b, n, "gather", [n.args[0], n.args[2]], {"dim": int(n.args[1])})


# ---- convolutional networks --------------------------------------------------------------------

@register(aten.convolution.default)
def _convolution(b, n):
    x, w, bias, stride, padding, dilation, transposed, output_padding, groups = n.args[:9]
    inputs = [x, w] + ([bias] if bias is not None else [])
    _emit1(b, n, "convolution", inputs, {"stride": list(stride), "padding": list(padding), "dilation": list(dilation),
                                         "transposed": bool(transposed), "output_padding": list(output_padding),
                                         "groups": int(groups)})


@register(aten.conv2d.default, aten.conv1d.default)
def _conv(b, n):
    x, w = n.args[0], n.args[1]
    bias = _arg(n, 2, "bias")
    padding = _arg(n, 4, "padding", 0)
    if isinstance(padding, str):
        raise UnsupportedOpsError([f"{n.target} with padding={padding!r} (export decomposes it)"])
    as_list = lambda v: [v] if isinstance(v, int) else list(v)  # noqa: E731
    _emit1(b, n, "convolution", [x, w] + ([bias] if bias is not None else []),
           {"stride": as_list(_arg(n, 3, "stride", 1)), "padding": as_list(padding),
            "dilation": as_list(_arg(n, 5, "dilation", 1)), "groups": int(_arg(n, 6, "groups", 1))})


@register(aten.max_pool2d_with_indices.default, aten.max_pool2d.default)
def _max_pool2d(b, n):
    kernel = list(n.args[1])
    stride = list(_arg(n, 2, "stride", [])) or kernel
    attrs = {"kernel": kernel, "stride": stride, "padding": list(_arg(n, 3, "padding", [0, 0])),
             "dilation": list(_arg(n, 4, "dilation", [1, 1])), "ceil_mode": bool(_arg(n, 5, "ceil_mode", False))}
    if "with_indices" in str(n.target):  # (values, indices): the values only
        vid = _out(b, n, "max_pool2d", [], index=0)
        b.emit("max_pool2d", [_in(b, n.args[0])], attrs, [vid], n.name)
    else:
        _emit1(b, n, "max_pool2d", [n.args[0]], attrs)


@register(aten.avg_pool2d.default)
def _avg_pool2d(b, n):
    kernel = list(n.args[1])
    stride = list(_arg(n, 2, "stride", [])) or kernel
    div = _arg(n, 6, "divisor_override")
    _emit1(b, n, "avg_pool2d", [n.args[0]], {"kernel": kernel, "stride": stride,
                                              "padding": list(_arg(n, 3, "padding", [0, 0])),
                                              "ceil_mode": bool(_arg(n, 4, "ceil_mode", False)),
                                              "count_include_pad": bool(_arg(n, 5, "count_include_pad", True)),
                                              "divisor_override": None if div is None else int(div)})


@register(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg_pool2d(b, n):
    _emit1(b, n, "adaptive_avg_pool2d", [n.args[0]], {"output_size": [int(v) for v in n.args[1]]})


@register(aten._native_batch_norm_legit_no_training.default)
def _batch_norm_eval(b, n):
    x, weight, bias, mean, var, momentum, eps = n.args[:7]
    vid = _out(b, n, "batch_norm", [], index=0)
    b.emit("batch_norm", [_in(b, x), _in(b, weight), _in(b, bias), _in(b, mean), _in(b, var)],
           {"momentum": float(momentum), "eps": float(eps)}, [vid], n.name)


@register(aten.batch_norm.default)
def _batch_norm(b, n):
    x, weight, bias, mean, var, _training, momentum, eps = n.args[:8]
    _emit1(b, n, "batch_norm", [x, weight, bias, mean, var], {"momentum": float(momentum), "eps": float(eps)})


@register(aten.native_group_norm.default)
def _group_norm(b, n):
    x, weight, bias = n.args[0], n.args[1], n.args[2]
    groups, eps = n.args[6], n.args[7]
    vid = _out(b, n, "group_norm", [], index=0)
    b.emit("group_norm", [_in(b, x), _in(b, weight), _in(b, bias)], {"groups": int(groups), "eps": float(eps)}, [vid], n.name)


@register(aten.upsample_nearest2d.vec, aten.upsample_bilinear2d.vec)
def _upsample(b, n):
    out = n.meta["val"]
    if any(not isinstance(d, int) for d in out.shape[2:]):
        raise UnsupportedOpsError([f"{n.target} to a symbolic size"])
    bilinear = "bilinear" in str(n.target)
    attrs = {"size": [int(out.shape[2]), int(out.shape[3])], "mode": "bilinear" if bilinear else "nearest"}
    if bilinear:
        attrs["align_corners"] = bool(n.args[2])
    scales = n.args[3] if bilinear and len(n.args) > 3 else (n.args[2] if not bilinear and len(n.args) > 2 else None)
    if scales is not None:  # PyTorch then maps indices by 1/scale, not in/out
        attrs["scale_factors"] = [float(v) for v in scales]
    _emit1(b, n, "interpolate", [n.args[0]], attrs)


@register(aten.pixel_shuffle.default)
def _pixel_shuffle(b, n):
    _emit1(b, n, "pixel_shuffle", [n.args[0]], {"upscale_factor": int(n.args[1])})

#include "graph/passes.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <optional>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember::graph {

std::string PassStats::summary() const {
  return str_cat(nodes_before, " nodes -> ", nodes_after, " (", identities_removed, " identities removed, ",
                 constants_folded, " folded into constants, ", batch_norms_folded, " batch norms folded, ",
                 attention_blocks_fused, " attention blocks fused, ", activations_fused, " activations fused into linears, ", conv_epilogues_fused,
                 " into convolutions, ", add_norms_fused, " residual adds into layer norms, ",
                 dead_nodes_removed, " dead", tensors_converted ? str_cat("; ", tensors_converted, " tensors in reduced precision") : "", ")");
}

namespace {

void erase_marked(Graph& g, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!removed[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
}

bool returns_its_input(const Graph& g, const Node& n) {
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  if (n.op == "dropout" || n.op == "detach") return true;  // dropout: evaluation mode only
  // A clone's values are its input's, and no node of an inference graph writes into a value
  // (exported graphs are functional): readers may read the input itself, whatever its strides.
  // Not where the clone is a graph output: the caller must get a tensor of its own, not a
  // weight or an input.
  if (n.op == "clone")
    return std::find(g.outputs.begin(), g.outputs.end(), n.outputs[0]) == g.outputs.end();
  if (n.op == "cast") {
    const DType from = g.values[n.inputs[0]].dtype;
    return n.attributes.get_dtype("dtype") == from && g.values[n.outputs[0]].dtype == from;
  }
  return false;
}

// Readers of each value: node indices, and whether a graph output is the value.
std::vector<int> use_counts(const Graph& g) {
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int32_t id : n.inputs)
      if (id >= 0) ++uses[id];
  for (uint32_t id : g.outputs) ++uses[id];
  return uses;
}

// The index of the node making each value; -1 for inputs and stored values.
std::vector<int64_t> producers(const Graph& g) {
  std::vector<int64_t> producer(g.values.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (uint32_t id : g.nodes[k].outputs) producer[id] = static_cast<int64_t>(k);
  return producer;
}

bool is_stored(const std::vector<Tensor>& stored, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < stored.size() && stored[id].defined();
}

uint32_t add_constant(Graph& g, std::vector<Tensor>& stored, const std::string& name, const Tensor& t) {
  Value v;
  v.name = name;
  v.dtype = t.dtype();
  for (int64_t s : t.sizes()) v.shape.push_back(Dim{s, ""});
  v.kind = ValueKind::Constant;
  g.values.push_back(std::move(v));
  stored.resize(g.values.size());
  stored.back() = t;
  return static_cast<uint32_t>(g.values.size() - 1);
}

}  // namespace

int remove_identities(Graph& g) {
  std::vector<int32_t> alias(g.values.size());
  for (size_t id = 0; id < alias.size(); ++id) alias[id] = static_cast<int32_t>(id);
  std::vector<bool> removed(g.nodes.size(), false);
  int count = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& n = g.nodes[k];
    for (int32_t& id : n.inputs)
      if (id >= 0) id = alias[id];
    if (!returns_its_input(g, n)) continue;
    alias[n.outputs[0]] = n.inputs[0];
    removed[k] = true;
    ++count;
  }
  for (uint32_t& id : g.outputs) id = static_cast<uint32_t>(alias[id]);
  erase_marked(g, removed);
  return count;
}

int fold_constants(Graph& g, std::vector<Tensor>& stored, const RunContext& ctx, size_t max_bytes) {
  NoGradGuard no_grad;
  stored.resize(g.values.size());
  std::vector<bool> removed(g.nodes.size(), false);
  int count = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    bool all_stored = true;
    TensorList args;
    for (int32_t id : n.inputs) {
      if (id >= 0 && !is_stored(stored, id)) all_stored = false;
      args.push_back(id >= 0 ? stored[id] : Tensor());
    }
    if (!all_stored) continue;
    TensorList out;
    try {
      out = find_graph_op(n.op)->run(args, n.attributes, ctx);
    } catch (const Error&) {
      continue;  // left to run time, which reports the error with the node's name
    } catch (const std::bad_alloc&) {
      continue;
    }
    if (out.size() != n.outputs.size()) continue;
    bool small = true;
    for (const Tensor& t : out) {
      bool view_of_input = false;
      for (const Tensor& a : args)
        if (a.defined() && t.defined() && a.storage() == t.storage()) view_of_input = true;
      if (t.defined() && !view_of_input && t.nbytes() > max_bytes) small = false;
    }
    if (!small) continue;
    for (size_t j = 0; j < out.size(); ++j) {
      stored[n.outputs[j]] = out[j];
      g.values[n.outputs[j]].kind = ValueKind::Constant;
    }
    removed[k] = true;
    ++count;
  }
  erase_marked(g, removed);
  return count;
}

int fold_conv_batch_norm(Graph& g, std::vector<Tensor>& stored) {
  NoGradGuard no_grad;
  stored.resize(g.values.size());
  const std::vector<int> uses = use_counts(g);
  const std::vector<int64_t> producer = producers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int count = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& bn = g.nodes[k];
    if (bn.op != "batch_norm" || bn.inputs.size() != 5 || bn.inputs[0] < 0) continue;
    const int32_t y = bn.inputs[0];
    if (uses[y] != 1 || producer[y] < 0) continue;
    Node& conv = g.nodes[producer[y]];
    if (conv.op != "convolution" || conv.attributes.get_bool("transposed", false) || conv.inputs.size() < 2) continue;
    const int32_t w_id = conv.inputs[1], b_id = conv.inputs.size() > 2 ? conv.inputs[2] : -1;
    const int32_t gamma_id = bn.inputs[1], beta_id = bn.inputs[2], mean_id = bn.inputs[3], var_id = bn.inputs[4];
    if (!is_stored(stored, w_id) || (b_id >= 0 && !is_stored(stored, b_id)) || !is_stored(stored, mean_id) ||
        !is_stored(stored, var_id) || (gamma_id >= 0 && !is_stored(stored, gamma_id)) ||
        (beta_id >= 0 && !is_stored(stored, beta_id)))
      continue;
    const Tensor& w = stored[w_id];
    if (!is_floating(w.dtype()) || w.dim() < 3) continue;
    const int64_t channels = w.sizes()[0];
    auto f64 = [&](int32_t id, double fallback) {
      return id >= 0 ? stored[id].to(kFloat64) : full({channels}, fallback, {kFloat64, w.device()});
    };
    const double eps = bn.attributes.get_float("eps", 1e-5);
    Tensor scale = div(f64(gamma_id, 1.0), sqrt(add(f64(var_id, 0.0), eps)));
    Shape per_channel(static_cast<size_t>(w.dim()), 1);
    per_channel[0] = channels;
    Tensor folded_w = mul(w.to(kFloat64), reshape(scale, per_channel)).to(w.dtype()).contiguous();
    Tensor folded_b = add(mul(sub(f64(b_id, 0.0), f64(mean_id, 0.0)), scale), f64(beta_id, 0.0)).to(w.dtype());
    const std::string base = g.values[w_id].name;
    const uint32_t new_w = add_constant(g, stored, base + "+bn", folded_w);
    const uint32_t new_b = add_constant(g, stored, base + "+bn.bias", folded_b);
    conv.inputs = {conv.inputs[0], static_cast<int32_t>(new_w), static_cast<int32_t>(new_b)};
    conv.outputs[0] = bn.outputs[0];
    removed[k] = true;
    ++count;
  }
  erase_marked(g, removed);
  return count;
}

int fuse_linear_activation(Graph& g) {
  const std::vector<int> uses = use_counts(g);
  const std::vector<int64_t> producer = producers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int count = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& act = g.nodes[k];
    if (act.inputs.size() != 1 || act.outputs.size() != 1 || act.inputs[0] < 0) continue;
    std::string activation;
    if (act.op == "relu") activation = "relu";
    else if (act.op == "gelu" && act.attributes.get_string("approximate", "none") == "tanh") activation = "gelu_tanh";
    else continue;
    const int32_t y = act.inputs[0];
    if (uses[y] != 1 || producer[y] < 0) continue;  // the bare product is read elsewhere too
    Node& lin = g.nodes[producer[y]];
    if (lin.op != "linear" || lin.outputs.size() != 1 || lin.attributes.get_string("activation", "none") != "none") continue;
    if (activation == "gelu_tanh" && !is_floating(g.values[y].dtype)) continue;
    lin.attributes.values["activation"] = activation;
    lin.outputs[0] = act.outputs[0];
    removed[k] = true;
    ++count;
  }
  erase_marked(g, removed);
  return count;
}

namespace {

bool same_layout(const Value& a, const Value& b) {
  if (a.dtype != b.dtype || a.shape.size() != b.shape.size()) return false;
  for (size_t d = 0; d < a.shape.size(); ++d)
    if (a.shape[d].size != b.shape[d].size || a.shape[d].symbol != b.shape[d].symbol) return false;
  return true;
}

// An add of two tensors with no scale (alpha 1): what a skip connection or residual stream writes.
bool plain_add(const Node& n) {
  return n.op == "add" && n.inputs.size() == 2 && n.outputs.size() == 1 && !n.attributes.has("other") &&
         (!n.attributes.has("alpha") || n.attributes.get_float("alpha") == 1.0) && n.inputs[0] >= 0 && n.inputs[1] >= 0;
}

// A plain 2-d convolution with nothing fused into it yet.
bool fusable_conv(const Graph& g, const Node& n) {
  return n.op == "convolution" && n.outputs.size() == 1 && n.inputs.size() >= 2 && n.inputs.size() <= 3 &&
         n.inputs[0] >= 0 && g.values[n.inputs[0]].shape.size() == 4 && !n.attributes.get_bool("transposed", false) &&
         !n.attributes.has("activation_min") && !n.attributes.has("activation_max") &&
         is_floating(g.values[n.outputs[0]].dtype);
}

}  // namespace

namespace {

struct ConvFusion {
  Graph& g;
  const std::vector<int> uses;
  const std::vector<int64_t> producer;
  std::vector<bool> removed;
  int count = 0;

  explicit ConvFusion(Graph& graph)
      : g(graph), uses(use_counts(graph)), producer(producers(graph)), removed(graph.nodes.size(), false) {}

  // The node making `id`, where nothing else reads it and it is still in place; else nullptr.
  Node* sole_producer(int32_t id) {
    if (id < 0 || uses[id] != 1 || producer[id] < 0 || removed[producer[id]]) return nullptr;
    return &g.nodes[producer[id]];
  }

  void absorb(Node& conv, int32_t residual, std::optional<double> lo, std::optional<double> hi, uint32_t out) {
    if (residual >= 0) {
      if (conv.inputs.size() < 3) conv.inputs.push_back(-1);  // no bias
      conv.inputs.push_back(residual);
    }
    if (lo) conv.attributes.values["activation_min"] = *lo;
    if (hi) conv.attributes.values["activation_max"] = *hi;
    conv.outputs[0] = out;
    ++count;
  }

  // The add at `a`, of a convolution's output read only there and a skip of the same shape:
  // the convolution, with the skip as its residual (and the bounds), takes the add's place —
  // after both of the add's inputs are made, before any reader of `out`.
  bool into_add(size_t a, std::optional<double> lo, std::optional<double> hi, uint32_t out) {
    const Node& add = g.nodes[a];
    if (!plain_add(add)) return false;
    for (int side = 0; side < 2; ++side) {
      const int32_t c = add.inputs[side], skip = add.inputs[1 - side];
      Node* conv = c == skip ? nullptr : sole_producer(c);
      if (!conv || !fusable_conv(g, *conv) || !same_layout(g.values[c], g.values[skip]) ||
          !same_layout(g.values[c], g.values[out]))
        continue;
      removed[static_cast<size_t>(producer[c])] = true;
      Node moved = std::move(*conv);
      absorb(moved, skip, lo, hi, out);
      g.nodes[a] = std::move(moved);
      return true;
    }
    return false;
  }
};

}  // namespace

int fuse_conv_activation(Graph& g) {
  ConvFusion f(g);
  // conv → relu / clamp, and conv → add(conv, skip) → relu / clamp (ResNet blocks).
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& act = g.nodes[k];
    if (f.removed[k] || act.inputs.size() != 1 || act.outputs.size() != 1 || act.inputs[0] < 0) continue;
    std::optional<double> lo, hi;
    if (act.op == "relu") {
      lo = 0.0;
    } else if (act.op == "clamp" && (act.attributes.has("min") || act.attributes.has("max"))) {
      if (!act.attributes.is_none("min")) lo = act.attributes.get_float("min");
      if (!act.attributes.is_none("max")) hi = act.attributes.get_float("max");
    } else {
      continue;
    }
    Node* p = f.sole_producer(act.inputs[0]);
    if (!p) continue;
    const uint32_t out = act.outputs[0];
    if (fusable_conv(g, *p)) {
      f.absorb(*p, -1, lo, hi, out);
      f.removed[k] = true;
    } else if (f.into_add(static_cast<size_t>(f.producer[act.inputs[0]]), lo, hi, out)) {
      f.removed[k] = true;
    }
  }
  // conv → add(conv, skip) with no activation after it (MobileNetV2's inverted residuals).
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!f.removed[k] && g.nodes[k].op == "add" && g.nodes[k].outputs.size() == 1)
      f.into_add(k, std::nullopt, std::nullopt, g.nodes[k].outputs[0]);
  erase_marked(g, f.removed);
  return f.count;
}

int fuse_add_layer_norm(Graph& g) {
  const std::vector<int64_t> producer = producers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int count = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& norm = g.nodes[k];
    if (norm.op != "layer_norm" || norm.outputs.size() != 1 || norm.inputs.empty() || norm.inputs[0] < 0) continue;
    const int32_t sum = norm.inputs[0];
    if (producer[sum] < 0 || removed[producer[sum]]) continue;
    const size_t a = static_cast<size_t>(producer[sum]);
    const Node& add = g.nodes[a];
    if (!plain_add(add) || !is_floating(g.values[sum].dtype) || !same_layout(g.values[add.inputs[0]], g.values[sum]) ||
        !same_layout(g.values[add.inputs[1]], g.values[sum]))
      continue;  // a broadcasting or scaled add stays apart
    // The fused node takes the add's place: the norm's weight and bias must exist by then.
    bool ready = true;
    for (size_t i = 1; i < norm.inputs.size(); ++i)
      if (norm.inputs[i] >= 0 && producer[norm.inputs[i]] >= static_cast<int64_t>(a)) ready = false;
    if (!ready) continue;
    Node fused;
    fused.op = "add_layer_norm";
    fused.name = norm.name;
    fused.inputs = {add.inputs[0], add.inputs[1], norm.inputs.size() > 1 ? norm.inputs[1] : -1,
                    norm.inputs.size() > 2 ? norm.inputs[2] : -1};
    fused.outputs = {norm.outputs[0], add.outputs[0]};
    fused.attributes = norm.attributes;
    fused.attributes.node = norm.name;
    g.nodes[a] = std::move(fused);
    removed[k] = true;
    ++count;
  }
  erase_marked(g, removed);
  return count;
}

int remove_dead_nodes(Graph& g) {
  std::vector<bool> live(g.values.size(), false);
  for (uint32_t id : g.outputs) live[id] = true;
  std::vector<bool> removed(g.nodes.size(), false);
  int count = 0;
  for (size_t k = g.nodes.size(); k-- > 0;) {
    const Node& n = g.nodes[k];
    bool needed = false;
    for (uint32_t id : n.outputs) needed = needed || live[id];
    if (!needed) {
      removed[k] = true;
      ++count;
      continue;
    }
    for (int32_t id : n.inputs)
      if (id >= 0) live[id] = true;
  }
  erase_marked(g, removed);
  return count;
}

int convert_precision(Graph& g, std::vector<Tensor>& stored, DType dtype) {
  EMBER_CHECK(dtype == kFloat16 || dtype == kBFloat16, InvalidArgument,
              "[convert_precision] float16 or bfloat16, got ", dtype);
  NoGradGuard no_grad;
  stored.resize(g.values.size());
  std::vector<bool> keep(g.values.size(), false);
  for (const Node& n : g.nodes)
    if (n.op == "batch_norm")
      for (size_t i = 1; i < n.inputs.size(); ++i)
        if (n.inputs[i] >= 0) keep[n.inputs[i]] = true;
  int count = 0;
  for (size_t id = 0; id < g.values.size(); ++id) {
    if (keep[id] || !stored[id].defined() || stored[id].dtype() != kFloat32) continue;
    stored[id] = stored[id].to(dtype);
    g.values[id].dtype = dtype;
    ++count;
  }
  for (Node& n : g.nodes) {
    auto it = n.attributes.values.find("dtype");
    if (it != n.attributes.values.end() && std::holds_alternative<DType>(it->second) &&
        std::get<DType>(it->second) == kFloat32)
      it->second = dtype;
    for (uint32_t id : n.outputs)
      if (g.values[id].dtype == kFloat32) g.values[id].dtype = dtype;
  }
  for (uint32_t id : g.inputs)
    if (g.values[id].dtype == kFloat32) g.values[id].dtype = dtype;
  return count;
}

PassStats optimize_for_inference(Graph& g, std::vector<Tensor>& stored, const RunContext& ctx) {
  PassStats s;
  s.nodes_before = static_cast<int>(g.nodes.size());
  s.identities_removed = remove_identities(g);
  // EMBER_FUSE_ATTENTION=0 leaves exported attention blocks as they are (for comparisons).
  const char* fuse = std::getenv("EMBER_FUSE_ATTENTION");
  if (!(fuse && std::string(fuse) == "0")) s.attention_blocks_fused = fuse_exported_attention(g);
  s.batch_norms_folded = fold_conv_batch_norm(g, stored);
  // EMBER_FUSE_ACTIVATIONS=0 leaves each activation after its linear layer (for comparisons).
  const char* fuse_act = std::getenv("EMBER_FUSE_ACTIVATIONS");
  if (!(fuse_act && std::string(fuse_act) == "0")) {
    s.conv_epilogues_fused = fuse_conv_activation(g);
    s.activations_fused = fuse_linear_activation(g);
    // EMBER_FUSE_ADD_NORM=0 leaves residual adds apart from their layer norms (for comparisons).
    const char* fuse_norm = std::getenv("EMBER_FUSE_ADD_NORM");
    if (!(fuse_norm && std::string(fuse_norm) == "0")) s.add_norms_fused = fuse_add_layer_norm(g);
  }
  s.constants_folded = fold_constants(g, stored, ctx);
  s.dead_nodes_removed = remove_dead_nodes(g);
  s.nodes_after = static_cast<int>(g.nodes.size());
  return s;
}

}  // namespace ember::graph

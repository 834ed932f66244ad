// fuse_exported_attention (graph/passes.h): torch.export writes nn.MultiheadAttention's packed
// projection as F.multi_head_attention_forward does it, sequence-first:
//
//   [x' = permute(x, 1 0 2)]                       batch-first modules only
//   l = linear(x', W_in, b_in)                     [T, B, 3C]
//   c = squeeze(permute(unsqueeze(reshape(l, [T, B, 3, C]), 0), 3 1 2 0 4), -2)
//   q = reshape(permute(reshape(select(c, 0, 0), [T, B·H, D]), 1 0 2), [B, H, T, D])  (k, v: 1, 2)
//   a = scaled_dot_product_attention(q, k, v, ...)  [B, H, T, D]
//   o = linear(reshape(permute(a, 2 0 1 3), [T·B, C]), W_out, b_out)
//   y = reshape(o, [T, B, C])  [then permute(y, 1 0 2)]
//
// Three of those reshapes cannot be views (they merge the batch and head dims of a strided
// tensor), so eagerly each copies; the output reshape copies too. The same values come from
// q, k and v as strided views of the projection — what the fused attention kernel reads in
// place — and one copy of the attention's output:
//
//   l = linear(x, W_in, b_in)                      x as the module received it
//   q = permute(select(reshape(l, [d0, d1, 3, H, D]), 2, 0), to [B, H, T, D])
//   o = linear(reshape(permute(a, to [d0, d1, H, D]), [d0, d1, C]), W_out, b_out)
//
// (d0, d1 = B, T batch-first, else T, B). Each row's products are the same; only GEMM blocking
// may change the order of a sum.
#include <optional>
#include <string_view>

#include "graph/passes.h"

namespace ember::graph {

namespace {

/// The graph's producers and readers, to walk a pattern from its attention node.
struct Uses {
  std::vector<int> producer;              // node index per value, -1 for inputs and stored values
  std::vector<int> readers;               // reading nodes per value (graph outputs count as one)
  explicit Uses(const Graph& g) : producer(g.values.size(), -1), readers(g.values.size(), 0) {
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      for (uint32_t id : g.nodes[k].outputs) producer[id] = static_cast<int>(k);
      for (int32_t id : g.nodes[k].inputs)
        if (id >= 0) ++readers[id];
    }
    for (uint32_t id : g.outputs) ++readers[id];
  }
};

std::optional<std::vector<int64_t>> ints(const Node& n, const char* name) {
  auto it = n.attributes.values.find(name);
  if (it == n.attributes.values.end() || !std::holds_alternative<std::vector<int64_t>>(it->second)) return std::nullopt;
  return std::get<std::vector<int64_t>>(it->second);
}
std::optional<int64_t> one_int(const Node& n, const char* name) {
  auto it = n.attributes.values.find(name);
  if (it == n.attributes.values.end() || !std::holds_alternative<int64_t>(it->second)) return std::nullopt;
  return std::get<int64_t>(it->second);
}

/// Walks from a value to the node that made it, when that node is `op` with one output and at
/// least one input (linear: two) and the value is read `readers` times; and forward to the
/// single node reading a value.
class Walker {
 public:
  Walker(const Graph& g, const Uses& u) : g_(g), u_(u) {}
  const Node* made_by(int32_t value, const char* op, int readers = 1) const {
    if (value < 0 || u_.producer[value] < 0 || u_.readers[value] != readers) return nullptr;
    return fits(g_.nodes[u_.producer[value]], op);
  }
  /// The single node reading `value`, when it is `op`.
  const Node* read_by(uint32_t value, const char* op) const {
    if (u_.readers[value] != 1) return nullptr;
    for (const Node& n : g_.nodes)
      for (int32_t id : n.inputs)
        if (id == static_cast<int32_t>(value)) return fits(n, op);
    return nullptr;
  }

 private:
  static const Node* fits(const Node& n, const char* op) {
    const size_t inputs = std::string_view(op) == "linear" ? 2 : 1;
    return n.op == op && n.outputs.size() == 1 && n.inputs.size() >= inputs ? &n : nullptr;
  }
  const Graph& g_;
  const Uses& u_;
};

/// One matched block: what the rewrite needs.
struct Block {
  size_t attention = 0;           // the attention node's index
  int32_t x = -1;                 // the module's input
  int32_t w_in = -1, b_in = -1, w_out = -1, b_out = -1;
  uint32_t result = 0;            // the value the block's readers read
  bool batch_first = false;
  int64_t T = 0, H = 0, D = 0;
};

bool dims_are(const Node* n, const char* name, std::vector<int64_t> want) { return n && ints(*n, name) == want; }

/// q, k or v (`index`) as the export makes them from c; returns c's id, or -1.
int32_t head_split(const Walker& w, int32_t value, int64_t index, Block& b) {
  const Node* r3 = w.made_by(value, "reshape");
  const auto s3 = r3 ? ints(*r3, "shape") : std::nullopt;
  if (!s3 || s3->size() != 4) return -1;
  b.H = (*s3)[1], b.T = (*s3)[2], b.D = (*s3)[3];
  const Node* p = w.made_by(r3->inputs[0], "permute");
  if (!dims_are(p, "dims", {1, 0, 2})) return -1;
  const Node* r1 = w.made_by(p->inputs[0], "reshape");
  const auto s1 = r1 ? ints(*r1, "shape") : std::nullopt;
  if (!s1 || s1->size() != 3 || (*s1)[0] != b.T || (*s1)[2] != b.D) return -1;
  const Node* sel = w.made_by(r1->inputs[0], "select");
  if (!sel || one_int(*sel, "dim") != 0 || one_int(*sel, "index") != index) return -1;
  return sel->inputs[0];
}

bool match(const Graph& g, const Uses& u, size_t k, Block& b) {
  const Node& attn = g.nodes[k];
  if (attn.op != "scaled_dot_product_attention" || attn.inputs.size() < 3 || attn.outputs.size() != 1) return false;
  const Walker w(g, u);
  b.attention = k;
  const int32_t c = head_split(w, attn.inputs[0], 0, b);
  const int64_t T = b.T, H = b.H, D = b.D, C = H * D;
  if (c < 0 || T <= 0 || H <= 0 || D <= 0) return false;
  for (int64_t i : {1, 2}) {
    Block other;
    if (head_split(w, attn.inputs[i], i, other) != c || other.T != T || other.H != H || other.D != D) return false;
  }
  // c = squeeze(permute(unsqueeze(reshape(l, [T, B, 3, C]), 0), 3 1 2 0 4), -2), read by the three selects.
  const Node* sq = w.made_by(c, "squeeze", 3);
  if (!sq || !(dims_are(sq, "dims", {-2}) || dims_are(sq, "dims", {3}))) return false;
  const Node* p1 = w.made_by(sq->inputs[0], "permute");
  if (!dims_are(p1, "dims", {3, 1, 2, 0, 4})) return false;
  const Node* un = w.made_by(p1->inputs[0], "unsqueeze");
  if (!un || one_int(*un, "dim") != 0) return false;
  const Node* r0 = w.made_by(un->inputs[0], "reshape");
  const auto s0 = r0 ? ints(*r0, "shape") : std::nullopt;
  if (!s0 || s0->size() != 4 || (*s0)[0] != T || (*s0)[2] != 3 || (*s0)[3] != C) return false;
  const Node* in = w.made_by(r0->inputs[0], "linear");
  if (!in) return false;
  b.w_in = in->inputs[1];
  b.b_in = in->inputs.size() > 2 ? in->inputs[2] : -1;
  const Node* p0 = w.made_by(in->inputs[0], "permute");
  b.batch_first = dims_are(p0, "dims", {1, 0, 2});
  b.x = b.batch_first ? p0->inputs[0] : in->inputs[0];
  // o = linear(reshape(permute(a, 2 0 1 3), [T·B, C])); y = reshape(o, [T, B, C]) [permute(y, 1 0 2)].
  const Node* p5 = w.read_by(attn.outputs[0], "permute");
  if (!dims_are(p5, "dims", {2, 0, 1, 3})) return false;
  const Node* r5 = w.read_by(p5->outputs[0], "reshape");
  const auto s5 = r5 ? ints(*r5, "shape") : std::nullopt;
  if (!s5 || s5->size() != 2 || (*s5)[1] != C) return false;
  const Node* out = w.read_by(r5->outputs[0], "linear");
  if (!out || out->inputs[0] != static_cast<int32_t>(r5->outputs[0])) return false;
  b.w_out = out->inputs[1];
  b.b_out = out->inputs.size() > 2 ? out->inputs[2] : -1;
  const Node* r6 = w.read_by(out->outputs[0], "reshape");
  const auto s6 = r6 ? ints(*r6, "shape") : std::nullopt;
  if (!s6 || s6->size() != 3 || (*s6)[0] != T || (*s6)[2] != C) return false;
  if (!b.batch_first) {
    b.result = r6->outputs[0];
    return true;
  }
  const Node* p6 = w.read_by(r6->outputs[0], "permute");
  if (!dims_are(p6, "dims", {1, 0, 2})) return false;
  b.result = p6->outputs[0];
  return true;
}

Node make_node(const std::string& op, std::vector<int32_t> inputs, uint32_t output, const std::string& name,
               std::map<std::string, AttrValue> attributes = {}) {
  Node n;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {output};
  n.attributes.values = std::move(attributes);
  n.name = name;
  n.attributes.node = name;
  return n;
}

/// The block's new nodes, computing into fresh values; the last one's output replaces b.result.
std::vector<Node> rewrite(Graph& g, const Block& b) {
  const Node& attn = g.nodes[b.attention];
  const std::string base = attn.name.empty() ? "attention" : attn.name;
  const DType dtype = g.values[attn.outputs[0]].dtype;
  auto fresh = [&](const std::string& suffix) {
    Value v;
    v.name = base + suffix;
    v.dtype = dtype;
    g.values.push_back(std::move(v));
    return static_cast<uint32_t>(g.values.size() - 1);
  };
  const int64_t C = b.H * b.D;
  // Batch-first modules see [B, T, ·]; the others [T, B, ·]. -1 stands for B.
  const std::vector<int64_t> rows = b.batch_first ? std::vector<int64_t>{-1, b.T} : std::vector<int64_t>{b.T, -1};
  const std::vector<int64_t> to_bhtd = b.batch_first ? std::vector<int64_t>{0, 2, 1, 3} : std::vector<int64_t>{1, 2, 0, 3};
  const std::vector<int64_t> from_bhtd = b.batch_first ? std::vector<int64_t>{0, 2, 1, 3} : std::vector<int64_t>{2, 0, 1, 3};
  std::vector<Node> nodes;
  const uint32_t l = fresh(".fused.in_proj");
  nodes.push_back(make_node("linear", {b.x, b.w_in, b.b_in}, l, base + ".fused.in_proj"));
  if (b.b_in < 0) nodes.back().inputs.pop_back();
  const uint32_t heads = fresh(".fused.heads");
  nodes.push_back(make_node("reshape", {static_cast<int32_t>(l)}, heads, base + ".fused.heads",
                            {{"shape", std::vector<int64_t>{rows[0], rows[1], 3, b.H, b.D}}}));
  std::vector<int32_t> attn_inputs = attn.inputs;
  for (int64_t i = 0; i < 3; ++i) {
    const char* which[] = {".fused.q", ".fused.k", ".fused.v"};
    const uint32_t sel = fresh(std::string(which[i]) + "_rows");
    nodes.push_back(make_node("select", {static_cast<int32_t>(heads)}, sel, base + which[i] + "_rows",
                              {{"dim", int64_t{2}}, {"index", i}}));
    const uint32_t t = fresh(which[i]);
    nodes.push_back(make_node("permute", {static_cast<int32_t>(sel)}, t, base + which[i], {{"dims", to_bhtd}}));
    attn_inputs[i] = static_cast<int32_t>(t);
  }
  const uint32_t a = fresh(".fused.attention");
  Node fused_attn = attn;
  fused_attn.inputs = attn_inputs;
  fused_attn.outputs = {a};
  fused_attn.name = base + ".fused";
  fused_attn.attributes.node = fused_attn.name;
  nodes.push_back(std::move(fused_attn));
  const uint32_t back = fresh(".fused.heads_out");
  nodes.push_back(make_node("permute", {static_cast<int32_t>(a)}, back, base + ".fused.heads_out", {{"dims", from_bhtd}}));
  const uint32_t merged = fresh(".fused.merged");
  nodes.push_back(make_node("reshape", {static_cast<int32_t>(back)}, merged, base + ".fused.merged",
                            {{"shape", std::vector<int64_t>{rows[0], rows[1], C}}}));
  const uint32_t o = fresh(".fused.out_proj");
  nodes.push_back(make_node("linear", {static_cast<int32_t>(merged), b.w_out, b.b_out}, o, base + ".fused.out_proj"));
  if (b.b_out < 0) nodes.back().inputs.pop_back();
  return nodes;
}

}  // namespace

int fuse_exported_attention(Graph& g) {
  int count = 0;
  std::optional<Uses> uses;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (g.nodes[k].op != "scaled_dot_product_attention") continue;
    if (!uses) uses.emplace(g);
    Block b;
    if (!match(g, *uses, k, b)) continue;
    std::vector<Node> nodes = rewrite(g, b);
    const uint32_t replacement = nodes.back().outputs[0];
    // It has the shape of the value it replaces (later passes match on shapes).
    g.values[replacement].shape = g.values[b.result].shape;
    // The new nodes go where the block's result was made (every input is made before it), and
    // its readers read the replacement; the old nodes are dead (remove_dead_nodes drops them).
    size_t at = 0;
    for (size_t j = 0; j < g.nodes.size(); ++j)
      for (uint32_t id : g.nodes[j].outputs)
        if (id == b.result) at = j + 1;
    for (size_t j = at; j < g.nodes.size(); ++j)
      for (int32_t& id : g.nodes[j].inputs)
        if (id == static_cast<int32_t>(b.result)) id = static_cast<int32_t>(replacement);
    for (uint32_t& id : g.outputs)
      if (id == b.result) id = replacement;
    g.nodes.insert(g.nodes.begin() + static_cast<std::ptrdiff_t>(at), std::make_move_iterator(nodes.begin()),
                   std::make_move_iterator(nodes.end()));
    ++count;
    uses.reset();
    k = at + nodes.size() - 1;  // past the new nodes
  }
  return count;
}

}  // namespace ember::graph

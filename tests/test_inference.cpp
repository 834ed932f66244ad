// The inference fast path (issue 9): each graph pass keeps a model's outputs, the plan follows
// weight changes, and on CUDA captured graphs replay what the eager run computes.
#include <cstdlib>

#include "ember.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

using graph::Dim, graph::Value, graph::ValueKind;

graph::Node node(const char* op, std::vector<int32_t> in, std::vector<uint32_t> out, graph::Attributes a = {}) {
  graph::Node n;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(a);
  n.attributes.node = op;
  n.name = op;
  return n;
}

Value value(const char* name, ValueKind kind, std::vector<Dim> shape, DType dtype = kFloat32) {
  return {name, dtype, std::move(shape), kind, false};
}

TensorList run_graph(const graph::Graph& g, const TensorList& inputs, const std::vector<Tensor>& stored, Device device) {
  NoGradGuard no_grad;
  return graph::Executor(g).run(inputs, stored, {false, device});
}

}  // namespace

DEVICE_TEST("inference passes: the exported fixtures give the same outputs optimised as exported") {
  for (const std::string name : {"cnn", "transformer", "mlp", "shapes"}) {
    INFO(name);
    Model m = load((model_fixture(name) / "model.ember").string(), device, {.trainable = false});
    const TensorList inputs = model_fixture_inputs(name, device);
    NoGradGuard no_grad;
    m.set_inference_options({.optimize = false, .cuda_graphs = false});
    const TensorList exported = m.forward(inputs);
    m.set_inference_options({.optimize = true, .cuda_graphs = false});
    const TensorList optimised = m.forward(inputs);
    REQUIRE(optimised.size() == exported.size());
    for (size_t k = 0; k < optimised.size(); ++k) {
      CHECK(relative_difference(optimised[k], exported[k]) < 2e-6);
      Tensor want = load_npy((model_fixture(name) / ("output_" + std::to_string(k) + ".npy")).string());
      check_close(optimised[k], to_ref(want), kFloat32, 10);
    }
    const graph::PassStats s = m.inference_stats().passes;
    INFO(s.summary());
    CHECK(s.nodes_after <= s.nodes_before);
    if (name == "cnn") {
      CHECK(s.batch_norms_folded == 2);
      CHECK(s.conv_epilogues_fused >= 1);
      // Each fusion drops the activation, and a skip connection's add too.
      CHECK(s.nodes_after <= s.nodes_before - 2 - s.conv_epilogues_fused);
    }
    if (name == "transformer") {
      CHECK(s.constants_folded > 0);          // the position ids
      CHECK(s.attention_blocks_fused == 2);   // its two nn.MultiheadAttention layers
    }
  }
}

DEVICE_TEST("reduced precision: float32 models run in float16 and bfloat16, outputs in float32") {
  for (const std::string name : {"cnn", "transformer", "mlp"}) {
    for (const DType dtype : {kFloat16, kBFloat16}) {
      INFO(name << " in " << dtype_name(dtype));
      Model m = load((model_fixture(name) / "model.ember").string(), device, {.trainable = false});
      const TensorList inputs = model_fixture_inputs(name, device);
      NoGradGuard no_grad;
      const Tensor want = m.forward(inputs)[0];
      m.set_inference_options({.dtype = dtype});
      const Tensor got = m.forward(inputs)[0];
      CHECK(got.dtype() == kFloat32);
      CHECK(m.inference_stats().passes.tensors_converted > 0);
      const double error = relative_difference(got, want);
      CHECK(error > 0);  // it did run in reduced precision
      CHECK(error < (dtype == kFloat16 ? 5e-3 : 4e-2));
      if (is_floating(inputs[0].dtype()))
        check_error([&] { m.forward({inputs[0].to(kFloat64)}); }, ErrorCode::DTypeMismatch, "should be float32");
    }
  }
  Model m = load((model_fixture("mlp") / "model.ember").string(), device, {.trainable = false});
  CHECK_THROWS_AS(m.set_inference_options({.dtype = kInt32}), Error);
}

DEVICE_TEST("inference passes: a sequence-first exported attention block reads q, k and v in place") {
  // nn.MultiheadAttention(batch_first=False) as torch.export writes it (graph/fuse_attention.cpp):
  // x [T, B, C] → in_proj → head-splitting reshapes (copies) → attention → out_proj → [T, B, C].
  const int64_t T = 5, B = 3, H = 2, D = 4, C = H * D;
  graph::Graph g;
  auto add_value = [&](const char* name, ValueKind kind = ValueKind::Intermediate) {
    g.values.push_back(value(name, kind, {}));
    return static_cast<uint32_t>(g.values.size() - 1);
  };
  auto attrs = [](std::initializer_list<std::pair<const char*, graph::AttrValue>> a) {
    graph::Attributes out;
    for (const auto& [k, v] : a) out.values[k] = v;
    return out;
  };
  using Ints = std::vector<int64_t>;
  const uint32_t x = add_value("x", ValueKind::Input);
  g.values[x].shape = {Dim{T, ""}, Dim{B, ""}, Dim{C, ""}};
  const uint32_t w_in = add_value("w_in", ValueKind::Parameter),
                 b_in = add_value("b_in", ValueKind::Parameter), w_out = add_value("w_out", ValueKind::Parameter),
                 b_out = add_value("b_out", ValueKind::Parameter);
  const uint32_t l = add_value("l"), r0 = add_value("r0"), u = add_value("u"), p1 = add_value("p1"),
                 c = add_value("c");
  g.nodes = {node("linear", {int32_t(x), int32_t(w_in), int32_t(b_in)}, {l}),
             node("reshape", {int32_t(l)}, {r0}, attrs({{"shape", Ints{T, -1, 3, C}}})),
             node("unsqueeze", {int32_t(r0)}, {u}, attrs({{"dim", int64_t{0}}})),
             node("permute", {int32_t(u)}, {p1}, attrs({{"dims", Ints{3, 1, 2, 0, 4}}})),
             node("squeeze", {int32_t(p1)}, {c}, attrs({{"dims", Ints{-2}}}))};
  std::vector<int32_t> qkv;
  for (int64_t i = 0; i < 3; ++i) {
    const uint32_t s = add_value("s"), a = add_value("a"), p = add_value("p"), q = add_value("q");
    g.nodes.push_back(node("select", {int32_t(c)}, {s}, attrs({{"dim", int64_t{0}}, {"index", i}})));
    g.nodes.push_back(node("reshape", {int32_t(s)}, {a}, attrs({{"shape", Ints{T, B * H, D}}})));
    g.nodes.push_back(node("permute", {int32_t(a)}, {p}, attrs({{"dims", Ints{1, 0, 2}}})));
    g.nodes.push_back(node("reshape", {int32_t(p)}, {q}, attrs({{"shape", Ints{B, H, T, D}}})));
    qkv.push_back(int32_t(q));
  }
  const uint32_t att = add_value("att"), p5 = add_value("p5"), r5 = add_value("r5"), o = add_value("o"),
                 y = add_value("y", ValueKind::Output);
  graph::Attributes sdpa = attrs({{"is_causal", true}});
  g.nodes.push_back(node("scaled_dot_product_attention", {qkv[0], qkv[1], qkv[2]}, {att}, sdpa));
  g.nodes.push_back(node("permute", {int32_t(att)}, {p5}, attrs({{"dims", Ints{2, 0, 1, 3}}})));
  g.nodes.push_back(node("reshape", {int32_t(p5)}, {r5}, attrs({{"shape", Ints{T * B, C}}})));
  g.nodes.push_back(node("linear", {int32_t(r5), int32_t(w_out), int32_t(b_out)}, {o}));
  g.nodes.push_back(node("reshape", {int32_t(o)}, {y}, attrs({{"shape", Ints{T, B, C}}})));
  g.inputs = {x};
  g.outputs = {y};
  manual_seed(8);
  std::vector<Tensor> stored(g.values.size());
  stored[w_in] = randn({3 * C, C}, {kFloat32, device});
  stored[b_in] = randn({3 * C}, {kFloat32, device});
  stored[w_out] = randn({C, C}, {kFloat32, device});
  stored[b_out] = randn({C}, {kFloat32, device});
  const Tensor input = randn({T, B, C}, {kFloat32, device});
  const Tensor before = run_graph(g, {input}, stored, device)[0];
  CHECK(graph::fuse_exported_attention(g) == 1);
  const size_t with_dead = g.nodes.size();
  CHECK(graph::remove_dead_nodes(g) == 22);  // every exported node
  CHECK(g.nodes.size() == with_dead - 22);
  CHECK(g.nodes.size() == 12);  // linear, reshape, 3 × (select, permute), attention, permute, reshape, linear
  stored.resize(g.values.size());
  const Tensor after = run_graph(g, {input}, stored, device)[0];
  CHECK(after.sizes() == Shape{T, B, C});
  CHECK(relative_difference(after, before) < 1e-6);
  // The rewritten block is not matched again.
  CHECK(graph::fuse_exported_attention(g) == 0);
}

DEVICE_TEST("inference passes: relu and tanh gelu after a linear layer run in its epilogue") {
  // x → linear → relu → linear → gelu(tanh) → linear → gelu(erf) → y, and the first linear's
  // output is also read by a second relu in a branch that ends in z (so that relu stays).
  graph::Graph g;
  auto add_value = [&](const char* name, ValueKind kind = ValueKind::Intermediate) {
    g.values.push_back(value(name, kind, {}));
    return static_cast<int32_t>(g.values.size() - 1);
  };
  graph::Attributes tanh_attr, erf_attr;
  tanh_attr.values["approximate"] = std::string("tanh");
  erf_attr.values["approximate"] = std::string("none");
  const int32_t x = add_value("x", ValueKind::Input);
  g.values[x].shape = {Dim{9, ""}, Dim{8, ""}};
  const int32_t w1 = add_value("w1", ValueKind::Parameter), b1 = add_value("b1", ValueKind::Parameter),
                w2 = add_value("w2", ValueKind::Parameter), b2 = add_value("b2", ValueKind::Parameter),
                w3 = add_value("w3", ValueKind::Parameter), w4 = add_value("w4", ValueKind::Parameter);
  const int32_t l1 = add_value("l1"), a1 = add_value("a1"), l2 = add_value("l2"), a2 = add_value("a2"),
                l3 = add_value("l3"), y = add_value("y", ValueKind::Output), l4 = add_value("l4"),
                a4 = add_value("a4"), a5 = add_value("a5"), z = add_value("z", ValueKind::Output);
  auto u = [](int32_t id) { return static_cast<uint32_t>(id); };
  g.nodes = {node("linear", {x, w1, b1}, {u(l1)}),    node("relu", {l1}, {u(a1)}),
             node("linear", {a1, w2, b2}, {u(l2)}),   node("gelu", {l2}, {u(a2)}, tanh_attr),
             node("linear", {a2, w3}, {u(l3)}),       node("gelu", {l3}, {u(y)}, erf_attr),
             node("linear", {x, w4}, {u(l4)}),        node("relu", {l4}, {u(a4)}),
             node("add", {l4, a4}, {u(a5)}),          node("relu", {a5}, {u(z)})};
  g.inputs = {u(x)};
  g.outputs = {u(y), u(z)};
  manual_seed(11);
  std::vector<Tensor> stored(g.values.size());
  stored[w1] = randn({16, 8}, {kFloat32, device});
  stored[b1] = randn({16}, {kFloat32, device});
  stored[w2] = randn({12, 16}, {kFloat32, device});
  stored[b2] = randn({12}, {kFloat32, device});
  stored[w3] = randn({4, 12}, {kFloat32, device});
  stored[w4] = randn({8, 8}, {kFloat32, device});
  const Tensor input = randn({9, 8}, {kFloat32, device});
  const TensorList before = run_graph(g, {input}, stored, device);
  CHECK(graph::fuse_linear_activation(g) == 2);
  CHECK(g.nodes.size() == 8);
  CHECK(g.nodes[0].attributes.get_string("activation", "") == "relu");
  CHECK(g.nodes[0].outputs[0] == u(a1));
  CHECK(g.nodes[1].attributes.get_string("activation", "") == "gelu_tanh");
  CHECK(g.nodes[2].attributes.get_string("activation", "none") == "none");  // erf gelu: no epilogue
  CHECK(g.nodes[4].attributes.get_string("activation", "none") == "none");  // its output is read twice
  graph::validate(g);
  const TensorList after = run_graph(g, {input}, stored, device);
  CHECK(relative_difference(after[0], before[0]) < 1e-6);
  CHECK(relative_difference(after[1], before[1]) < 1e-6);
  CHECK(graph::fuse_linear_activation(g) == 0);
}

DEVICE_TEST("inference passes: relu, clamp and a skip connection after a convolution run in its epilogue") {
  // x → conv1 → relu → conv2 → add(·, x) → relu → y1;   x → conv3 → clamp(0, 6) → y2;
  // x → conv4, read by a relu and by the add after it → y3 (conv4 stays);
  // x → conv5 → add(·, conv6(x)) → relu → y4, conv6 made after conv5 (conv5 moves to the add);
  // x → conv7 → add(·, x) → y5, no activation (MobileNetV2's inverted residual).
  graph::Graph g;
  const std::vector<Dim> image{{2, ""}, {4, ""}, {6, ""}, {5, ""}};
  auto add_value = [&](const std::string& name, ValueKind kind = ValueKind::Intermediate, std::vector<Dim> shape = {}) {
    g.values.push_back(value("", kind, shape.empty() ? image : shape));
    g.values.back().name = name;
    return static_cast<int32_t>(g.values.size() - 1);
  };
  const int32_t x = add_value("x", ValueKind::Input);
  std::vector<int32_t> w, b;
  for (int i = 0; i < 7; ++i) {
    w.push_back(add_value("w" + std::to_string(i), ValueKind::Parameter, {{4, ""}, {4, ""}, {3, ""}, {3, ""}}));
    b.push_back(add_value("b" + std::to_string(i), ValueKind::Parameter, {{4, ""}}));
  }
  const int32_t c1 = add_value("c1"), a1 = add_value("a1"), c2 = add_value("c2"), s2 = add_value("s2"),
                y1 = add_value("y1", ValueKind::Output), c3 = add_value("c3"), y2 = add_value("y2", ValueKind::Output),
                c4 = add_value("c4"), r4 = add_value("r4"), y3 = add_value("y3", ValueKind::Output),
                c5 = add_value("c5"), c6 = add_value("c6"), s5 = add_value("s5"),
                y4 = add_value("y4", ValueKind::Output), c7 = add_value("c7"), y5 = add_value("y5", ValueKind::Output);
  graph::Attributes conv, relu6;
  conv.values["padding"] = std::vector<int64_t>{1, 1};
  relu6.values["min"] = 0.0;
  relu6.values["max"] = 6.0;
  auto u = [](int32_t id) { return static_cast<uint32_t>(id); };
  g.nodes = {node("convolution", {x, w[0], b[0]}, {u(c1)}, conv), node("relu", {c1}, {u(a1)}),
             node("convolution", {a1, w[1]}, {u(c2)}, conv),      node("add", {c2, x}, {u(s2)}),
             node("relu", {s2}, {u(y1)}),                         node("convolution", {x, w[2], b[2]}, {u(c3)}, conv),
             node("clamp", {c3}, {u(y2)}, relu6),                 node("convolution", {x, w[3], b[3]}, {u(c4)}, conv),
             node("relu", {c4}, {u(r4)}),                         node("add", {c4, r4}, {u(y3)}),
             node("convolution", {x, w[4], b[4]}, {u(c5)}, conv), node("convolution", {x, w[5], b[5]}, {u(c6)}, conv),
             node("add", {c5, c6}, {u(s5)}),                      node("relu", {s5}, {u(y4)}),
             node("convolution", {x, w[6], b[6]}, {u(c7)}, conv), node("add", {c7, x}, {u(y5)})};
  g.inputs = {u(x)};
  g.outputs = {u(y1), u(y2), u(y3), u(y4), u(y5)};
  manual_seed(5);
  std::vector<Tensor> stored(g.values.size());
  for (int i = 0; i < 7; ++i) {
    stored[w[i]] = randn({4, 4, 3, 3}, {kFloat32, device});
    stored[b[i]] = randn({4}, {kFloat32, device});
  }
  const Tensor input = randn({2, 4, 6, 5}, {kFloat32, device});
  const TensorList before = run_graph(g, {input}, stored, device);
  CHECK(graph::fuse_conv_activation(g) == 5);
  graph::validate(g);
  REQUIRE(g.nodes.size() == 9);
  CHECK(g.nodes[0].attributes.get_float("activation_min") == 0.0);
  CHECK(g.nodes[0].outputs[0] == u(a1));
  CHECK(g.nodes[1].inputs == std::vector<int32_t>{a1, w[1], -1, x});  // no bias; x is the residual
  CHECK(g.nodes[1].outputs[0] == u(y1));
  CHECK(g.nodes[2].attributes.get_float("activation_max") == 6.0);
  CHECK(!g.nodes[3].attributes.has("activation_min"));  // conv4's output is read twice
  CHECK(g.nodes[6].op == "convolution");                // conv6, then conv5 in the add's place
  CHECK(g.nodes[6].outputs[0] == u(c6));
  CHECK(g.nodes[7].inputs == std::vector<int32_t>{x, w[4], b[4], c6});
  CHECK(g.nodes[7].outputs[0] == u(y4));
  CHECK(g.nodes[8].inputs == std::vector<int32_t>{x, w[6], b[6], x});
  CHECK(g.nodes[8].outputs[0] == u(y5));
  CHECK(!g.nodes[8].attributes.has("activation_min"));
  const TensorList after = run_graph(g, {input}, stored, device);
  for (size_t i = 0; i < after.size(); ++i) {
    INFO("output ", i);
    CHECK(relative_difference(after[i], before[i]) < 1e-6);
  }
  CHECK(graph::fuse_conv_activation(g) == 0);

  // A model file may hold the fused form too: a residual of the wrong shape, or bounds on a 1-d
  // convolution, are errors naming the node, not a crash.
  graph::Graph bad = g;
  bad.nodes[7].inputs[3] = w[0];  // a weight [4, 4, 3, 3] as the residual of a [2, 4, 6, 5] output
  check_error([&] { run_graph(bad, {input}, stored, device); }, ErrorCode::ShapeMismatch, "the residual is [4, 4, 3, 3]");
  graph::Graph one_d;
  one_d.values = {value("x", ValueKind::Input, {{2, ""}, {4, ""}, {9, ""}}),
                  value("w", ValueKind::Parameter, {{4, ""}, {4, ""}, {3, ""}}), value("y", ValueKind::Output, {})};
  graph::Attributes bounded;
  bounded.values["activation_min"] = 0.0;
  one_d.nodes = {node("convolution", {0, 1}, {2}, bounded)};
  one_d.inputs = {0};
  one_d.outputs = {2};
  std::vector<Tensor> one_d_stored(3);
  one_d_stored[1] = randn({4, 4, 3}, {kFloat32, device});
  check_error([&] { run_graph(one_d, {randn({2, 4, 9}, {kFloat32, device})}, one_d_stored, device); },
              ErrorCode::InvalidModel, "only a 2-d convolution takes a residual or activation");
}

DEVICE_TEST("inference passes: a residual add and the layer norm reading it become one add_layer_norm") {
  // s1 = x + r → n1 = layer_norm(s1, w, b); s2 = s1 + n1 → n2 = layer_norm(s2) (s2 is an output
  // too): both fuse. Not fused: an add that broadcasts (x + v), one with alpha 2, and one whose
  // norm's weight is made after it.
  graph::Graph g;
  const std::vector<Dim> rows{{3, ""}, {5, ""}, {8, ""}}, row{{8, ""}};
  auto add_value = [&](const std::string& name, ValueKind kind = ValueKind::Intermediate, std::vector<Dim> shape = {}) {
    g.values.push_back(value("", kind, shape.empty() ? rows : shape));
    g.values.back().name = name;
    return static_cast<int32_t>(g.values.size() - 1);
  };
  const int32_t x = add_value("x", ValueKind::Input), r = add_value("r", ValueKind::Input),
                w = add_value("w", ValueKind::Parameter, row), b = add_value("b", ValueKind::Parameter, row),
                v = add_value("v", ValueKind::Parameter, row);
  const int32_t s1 = add_value("s1"), n1 = add_value("n1"), s2 = add_value("s2", ValueKind::Output),
                n2 = add_value("n2", ValueKind::Output), s3 = add_value("s3"), n3 = add_value("n3", ValueKind::Output),
                s4 = add_value("s4"), n4 = add_value("n4", ValueKind::Output), s5 = add_value("s5"),
                w5 = add_value("w5", ValueKind::Intermediate, row), n5 = add_value("n5", ValueKind::Output);
  graph::Attributes norm, alpha2;
  norm.values["normalized_shape"] = std::vector<int64_t>{8};
  alpha2.values["alpha"] = 2.0;
  auto u = [](int32_t id) { return static_cast<uint32_t>(id); };
  g.nodes = {node("add", {x, r}, {u(s1)}),          node("layer_norm", {s1, w, b}, {u(n1)}, norm),
             node("add", {s1, n1}, {u(s2)}),        node("layer_norm", {s2}, {u(n2)}, norm),
             node("add", {x, v}, {u(s3)}),          node("layer_norm", {s3, w, b}, {u(n3)}, norm),
             node("add", {x, r}, {u(s4)}, alpha2),  node("layer_norm", {s4}, {u(n4)}, norm),
             node("add", {x, r}, {u(s5)}),          node("relu", {w}, {u(w5)}),
             node("layer_norm", {s5, w5}, {u(n5)}, norm)};
  g.inputs = {u(x), u(r)};
  g.outputs = {u(n2), u(s2), u(n3), u(n4), u(n5)};
  manual_seed(21);
  std::vector<Tensor> stored(g.values.size());
  stored[w] = randn({8}, {kFloat32, device});
  stored[b] = randn({8}, {kFloat32, device});
  stored[v] = randn({8}, {kFloat32, device});
  const TensorList inputs = {randn({3, 5, 8}, {kFloat32, device}), randn({3, 5, 8}, {kFloat32, device})};
  const TensorList before = run_graph(g, inputs, stored, device);
  CHECK(graph::fuse_add_layer_norm(g) == 2);
  graph::validate(g);
  REQUIRE(g.nodes.size() == 9);
  CHECK(g.nodes[0].op == "add_layer_norm");
  CHECK(g.nodes[0].inputs == std::vector<int32_t>{x, r, w, b});
  CHECK(g.nodes[0].outputs == std::vector<uint32_t>{u(n1), u(s1)});
  CHECK(g.nodes[1].op == "add_layer_norm");
  CHECK(g.nodes[1].inputs == std::vector<int32_t>{s1, n1, -1, -1});
  CHECK(g.nodes[1].outputs == std::vector<uint32_t>{u(n2), u(s2)});
  for (size_t k = 2; k < g.nodes.size(); ++k) CHECK(g.nodes[k].op != "add_layer_norm");
  const TensorList after = run_graph(g, inputs, stored, device);
  for (size_t i = 0; i < after.size(); ++i) {
    INFO("output ", i);
    CHECK(relative_difference(after[i], before[i]) < 1e-6);
  }
  CHECK(graph::fuse_add_layer_norm(g) == 0);

  // The fused node in a model file with a residual of another shape is an error naming it.
  graph::Graph bad = g;
  bad.nodes[0].inputs[1] = w;
  check_error([&] { run_graph(bad, inputs, stored, device); }, ErrorCode::ShapeMismatch,
              "residual [8] must have one shape");
}

TEST_CASE("inference passes: clones are removed where they are not graph outputs") {
  // x → permute → clone → add(clone, x) → y, and y → clone → z (a graph output: kept).
  graph::Graph g;
  const Dim two{2, ""};
  g.values = {value("x", ValueKind::Input, {two, two}), value("t", ValueKind::Intermediate, {two, two}),
              value("c", ValueKind::Intermediate, {two, two}), value("y", ValueKind::Output, {two, two}),
              value("z", ValueKind::Output, {two, two})};
  graph::Attributes dims;
  dims.values["dims"] = std::vector<int64_t>{1, 0};
  g.nodes = {node("permute", {0}, {1}, dims), node("clone", {1}, {2}), node("add", {2, 0}, {3}),
             node("clone", {3}, {4})};
  g.inputs = {0};
  g.outputs = {3, 4};
  const Tensor x = tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2});
  const TensorList before = run_graph(g, {x}, std::vector<Tensor>(g.values.size()), Device::cpu());
  CHECK(graph::remove_identities(g) == 1);
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[1].op == "add");
  CHECK(g.nodes[1].inputs == std::vector<int32_t>{1, 0});  // reads the permuted view itself
  CHECK(g.nodes[2].op == "clone");
  const TensorList after = run_graph(g, {x}, std::vector<Tensor>(g.values.size()), Device::cpu());
  check_equal_values(after[0], {2, 5, 5, 8});  // xᵀ + x
  check_equal_values(after[1], {2, 5, 5, 8});
  check_equal_values(before[0], {2, 5, 5, 8});
}

TEST_CASE("inference passes: dropout, detach and casts to the same dtype are removed; other casts stay") {
  graph::Graph g;
  const Dim n{5, ""};
  g.values = {value("x", ValueKind::Input, {n}), value("a", ValueKind::Intermediate, {n}),
              value("b", ValueKind::Intermediate, {n}), value("c", ValueKind::Intermediate, {n}),
              value("y", ValueKind::Output, {n}), value("z", ValueKind::Output, {n}, kFloat64)};
  graph::Attributes p, same, wider;
  p.values["p"] = 0.5;
  same.values["dtype"] = kFloat32;
  wider.values["dtype"] = kFloat64;
  g.nodes = {node("dropout", {0}, {1}, p), node("relu", {1}, {2}), node("cast", {2}, {3}, same),
             node("detach", {3}, {4}), node("cast", {4}, {5}, wider)};
  g.inputs = {0};
  g.outputs = {4, 5};
  CHECK(graph::remove_identities(g) == 3);
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].op == "relu");
  CHECK(g.nodes[0].inputs == std::vector<int32_t>{0});
  CHECK(g.nodes[1].op == "cast");
  CHECK(g.outputs == std::vector<uint32_t>{2, 5});
  const Tensor x = tensor({-2.0f, -0.5f, 0.0f, 1.5f, 3.0f});
  const TensorList out = run_graph(g, {x}, std::vector<Tensor>(g.values.size()), Device::cpu());
  check_equal_values(out[0], {0, 0, 0, 1.5, 3});
  CHECK(out[1].dtype() == kFloat64);
}

TEST_CASE("inference passes: nodes computed from weights alone are folded; large outputs stay computed") {
  auto make = [] {
    graph::Graph g;
    const Dim n{6, ""};
    g.values = {value("x", ValueKind::Input, {n}), value("w", ValueKind::Parameter, {n}),
                value("positions", ValueKind::Intermediate, {n}), value("scaled", ValueKind::Intermediate, {n}),
                value("y", ValueKind::Output, {n})};
    graph::Attributes range;
    range.values["end"] = int64_t{6};
    range.values["dtype"] = kFloat32;
    g.nodes = {node("arange", {}, {2}, range), node("mul", {1, 2}, {3}), node("add", {0, 3}, {4})};
    g.inputs = {0};
    g.outputs = {4};
    return g;
  };
  std::vector<Tensor> stored(5);
  stored[1] = tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f});
  const Tensor x = tensor({0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f});
  graph::Graph g = make();
  std::vector<Tensor> folded = stored;
  CHECK(graph::fold_constants(g, folded, {false, Device::cpu()}) == 2);
  REQUIRE(g.nodes.size() == 1);
  CHECK(g.nodes[0].op == "add");
  CHECK(g.values[3].kind == ValueKind::Constant);
  check_equal_values(run_graph(g, {x}, folded, Device::cpu())[0], {0.5, 2.5, 6.5, 12.5, 20.5, 30.5});
  // With a 16-byte limit the 24-byte positions stay computed, and so does what reads them.
  graph::Graph small = make();
  std::vector<Tensor> kept = stored;
  CHECK(graph::fold_constants(small, kept, {false, Device::cpu()}, 16) == 0);
  CHECK(small.nodes.size() == 3);
}

DEVICE_TEST("inference passes: a batch norm is folded into the convolution before it (against float64)") {
  for (const bool conv_bias : {true, false}) {
    for (const bool affine : {true, false}) {
      INFO("conv bias " << conv_bias << ", affine " << affine);
      graph::Graph g;
      g.values = {value("x", ValueKind::Input, {{2, ""}, {4, ""}, {7, ""}, {7, ""}}),
                  value("w", ValueKind::Parameter, {{6, ""}, {2, ""}, {3, ""}, {3, ""}}),
                  value("b", ValueKind::Parameter, {{6, ""}}),
                  value("gamma", ValueKind::Parameter, {{6, ""}}),
                  value("beta", ValueKind::Parameter, {{6, ""}}),
                  value("mean", ValueKind::Buffer, {{6, ""}}),
                  value("var", ValueKind::Buffer, {{6, ""}}),
                  value("conv", ValueKind::Intermediate, {}),
                  value("y", ValueKind::Output, {})};
      graph::Attributes conv, bn;
      conv.values["groups"] = int64_t{2};
      conv.values["padding"] = std::vector<int64_t>{1, 1};
      conv.values["stride"] = std::vector<int64_t>{2, 1};
      bn.values["eps"] = 1e-3;
      g.nodes = {node("convolution", {0, 1, conv_bias ? 2 : -1}, {7}, conv),
                 node("batch_norm", {7, affine ? 3 : -1, affine ? 4 : -1, 5, 6}, {8}, bn)};
      g.inputs = {0};
      g.outputs = {8};
      std::vector<Tensor> stored(g.values.size());
      auto leaf = [&](const Shape& shape, uint64_t seed, double lo = -1, double hi = 1) {
        return random_leaf(shape, device, seed, lo, hi).detach().to(kFloat32);
      };
      stored[1] = leaf({6, 2, 3, 3}, 1);
      stored[2] = leaf({6}, 2);
      stored[3] = leaf({6}, 3, 0.5, 2);
      stored[4] = leaf({6}, 4);
      stored[5] = leaf({6}, 5);
      stored[6] = leaf({6}, 6, 0.1, 3);
      const Tensor x = leaf({2, 4, 7, 7}, 7);
      std::vector<Tensor> stored64;
      for (const Tensor& t : stored) stored64.push_back(t.defined() ? t.to(kFloat64) : Tensor());
      graph::Graph g64 = g;
      for (Value& v : g64.values) v.dtype = kFloat64;
      const Tensor want = run_graph(g64, {x.to(kFloat64)}, stored64, device)[0];

      graph::Graph folded = g;
      std::vector<Tensor> folded_stored = stored;
      CHECK(graph::fold_conv_batch_norm(folded, folded_stored) == 1);
      REQUIRE(folded.nodes.size() == 1);
      CHECK(folded.nodes[0].op == "convolution");
      const Tensor got = run_graph(folded, {x}, folded_stored, device)[0];
      CHECK(got.dtype() == kFloat32);
      check_close(got, to_ref(want), kFloat32);
      CHECK(relative_difference(got, want) < 1e-5);
    }
  }
}

TEST_CASE("inference passes: a convolution read twice keeps its batch norm; dead nodes are dropped") {
  graph::Graph g;
  const Dim c{2, ""};
  g.values = {value("x", ValueKind::Input, {{1, ""}, c, {3, ""}, {3, ""}}),
              value("w", ValueKind::Parameter, {c, c, {1, ""}, {1, ""}}),
              value("mean", ValueKind::Buffer, {c}), value("var", ValueKind::Buffer, {c}),
              value("conv", ValueKind::Intermediate, {}), value("bn", ValueKind::Intermediate, {}),
              value("y", ValueKind::Output, {}), value("unused", ValueKind::Intermediate, {})};
  g.nodes = {node("convolution", {0, 1}, {4}), node("batch_norm", {4, -1, -1, 2, 3}, {5}), node("add", {4, 5}, {6}),
             node("relu", {0}, {7})};
  g.inputs = {0};
  g.outputs = {6};
  std::vector<Tensor> stored(g.values.size());
  stored[1] = ones({2, 2, 1, 1});
  stored[2] = zeros({2});
  stored[3] = ones({2});
  CHECK(graph::fold_conv_batch_norm(g, stored) == 0);
  CHECK(graph::remove_dead_nodes(g) == 1);
  CHECK(g.nodes.size() == 3);
  CHECK(g.nodes.back().op == "add");
}

DEVICE_TEST("inference plan: rebuilt when the weights change; not used while autograd records") {
  Model m = load((model_fixture("cnn") / "model.ember").string(), device);
  const TensorList inputs = model_fixture_inputs("cnn", device);
  Tensor before, after;
  {
    NoGradGuard no_grad;
    before = m.forward(inputs)[0];
    CHECK(m.inference_stats().passes.batch_norms_folded == 2);
    // Fine-tuning changes weights in place (their versions move): the folded weights follow.
    for (const auto& [name, p] : m.named_parameters())
      if (name == "conv1.weight") copy_(p, mul(p, 2.0));
    after = m.forward(inputs)[0];
    m.set_inference_options({.optimize = false, .cuda_graphs = false});
    const Tensor exported = m.forward(inputs)[0];
    CHECK(relative_difference(after, exported) < 2e-6);
    CHECK(relative_difference(after, before) > 1e-3);
  }
  // Evaluation with gradients recorded runs the exported graph, so parameters get gradients.
  m.set_inference_options({});
  const Tensor y = m.forward(inputs)[0];
  CHECK(y.requires_grad());
  CHECK(m.inference_stats().eager_runs == 0);
  sum(y).backward();
  CHECK(m.parameters()[0].grad().defined());
}

TEST_CASE("cuda graphs: replays compute what the eager run does, per input shape" *
          doctest::skip(!cuda_available())) {
  const Device device = Device::cuda(0);
  for (const std::string name : {"cnn", "transformer"}) {
    INFO(name);
    cuda::synchronize(0);
    const size_t held_before = cuda::memory_stats(0).allocated;
    {
      Model m = load((model_fixture(name) / "model.ember").string(), device, {.trainable = false});
      const Tensor a = model_fixture_inputs(name, device)[0];
      const Tensor b = is_floating(a.dtype()) ? add(mul(a, 0.5), 1.0) : flip(a, {1});
      NoGradGuard no_grad;
      m.set_inference_options({.optimize = true, .cuda_graphs = false});
      const Tensor want_a = m.forward({a})[0], want_b = m.forward({b})[0];
      CHECK(m.inference_stats().graphs_captured == 0);

      m.set_inference_options({.measure_graphs = false});
      const Tensor y1 = m.forward({a})[0];  // eager: the first run of this shape
      const Tensor y2 = m.forward({b})[0];  // captured, then replayed
      const Tensor y3 = m.forward({a})[0];  // replayed
      InferenceStats s = m.inference_stats();
      INFO(s.capture_failure);
      CHECK(s.eager_runs == 1);
      CHECK(s.graphs_captured == 1);
      CHECK(s.graph_replays == 2);
      CHECK(relative_difference(y1, want_a) < 1e-6);
      CHECK(relative_difference(y2, want_b) < 1e-6);
      CHECK(relative_difference(y3, want_a) < 1e-6);
      CHECK(relative_difference(y2, want_b) < 1e-6);  // the caller's outputs are its own
      CHECK(y2.data() != y3.data());
      // A strided view as the input: made contiguous before the graph's copy reads it.
      const int64_t d0 = a.dim() - 2, d1 = a.dim() - 1;
      const Tensor view = transpose(transpose(a, d0, d1).contiguous(), d0, d1);
      CHECK(!view.is_contiguous());
      CHECK(relative_difference(m.forward({view})[0], want_a) < 1e-6);
      CHECK(m.inference_stats().graph_replays == 3);
      // Another batch size: its own warm-up run, then its own graph.
      const Tensor c = cat({a, b}, 0);
      const Tensor want_c = cat({want_a, want_b}, 0);
      for (int i = 0; i < 3; ++i) CHECK(relative_difference(m.forward({c})[0], want_c) < 1e-6);
      s = m.inference_stats();
      CHECK(s.graphs_captured == 2);
      CHECK(s.eager_runs == 2);
      // Wrong inputs are still refused by name, captured shapes or not.
      check_error([&] { m.forward({a.to(kFloat64)}); }, ErrorCode::DTypeMismatch, "should be");
      if (!is_floating(a.dtype())) {
        // Token ids past the vocabulary: the index check runs inside the graph and is reported.
        check_error([&] { m.forward({add(a, 1000000)}); }, ErrorCode::InvalidArgument, "out of bounds");
        CHECK(relative_difference(m.forward({a})[0], want_a) < 1e-6);  // and the model goes on
        CHECK(m.inference_stats().graphs_captured == 2);
      }
      // Measured (the default): two eager runs, the second timed; a capture and replay; a
      // second, timed replay; the next call keeps the graph if that replay was faster. These
      // small models are launch-bound: it is, except under compute-sanitizer, whose
      // instrumented kernels can make the replay the slower (EMBER_UNDER_SANITIZER, set by the
      // scripts that run it): there the counts must still follow the decision.
      m.set_inference_options({});
      for (int i = 0; i < 6; ++i) CHECK(relative_difference(m.forward({i % 2 ? b : a})[0], i % 2 ? want_b : want_a) < 1e-6);
      s = m.inference_stats();
      INFO(s.graph_timing);
      const bool kept = s.graph_timing.find("graph kept") != std::string::npos;
      CHECK((kept || s.graph_timing.find("eager kept") != std::string::npos));
      if (!std::getenv("EMBER_UNDER_SANITIZER")) CHECK(kept);
      CHECK(s.graphs_captured == 1);
      CHECK(s.eager_runs == (kept ? 2 : 4));
      CHECK(s.graphs_dropped == (kept ? 0 : 1));
      CHECK(s.graph_replays == (kept ? 4 : 2));
    }
    cuda::synchronize(0);
    CHECK(cuda::memory_stats(0).allocated == held_before);  // nothing kept after the model goes
  }
}

TEST_CASE("cuda graphs: a capture that synchronises fails with a clear error and the device stays usable" *
          doctest::skip(!cuda_available())) {
  const Tensor x = ones({4}, {kFloat32, Device::cuda(0)});
  try {
    cuda::Graph::capture(0, [&] {
      add(x, 1.0);
      x.to(Device::cpu());  // a blocking copy to the host cannot be captured
    });
    FAIL_CHECK("the capture should have failed");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Cuda);
    INFO(e.what());
    CHECK(std::string(e.what()).find("captur") != std::string::npos);
  }
  check_equal_values(add(x, 1.0), {2, 2, 2, 2});
}

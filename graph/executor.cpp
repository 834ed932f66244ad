#include "graph/executor.h"

#include <chrono>
#include <map>
#include <new>

#include "graph/op_profile.h"
#include "runtime/cuda_hooks.h"
#include "runtime/error.h"
#include "runtime/memory_plan.h"

namespace ember::graph {

Executor::Executor(const Graph& g) : g_(g), release_after_(g.nodes.size()) {
  // The last node reading each value; graph outputs are never released.
  std::vector<int64_t> last_use(g.values.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (int32_t id : g.nodes[k].inputs)
      if (id >= 0) last_use[id] = static_cast<int64_t>(k);
  for (uint32_t id : g.outputs) last_use[id] = -1;
  for (size_t id = 0; id < g.values.size(); ++id) {
    const ValueKind kind = g.values[id].kind;
    const bool transient = kind == ValueKind::Intermediate || kind == ValueKind::Input || kind == ValueKind::Output;
    if (transient && last_use[id] >= 0) release_after_[last_use[id]].push_back(static_cast<uint32_t>(id));
  }
}

namespace {

void bind_input(const Value& v, const Tensor& t, size_t index, std::map<std::string, int64_t>& symbols) {
  EMBER_CHECK(t.defined(), InvalidArgument, "[forward] input ", index, " (\"", v.name, "\") is undefined");
  EMBER_CHECK(t.dtype() == v.dtype, DTypeMismatch, "[forward] input ", index, " (\"", v.name, "\") should be ",
              v.dtype, ", got ", t.dtype());
  auto expected = [&] {
    std::string s = "[";
    for (size_t d = 0; d < v.shape.size(); ++d)
      s += (d ? ", " : "") + (v.shape[d].is_symbolic() ? v.shape[d].symbol : std::to_string(v.shape[d].size));
    return s + "]";
  };
  EMBER_CHECK(t.dim() == static_cast<int64_t>(v.shape.size()), ShapeMismatch, "[forward] input ", index, " (\"",
              v.name, "\") should have shape ", expected(), ", got ", shape_str(t.sizes()));
  for (size_t d = 0; d < v.shape.size(); ++d) {
    const Dim& dim = v.shape[d];
    const int64_t got = t.sizes()[d];
    if (!dim.is_symbolic()) {
      EMBER_CHECK(got == dim.size, ShapeMismatch, "[forward] input ", index, " (\"", v.name, "\") should have shape ",
                  expected(), ", got ", shape_str(t.sizes()));
      continue;
    }
    auto [it, fresh] = symbols.emplace(dim.symbol, got);
    EMBER_CHECK(fresh || it->second == got, ShapeMismatch, "[forward] input ", index, " (\"", v.name, "\") dim ", d,
                " is ", dim.symbol, " = ", got, ", but an earlier input has ", dim.symbol, " = ", it->second);
  }
}

}  // namespace

TensorList Executor::run(const TensorList& inputs, const std::vector<Tensor>& stored, const RunContext& ctx) const {
  EMBER_CHECK(inputs.size() == g_.inputs.size(), InvalidArgument, "[forward] the model takes ", g_.inputs.size(),
              " inputs, got ", inputs.size());
  std::vector<Tensor> env(g_.values.size());
  std::map<std::string, int64_t> symbols;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const uint32_t id = g_.inputs[i];
    bind_input(g_.values[id], inputs[i], i, symbols);
    EMBER_CHECK(inputs[i].device() == ctx.device, DeviceMismatch, "[forward] input ", i, " (\"", g_.values[id].name,
                "\") is on ", inputs[i].device(), ", the model on ", ctx.device);
    env[id] = inputs[i];
  }
  for (size_t id = 0; id < stored.size(); ++id)
    if (stored[id].defined()) env[id] = stored[id];
  TensorList args;
  const bool profile = op_profile_on();
  for (size_t k = 0; k < g_.nodes.size(); ++k) {
    const Node& n = g_.nodes[k];
    const GraphOp* op = find_graph_op(n.op);  // validated at load
    args.clear();
    for (int32_t id : n.inputs) args.push_back(id >= 0 ? env[id] : Tensor());
    TensorList out;
    try {
      const auto start = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
      const MemoryPlan::Site site(n.attributes.node);  // names its blocks in a recorded plan
      out = op->run(args, n.attributes, ctx);
      if (profile) {
        if (ctx.device.is_cuda()) cuda_hooks().synchronize(ctx.device);
        op_profile_add(n.op, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    } catch (const Error& e) {
      // Name the node, so a failure deep in a model points at where it happened.
      throw Error(e.code(), str_cat(e.what(), " (in ", n.attributes.node, ")"));
    } catch (const std::bad_alloc&) {
      // Host memory ran out outside ember's allocator (a container in an op): the same error.
      throw Error(ErrorCode::OutOfMemory, str_cat("[forward] out of host memory (in ", n.attributes.node, ")"));
    }
    EMBER_CHECK(out.size() == n.outputs.size(), InvalidModel, "[forward] ", n.attributes.node, " produced ",
                out.size(), " outputs, the graph lists ", n.outputs.size());
    for (size_t j = 0; j < out.size(); ++j) env[n.outputs[j]] = std::move(out[j]);
    for (uint32_t id : release_after_[k]) env[id] = Tensor();
  }
  TensorList result;
  for (uint32_t id : g_.outputs) result.push_back(env[id]);
  return result;
}

}  // namespace ember::graph

// Dependency-ordered traversal: count, for every node reachable from the outputs, how many
// edges lead into it; a node runs once all of them have delivered (or declined) a gradient.
// Among ready nodes the most recently created runs first, which keeps memory low the way
// PyTorch's engine does, and makes the order (and so the sums' order) deterministic.
#include "autograd/engine.h"

#include <queue>
#include <vector>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/meta.h"
#include "autograd/node.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "runtime/error.h"

namespace ember {

namespace {

struct Capture {
  Node* node;
  uint32_t slot;
};

// Runs the graph from `roots` (edges with their seed gradients). With `captures`, returns the
// gradient reaching each captured (node, slot) and runs only the nodes that lead to one,
// accumulating into no leaf.
TensorList run(const std::vector<Edge>& roots, const TensorList& seeds, bool retain_graph, bool create_graph,
               const std::vector<Capture>* captures) {
  EnableGradGuard grad_mode(create_graph);

  // Dependencies of every reachable node.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> order;  // discovery order
  {
    std::vector<Node*> stack;
    std::unordered_set<Node*> seen;
    for (const Edge& e : roots)
      if (e.node && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      order.push_back(n);
      for (const Edge& e : n->next_edges) {
        if (!e.node) continue;
        ++deps[e.node.get()];
        if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
      }
    }
    for (const Edge& e : roots)
      if (e.node) ++deps[e.node.get()];
  }

  // For grad(): only the nodes from which a captured node is reachable need to run.
  std::unordered_set<Node*> needed;
  if (captures) {
    std::unordered_set<Node*> targets;
    for (const Capture& c : *captures) targets.insert(c.node);
    // Reverse discovery order visits children before parents except around cycles, which a
    // graph has none of; iterate to a fixed point to be safe with DAG re-discovery.
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* n = *it;
        if (needed.count(n)) continue;
        bool need = targets.count(n) > 0;
        for (const Edge& e : n->next_edges)
          if (e.node && needed.count(e.node.get())) need = true;
        if (need) {
          needed.insert(n);
          changed = true;
        }
      }
    }
  }

  std::unordered_map<Node*, TensorList> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;  // holds nodes alive while queued
  auto cmp = [](Node* a, Node* b) { return a->sequence_nr < b->sequence_nr; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(cmp)> ready(cmp);

  auto deliver = [&](const Edge& e, const Tensor& g) {
    Node* n = e.node.get();
    TensorList& buf = buffers[n];
    if (buf.empty()) buf.resize(n->outputs.size());
    keep.emplace(n, e.node);
    if (g.defined()) {
      Tensor& slot = buf[e.input_nr];
      slot = slot.defined() ? add(slot, g) : g;
    }
    if (--deps[n] == 0) ready.push(n);
  };
  for (size_t i = 0; i < roots.size(); ++i)
    if (roots[i].node) deliver(roots[i], seeds[i]);

  TensorList captured(captures ? captures->size() : 0);
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::shared_ptr<Node> hold = keep[n];
    TensorList grads = std::move(buffers[n]);
    buffers.erase(n);
    // Hooks of non-leaf tensors, then captures for grad().
    for (auto* hook_map : {&n->output_hooks, &n->retain_hooks})
      for (auto& [slot, hooks] : *hook_map)
        for (const GradHook& hook : hooks)
          if (slot < grads.size() && grads[slot].defined()) {
            Tensor r = hook(grads[slot]);
            if (r.defined()) grads[slot] = r;
          }
    if (captures) {
      for (size_t c = 0; c < captures->size(); ++c)
        if ((*captures)[c].node == n && (*captures)[c].slot < grads.size()) {
          const Tensor& g = grads[(*captures)[c].slot];
          if (g.defined()) captured[c] = captured[c].defined() ? add(captured[c], g) : g;
        }
    }
    const bool run_node = captures ? (needed.count(n) && !dynamic_cast<AccumulateGrad*>(n)) : true;
    TensorList out;
    if (run_node) {
      out = n->apply(grads);
      if (!retain_graph) n->release();
    }
    for (size_t i = 0; i < n->next_edges.size(); ++i) {
      const Edge& e = n->next_edges[i];
      if (!e.node) continue;
      deliver(e, i < out.size() ? out[i] : Tensor());
    }
    keep.erase(n);
  }
  return captured;
}

void seeds_for(const TensorList& outputs, const TensorList& grad_outputs, const char* op, std::vector<Edge>& roots,
               TensorList& seeds) {
  EMBER_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), InvalidArgument, "[", op, "] got ",
              grad_outputs.size(), " gradients for ", outputs.size(), " outputs");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& y = outputs[i];
    EMBER_CHECK(y.requires_grad(), InvalidArgument, "[", op, "] element ", i,
                " of the outputs does not require grad and has no grad_fn");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      EMBER_CHECK(y.numel() == 1, InvalidArgument, "[", op,
                  "] a gradient can be implied only for one-element outputs; output ", i, " has shape ",
                  shape_str(y.sizes()));
      g = ones_like(y);
    } else {
      EMBER_CHECK(g.sizes() == y.sizes(), ShapeMismatch, "[", op, "] gradient ", i, " has shape ",
                  shape_str(g.sizes()), " but its output has shape ", shape_str(y.sizes()));
    }
    roots.push_back(autograd::gradient_edge(y));
    seeds.push_back(g);
  }
}

// Callbacks queued by the backward() running on this thread (null outside one).
thread_local std::vector<std::function<void()>>* t_callbacks = nullptr;

}  // namespace

void autograd::queue_callback(std::function<void()> callback) {
  EMBER_CHECK(t_callbacks != nullptr, InvalidArgument,
              "[queue_callback] expected to be called during backward() (from a gradient hook)");
  t_callbacks->push_back(std::move(callback));
}

void backward(const TensorList& outputs, const TensorList& grad_outputs, bool retain_graph, bool create_graph) {
  std::vector<Edge> roots;
  TensorList seeds;
  seeds_for(outputs, grad_outputs, "backward", roots, seeds);
  std::vector<std::function<void()>> callbacks;
  auto* outer = t_callbacks;  // a hook may itself call backward(): each pass has its own list
  t_callbacks = &callbacks;
  try {
    run(roots, seeds, retain_graph || create_graph, create_graph, nullptr);
    for (size_t i = 0; i < callbacks.size(); ++i) {
      std::function<void()> f = std::move(callbacks[i]);  // f may queue more (grows the vector)
      f();
    }
  } catch (...) {
    t_callbacks = outer;
    throw;
  }
  t_callbacks = outer;
}

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs,
                std::optional<bool> retain_graph, bool create_graph, bool allow_unused) {
  std::vector<Edge> roots;
  TensorList seeds;
  seeds_for(outputs, grad_outputs, "grad", roots, seeds);
  std::vector<Capture> captures;
  std::vector<Edge> input_edges;  // keeps accumulators of leaf inputs alive during the run
  for (size_t i = 0; i < inputs.size(); ++i) {
    EMBER_CHECK(inputs[i].requires_grad(), InvalidArgument, "[grad] input ", i, " does not require grad");
    Edge e = autograd::gradient_edge(inputs[i]);
    captures.push_back({e.node.get(), e.input_nr});
    input_edges.push_back(std::move(e));
  }
  TensorList result = run(roots, seeds, retain_graph.value_or(create_graph), create_graph, &captures);
  for (size_t i = 0; i < result.size(); ++i)
    EMBER_CHECK(result[i].defined() || allow_unused, InvalidArgument, "[grad] input ", i,
                " was not used to compute the outputs (pass allow_unused=true to get an undefined gradient)");
  return result;
}

}  // namespace ember

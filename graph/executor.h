// Runs a graph through ember's eager ops: binds inputs (checking dtypes and shapes, symbolic
// dims consistent across inputs), runs the nodes in order and drops every intermediate after
// its last use. Autograd records as usual, so gradients reach parameters that require grad.
#pragma once

#include "graph/graph.h"
#include "graph/ops.h"

namespace ember::graph {

class Executor {
 public:
  /// `stored` holds, per value id, the tensor of each parameter, buffer and constant.
  explicit Executor(const Graph& g);
  TensorList run(const TensorList& inputs, const std::vector<Tensor>& stored, const RunContext& ctx) const;

 private:
  const Graph& g_;
  std::vector<std::vector<uint32_t>> release_after_;  // per node: values whose last use it is
};

}  // namespace ember::graph

// The operators a graph may use: for each, its arity, its attributes and their types (checked
// when a file is loaded) and how it runs (through ember's eager ops, so it runs on every device
// and records autograd). docs/FORMAT.md lists them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "runtime/tensor.h"

namespace ember::graph {

struct RunContext {
  bool training = false;  // dropout is active only in training mode
  Device device;
};

/// Allowed types of an attribute, as a bit mask over AttrType.
constexpr uint32_t attr_bit(AttrType t) { return 1u << static_cast<unsigned>(t); }
constexpr uint32_t kNumber = attr_bit(AttrType::Int) | attr_bit(AttrType::Float) | attr_bit(AttrType::Bool);

struct AttrSpec {
  const char* name;
  uint32_t types;         // attr_bit(...) | ...; None is always allowed for optional attributes
  bool required = false;
};

using OpFn = std::function<TensorList(const TensorList& inputs, const Attributes& attrs, const RunContext& ctx)>;

struct GraphOp {
  std::string name;
  int min_inputs = 1, max_inputs = 1;  // max -1: any number
  int outputs = 1;                     // -1: as many as the node lists (split)
  std::vector<AttrSpec> attrs;
  OpFn run;
  uint32_t optional_inputs = 0;        // bit i: input i may be absent (-1)
};

/// The operator named `name`, or nullptr.
const GraphOp* find_graph_op(const std::string& name);
/// Every operator, sorted by name.
const std::vector<GraphOp>& graph_ops();

}  // namespace ember::graph

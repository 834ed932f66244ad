#include "graph/graph.h"

#include <set>

#include "graph/ops.h"
#include "runtime/error.h"

namespace ember::graph {

const char* value_kind_name(ValueKind k) {
  switch (k) {
    case ValueKind::Input: return "input";
    case ValueKind::Output: return "output";
    case ValueKind::Parameter: return "parameter";
    case ValueKind::Buffer: return "buffer";
    case ValueKind::Constant: return "constant";
    case ValueKind::Intermediate: return "intermediate";
  }
  return "?";
}

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::None: return "none";
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::Bool: return "bool";
    case AttrType::String: return "string";
    case AttrType::Ints: return "ints";
    case AttrType::Floats: return "floats";
    case AttrType::DType: return "dtype";
  }
  return "?";
}

AttrType attr_type(const AttrValue& v) { return static_cast<AttrType>(v.index()); }

// ---- Attributes ----------------------------------------------------------------------------

bool Attributes::has(const std::string& name) const {
  auto it = values.find(name);
  return it != values.end() && attr_type(it->second) != AttrType::None;
}

bool Attributes::is_none(const std::string& name) const { return !has(name); }

const AttrValue& Attributes::get(const std::string& name) const {
  auto it = values.find(name);
  EMBER_CHECK(it != values.end() && attr_type(it->second) != AttrType::None, InvalidModel, "[", node,
              "] missing attribute \"", name, "\"");
  return it->second;
}

namespace {

[[noreturn]] void wrong_type(const std::string& node, const std::string& name, const char* want, const AttrValue& v) {
  throw_error(ErrorCode::InvalidModel, str_cat("[", node, "] attribute \"", name, "\" should be ", want, ", got ",
                                               attr_type_name(attr_type(v))));
}

}  // namespace

int64_t Attributes::get_int(const std::string& name) const {
  const AttrValue& v = get(name);
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  wrong_type(node, name, "an int", v);
}

int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  return has(name) ? get_int(name) : fallback;
}

double Attributes::get_float(const std::string& name) const {
  const AttrValue& v = get(name);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  wrong_type(node, name, "a float", v);
}

double Attributes::get_float(const std::string& name, double fallback) const {
  return has(name) ? get_float(name) : fallback;
}

bool Attributes::get_bool(const std::string& name, bool fallback) const {
  if (!has(name)) return fallback;
  const AttrValue& v = get(name);
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  if (const auto* i = std::get_if<int64_t>(&v)) return *i != 0;
  wrong_type(node, name, "a bool", v);
}

std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  if (!has(name)) return fallback;
  const AttrValue& v = get(name);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  wrong_type(node, name, "a string", v);
}

std::vector<int64_t> Attributes::get_ints(const std::string& name) const {
  const AttrValue& v = get(name);
  if (const auto* s = std::get_if<std::vector<int64_t>>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return {*i};
  wrong_type(node, name, "a list of ints", v);
}

std::optional<std::vector<int64_t>> Attributes::get_optional_ints(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  return get_ints(name);
}

DType Attributes::get_dtype(const std::string& name) const {
  const AttrValue& v = get(name);
  if (const auto* d = std::get_if<DType>(&v)) return *d;
  wrong_type(node, name, "a dtype", v);
}

std::optional<DType> Attributes::get_optional_dtype(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  return get_dtype(name);
}

int64_t Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int64_t>(i);
  return -1;
}

// ---- validation ------------------------------------------------------------------------------

namespace {

std::string node_label(const Node& n, size_t index) {
  return str_cat("node ", index, " (", n.op, n.name.empty() ? "" : " \"" + n.name + "\"", ")");
}

}  // namespace

void validate(const Graph& g) {
  const size_t nv = g.values.size();
  std::vector<bool> defined(nv, false);
  std::set<std::string> names;
  for (size_t i = 0; i < nv; ++i) {
    const Value& v = g.values[i];
    EMBER_CHECK(!v.name.empty(), InvalidModel, "value ", i, " has no name");
    EMBER_CHECK(names.insert(v.name).second, InvalidModel, "value ", i, " reuses the name \"", v.name, "\"");
    for (size_t d = 0; d < v.shape.size(); ++d) {
      const Dim& dim = v.shape[d];
      EMBER_CHECK(dim.size >= 0 || !dim.symbol.empty(), InvalidModel, "value \"", v.name, "\" dim ", d,
                  " is neither a size (>= 0) nor a symbol");
    }
    // Parameters, buffers and constants hold data; graph inputs are given by the caller.
    if (v.kind == ValueKind::Parameter || v.kind == ValueKind::Buffer || v.kind == ValueKind::Constant ||
        v.kind == ValueKind::Input)
      defined[i] = true;
    if (v.kind == ValueKind::Parameter || v.kind == ValueKind::Buffer || v.kind == ValueKind::Constant)
      for (const Dim& dim : v.shape)
        EMBER_CHECK(!dim.is_symbolic(), InvalidModel, "value \"", v.name, "\" (", value_kind_name(v.kind),
                    ") has a symbolic dim \"", dim.symbol, "\"; stored data needs fixed sizes");
  }
  for (uint32_t id : g.inputs) {
    EMBER_CHECK(id < nv, InvalidModel, "graph input id ", id, " is out of range (", nv, " values)");
    EMBER_CHECK(g.values[id].kind == ValueKind::Input, InvalidModel, "graph input \"", g.values[id].name,
                "\" is a value of kind ", value_kind_name(g.values[id].kind), ", expected input");
  }
  for (size_t i = 0; i < nv; ++i)
    if (g.values[i].kind == ValueKind::Input)
      EMBER_CHECK(std::find(g.inputs.begin(), g.inputs.end(), i) != g.inputs.end(), InvalidModel, "value \"",
                  g.values[i].name, "\" is of kind input but not listed among the graph inputs");
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    const std::string where = node_label(n, k);
    const GraphOp* op = find_graph_op(n.op);
    EMBER_CHECK(op != nullptr, InvalidModel, where, ": unknown operator \"", n.op, "\"");
    const int ni = static_cast<int>(n.inputs.size());
    EMBER_CHECK(ni >= op->min_inputs && (op->max_inputs < 0 || ni <= op->max_inputs), InvalidModel, where, ": ",
                ni, " inputs, expected ", op->min_inputs,
                op->max_inputs < 0 ? " or more" : str_cat(op->max_inputs == op->min_inputs ? "" : str_cat(" to ", op->max_inputs)));
    EMBER_CHECK(op->outputs < 0 ? !n.outputs.empty() : static_cast<int>(n.outputs.size()) == op->outputs,
                InvalidModel, where, ": ", n.outputs.size(), " outputs, expected ",
                op->outputs < 0 ? std::string("at least 1") : std::to_string(op->outputs));
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const int32_t id = n.inputs[j];
      if (id == -1) {
        EMBER_CHECK(j < 32 && (op->optional_inputs >> j) & 1u, InvalidModel, where, ": input ", j,
                    " is absent (-1), but this operator requires it");
        continue;
      }
      EMBER_CHECK(id >= 0 && static_cast<size_t>(id) < nv, InvalidModel, where, ": input ", j, " refers to value ",
                  id, ", out of range (", nv, " values)");
      EMBER_CHECK(defined[id], InvalidModel, where, ": input ", j, " (\"", g.values[id].name,
                  "\") is used before any node produces it");
    }
    for (uint32_t id : n.outputs) {
      EMBER_CHECK(id < nv, InvalidModel, where, ": output refers to value ", id, ", out of range (", nv, " values)");
      const Value& v = g.values[id];
      EMBER_CHECK(v.kind == ValueKind::Intermediate || v.kind == ValueKind::Output, InvalidModel, where,
                  ": output \"", v.name, "\" is a value of kind ", value_kind_name(v.kind));
      EMBER_CHECK(!defined[id], InvalidModel, where, ": output \"", v.name, "\" is produced twice");
      defined[id] = true;
    }
    for (const auto& [name, value] : n.attributes.values) {
      const std::string& attr_name = name;  // a structured binding: clang 14 cannot capture one
      auto spec =
          std::find_if(op->attrs.begin(), op->attrs.end(), [&](const AttrSpec& s) { return attr_name == s.name; });
      EMBER_CHECK(spec != op->attrs.end(), InvalidModel, where, ": unknown attribute \"", name, "\"");
      const AttrType t = attr_type(value);
      EMBER_CHECK(t == AttrType::None || (spec->types & attr_bit(t)) != 0, InvalidModel, where, ": attribute \"",
                  name, "\" has type ", attr_type_name(t), ", which this operator does not take");
    }
    for (const AttrSpec& s : op->attrs)
      EMBER_CHECK(!s.required || n.attributes.has(s.name), InvalidModel, where, ": missing attribute \"", s.name, "\"");
  }
  for (uint32_t id : g.outputs) {
    EMBER_CHECK(id < nv, InvalidModel, "graph output id ", id, " is out of range (", nv, " values)");
    EMBER_CHECK(defined[id], InvalidModel, "graph output \"", g.values[id].name, "\" is never produced");
  }
}

}  // namespace ember::graph

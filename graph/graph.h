// A model's graph in memory: values, nodes with typed attributes, named inputs and outputs. Built
// from a verified .ember file (serialization/model_file.h) or by code; run by graph/executor.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "runtime/dtype.h"

namespace ember::graph {

enum class ValueKind : uint8_t { Input, Output, Parameter, Buffer, Constant, Intermediate };
const char* value_kind_name(ValueKind k);

/// A dim: a fixed size, or a symbol (e.g. "batch") bound when the graph runs.
struct Dim {
  int64_t size = -1;   // >= 0 when fixed
  std::string symbol;  // set when size is -1
  bool is_symbolic() const { return size < 0; }
};

struct Value {
  std::string name;
  DType dtype = kFloat32;
  std::vector<Dim> shape;
  ValueKind kind = ValueKind::Intermediate;
  bool requires_grad = false;
};

enum class AttrType : uint8_t { None, Int, Float, Bool, String, Ints, Floats, DType };
const char* attr_type_name(AttrType t);

using AttrValue = std::variant<std::monostate, int64_t, double, bool, std::string, std::vector<int64_t>,
                               std::vector<double>, DType>;
AttrType attr_type(const AttrValue& v);

/// A node's attributes by name, read with the type the op expects; a missing or mistyped
/// attribute is an InvalidModel error naming the node.
class Attributes {
 public:
  std::map<std::string, AttrValue> values;

  bool has(const std::string& name) const;
  /// True when absent or explicitly None.
  bool is_none(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  /// A float attribute; an int attribute is accepted and converted.
  double get_float(const std::string& name) const;
  double get_float(const std::string& name, double fallback) const;
  bool get_bool(const std::string& name, bool fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name) const;
  std::optional<std::vector<int64_t>> get_optional_ints(const std::string& name) const;
  DType get_dtype(const std::string& name) const;
  std::optional<DType> get_optional_dtype(const std::string& name) const;
  const AttrValue& get(const std::string& name) const;

  std::string node;  // for error messages
};

struct Node {
  std::string op;
  std::vector<int32_t> inputs;    // value ids; -1: absent optional input
  std::vector<uint32_t> outputs;  // value ids
  Attributes attributes;
  std::string name;
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<uint32_t> inputs;
  std::vector<uint32_t> outputs;
  std::map<std::string, std::string> metadata;
  std::string producer, producer_version, torch_version;

  /// The id of the value named `name`, or -1.
  int64_t find_value(const std::string& name) const;
};

/// Checks what a file's verifier cannot: every id in range, each value produced once before
/// use, op names known with the right arity and attribute types, inputs and outputs of the
/// right kinds. Throws InvalidModel naming the node or value.
void validate(const Graph& g);

}  // namespace ember::graph

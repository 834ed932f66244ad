#include "ops/registry.h"

#include <algorithm>
#include <sstream>

#include "ops/register.h"
#include "runtime/cuda_hooks.h"

namespace ember {

const OpRegistry& OpRegistry::get() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_creation_ops(r);
    register_random_ops(r);
    register_copy_ops(r);
    register_view_ops(r);
    register_unary_ops(r);
    register_binary_ops(r);
    register_reduction_ops(r);
    register_matmul_ops(r);
    register_join_ops(r);
    register_index_ops(r);
    register_layout_ops(r);
    register_loss_ops(r);
    register_conv_ops(r);
    register_norm_ops(r);
    register_pool_ops(r);
    register_softmax_ops(r);
    register_layer_norm_ops(r);
    register_scan_ops(r);
    register_sort_ops(r);
    std::sort(r.ops_.begin(), r.ops_.end(), [](const OpInfo& a, const OpInfo& b) { return a.name < b.name; });
    return r;
  }();
  return registry;
}

const OpInfo* OpRegistry::find(const std::string& name) const {
  auto it = std::lower_bound(ops_.begin(), ops_.end(), name,
                             [](const OpInfo& op, const std::string& n) { return op.name < n; });
  return it != ops_.end() && it->name == name ? &*it : nullptr;
}

void OpRegistry::add(const std::string& family, const std::string& name, uint32_t dtype_set, OpSupport support) {
  const bool cuda = support.cuda_kernel && cuda_hooks().is_built();
  // A name declared twice (pow of a scalar and of a tensor) merges into one entry.
  for (OpInfo& op : ops_) {
    if (op.name != name) continue;
    for (DType t : dtypes_in(dtype_set))
      if (std::find(op.dtypes.begin(), op.dtypes.end(), t) == op.dtypes.end()) op.dtypes.push_back(t);
    std::sort(op.dtypes.begin(), op.dtypes.end());
    op.cpu = op.cpu && support.cpu;
    op.cuda = op.cuda && cuda;
    op.backward = op.backward && support.backward;
    return;
  }
  ops_.push_back({name, family, dtypes_in(dtype_set), support.cpu, cuda, support.backward});
}

std::string registry_json(const OpRegistry& registry) {
  std::ostringstream os;
  os << "[\n";
  const auto& ops = registry.ops();
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpInfo& op = ops[i];
    os << "  {\"name\": \"" << op.name << "\", \"family\": \"" << op.family << "\", \"cpu\": "
       << (op.cpu ? "true" : "false") << ", \"cuda\": " << (op.cuda ? "true" : "false")
       << ", \"backward\": " << (op.backward ? "true" : "false") << ", \"dtypes\": [";
    for (size_t j = 0; j < op.dtypes.size(); ++j) os << (j ? ", " : "") << '"' << dtype_name(op.dtypes[j]) << '"';
    os << "]}" << (i + 1 < ops.size() ? "," : "") << "\n";
  }
  os << "]\n";
  return os.str();
}

}  // namespace ember

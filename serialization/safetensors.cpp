#include "serialization/safetensors.h"

#include "ops/copy.h"
#include "runtime/error.h"
#include "serialization/atomic_file.h"
#include "serialization/json.h"

namespace ember {

namespace {

const char* safetensors_dtype(DType t) {
  switch (t) {
    case kBool: return "BOOL";
    case kUInt8: return "U8";
    case kInt8: return "I8";
    case kInt32: return "I32";
    case kInt64: return "I64";
    case kFloat16: return "F16";
    case kBFloat16: return "BF16";
    case kFloat32: return "F32";
    case kFloat64: return "F64";
  }
  return "?";
}

}  // namespace

std::string safetensors_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      if (!first) h += ",";
      first = false;
      h.append(json_string(k)).append(":").append(json_string(v));
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(name != "__metadata__", InvalidArgument, "[save_safetensors] \"__metadata__\" is not a tensor name");
    if (h.size() > 1) h += ",";
    h.append(json_string(name)).append(":{\"dtype\":\"").append(safetensors_dtype(t.dtype())).append("\",\"shape\":[");
    for (int64_t d = 0; d < t.dim(); ++d) h.append(d ? "," : "").append(std::to_string(t.sizes()[d]));
    const uint64_t end = offset + t.nbytes();
    h.append("],\"data_offsets\":[").append(std::to_string(offset)).append(",").append(std::to_string(end)).append("]}");
    offset = end;
  }
  return h + "}";
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> cpu;
  for (const auto& [name, t] : tensors) cpu.emplace_back(name, t.detach().to(Device::cpu()).contiguous());
  std::string header = safetensors_header(cpu, metadata);
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const uint64_t length = header.size();
  AtomicFile file(path);
  file.write(&length, 8);  // little-endian hosts only
  file.write(header);
  for (const auto& [name, t] : cpu) file.write(t.data(), t.nbytes());
  file.commit();
}

}  // namespace ember

#include "nn/checkpoint.h"

#include <xxhash.h>

#include <fstream>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "ops/creation.h"
#include "runtime/error.h"
#include "runtime/rng.h"
#include "serialization/atomic_file.h"

namespace ember::nn {

namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'R', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;
constexpr int kMaxDims = 16;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Reads fields from a byte range, refusing to read past its end.
class Cursor {
 public:
  Cursor(const char* p, size_t n, const std::string& path) : p_(p), left_(n), path_(path) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_, sizeof(T));
    advance(sizeof(T));
    return v;
  }
  const char* bytes(uint64_t n, const char* what) {
    need(n, what);
    const char* r = p_;
    advance(n);
    return r;
  }
  size_t left() const { return left_; }

 private:
  void need(uint64_t n, const char* what) {
    EMBER_CHECK(n <= left_, InvalidModel, "[load_tensors] ", path_, ": truncated while reading ", what, " (needs ",
                n, " bytes, ", left_, " left)");
  }
  void advance(size_t n) {
    p_ += n;
    left_ -= n;
  }
  const char* p_;
  size_t left_;
  const std::string& path_;
};

}  // namespace

void save_tensors(const std::string& path, const TensorMap& tensors) {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, static_cast<uint32_t>(tensors.size()));
  for (const auto& [name, tensor] : tensors) {
    Tensor t = tensor.detach().to(Device::cpu()).contiguous();
    EMBER_CHECK(t.dim() <= kMaxDims, InvalidArgument, "[save_tensors] \"", name, "\" has ", t.dim(),
                " dims (at most ", kMaxDims, ")");
    put<uint32_t>(out, static_cast<uint32_t>(name.size()));
    out += name;
    put<uint8_t>(out, static_cast<uint8_t>(t.dtype()));
    put<uint8_t>(out, static_cast<uint8_t>(t.dim()));
    for (int64_t d : t.sizes()) put<int64_t>(out, d);
    put<uint64_t>(out, t.nbytes());
    out.append(static_cast<const char*>(t.data()), t.nbytes());
  }
  put<uint64_t>(out, XXH64(out.data(), out.size(), 0));

  AtomicFile file(path);
  file.write(out);
  file.commit();
}

TensorMap load_tensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EMBER_CHECK(f.good(), Io, "[load_tensors] cannot open ", path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EMBER_CHECK(bytes.size() >= sizeof(kMagic) + 16 && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0,
              InvalidModel, "[load_tensors] ", path, ": not an ember checkpoint (bad magic or too short)");
  const size_t body = bytes.size() - sizeof(uint64_t);
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + body, sizeof(stored));
  EMBER_CHECK(XXH64(bytes.data(), body, 0) == stored, InvalidModel, "[load_tensors] ", path,
              ": checksum mismatch (the file is damaged or incomplete)");
  Cursor c(bytes.data() + sizeof(kMagic), body - sizeof(kMagic), path);
  const uint32_t version = c.get<uint32_t>("the version");
  EMBER_CHECK(version == kVersion, InvalidModel, "[load_tensors] ", path, ": format version ", version,
              " is not supported (expected ", kVersion, ")");
  const uint32_t count = c.get<uint32_t>("the record count");
  TensorMap out;
  for (uint32_t r = 0; r < count; ++r) {
    const uint32_t name_len = c.get<uint32_t>("a name length");
    std::string name(c.bytes(name_len, "a name"), name_len);
    const uint8_t code = c.get<uint8_t>("a dtype");
    EMBER_CHECK(code < kNumDTypes, InvalidModel, "[load_tensors] ", path, ": \"", name, "\" has unknown dtype code ",
                int(code));
    const DType dtype = static_cast<DType>(code);
    const uint8_t ndim = c.get<uint8_t>("a dim count");
    EMBER_CHECK(ndim <= kMaxDims, InvalidModel, "[load_tensors] ", path, ": \"", name, "\" has ", int(ndim), " dims");
    Shape shape;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; ++d) {
      const int64_t s = c.get<int64_t>("a dim");
      EMBER_CHECK(s >= 0, InvalidModel, "[load_tensors] ", path, ": \"", name, "\" has a negative dim ", s);
      EMBER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(s), &numel), InvalidModel, "[load_tensors] ",
                  path, ": \"", name, "\": the element count overflows");
      shape.push_back(s);
    }
    const uint64_t nbytes = c.get<uint64_t>("a byte count");
    uint64_t expected = 0;
    EMBER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(itemsize(dtype)), &expected) && expected == nbytes,
                InvalidModel, "[load_tensors] ", path, ": \"", name, "\" of shape ", shape_str(shape), " and ", dtype,
                " needs ", expected, " bytes but its record says ", nbytes);
    const char* data = c.bytes(nbytes, "tensor data");
    Tensor t = empty(shape, {dtype, Device::cpu()});
    if (nbytes) std::memcpy(t.data(), data, nbytes);
    EMBER_CHECK(out.emplace(name, t).second, InvalidModel, "[load_tensors] ", path, ": \"", name, "\" appears twice");
  }
  EMBER_CHECK(c.left() == 0, InvalidModel, "[load_tensors] ", path, ": ", c.left(), " unexpected bytes after the records");
  return out;
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer, int64_t step) {
  TensorMap all;
  for (auto& [key, t] : model.state_dict()) all.emplace("model." + key, t);
  for (auto& [key, t] : optimizer.state_dict()) all.emplace("optim." + key, t);
  all.emplace("step", scalar_tensor(step));
  const Generator& gen = default_generator(Device::cpu());
  all.emplace("rng.cpu.seed", scalar_tensor(static_cast<int64_t>(gen.seed())));
  all.emplace("rng.cpu.offset", scalar_tensor(static_cast<int64_t>(gen.offset())));
  save_tensors(path, all);
}

int64_t load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer) {
  TensorMap all = load_tensors(path);
  TensorMap model_state, optim_state;
  for (auto& [key, t] : all) {
    if (key.rfind("model.", 0) == 0) model_state.emplace(key.substr(6), t);
    else if (key.rfind("optim.", 0) == 0) optim_state.emplace(key.substr(6), t);
  }
  for (const char* key : {"step", "rng.cpu.seed", "rng.cpu.offset"})
    EMBER_CHECK(all.count(key), InvalidModel, "[load_checkpoint] ", path, ": missing \"", key, "\"");
  model.load_state_dict(model_state);
  optimizer.load_state_dict(optim_state);
  Generator& gen = default_generator(Device::cpu());
  gen.manual_seed(static_cast<uint64_t>(all["rng.cpu.seed"].item<int64_t>()));
  gen.set_offset(static_cast<uint64_t>(all["rng.cpu.offset"].item<int64_t>()));
  return all["step"].item<int64_t>();
}

}  // namespace ember::nn

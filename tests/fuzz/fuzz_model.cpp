// libFuzzer harness for the model loader: any bytes must give a valid model or an ember::Error,
// never a crash, a hang or a sanitizer report. Built three ways (tests/fuzz/meson.build):
//   fuzz_model_load         read_model with every check (the checksum first)
//   fuzz_model_structure    the checksum off, so mutations reach the FlatBuffers verifier and
//                           the structural checks behind it (bugs hide in files that pass it)
//   fuzz_model_run          the checksum off, then load the weights and run the graph once on
//                           the CPU with inputs of the declared shapes (symbolic dims = 2)
#include <cstddef>
#include <cstdint>
#include <string>

#include "ember.h"

using namespace ember;

#ifndef EMBER_FUZZ_MODE
#define EMBER_FUZZ_MODE 0
#endif

namespace {

// Whether every value the file declares is small (symbolic dims taken as 2): a valid graph may
// legitimately compute on tensors of any size, which would only make the run harness slow.
bool small_graph(const graph::Graph& g) {
  for (const graph::Value& v : g.values) {
    int64_t n = 1;
    for (const graph::Dim& d : v.shape) {
      const int64_t s = d.is_symbolic() ? 2 : d.size;
      if (s < 0 || __builtin_mul_overflow(n, s, &n) || n > (1 << 22)) return false;
    }
  }
  return true;
}

// Inputs of the declared shapes and dtypes; refuse absurd sizes before allocating.
TensorList inputs_for(const graph::Graph& g) {
  TensorList in;
  for (uint32_t id : g.inputs) {
    const graph::Value& v = g.values.at(id);
    Shape shape;
    int64_t n = 1;
    for (const graph::Dim& d : v.shape) {
      const int64_t s = d.is_symbolic() ? 2 : d.size;
      if (s < 0 || s > (1 << 16)) return {};
      n *= s;
      if (n > (1 << 20)) return {};
      shape.push_back(s);
    }
    in.push_back(zeros(shape, {v.dtype, Device::cpu()}));
  }
  return in;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ModelFileOptions options;
  options.verify_checksum = EMBER_FUZZ_MODE == 0;
  try {
    ModelFile f = read_model(bytes_in_memory(std::move(bytes)), "fuzz input", options);
    if (EMBER_FUZZ_MODE == 2 && small_graph(f.graph)) {
      // The whole path an app takes: the model from the checked file, then one forward.
      const TensorList in = inputs_for(f.graph);
      if (in.size() != f.graph.inputs.size()) return 0;
      graph::Executor executor(f.graph);
      executor.run(in, f.data, {false, Device::cpu()});
      // And the inference fast path's rewrite of it (Model::forward in evaluation mode).
      NoGradGuard no_grad;
      graph::Graph optimised = f.graph;
      std::vector<Tensor> stored = f.data;
      graph::optimize_for_inference(optimised, stored, {false, Device::cpu()});
      graph::Executor(optimised).run(in, stored, {false, Device::cpu()});
    }
  } catch (const Error&) {
    // A clean refusal is the expected outcome for most inputs.
  }
  return 0;
}

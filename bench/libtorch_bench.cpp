// The libtorch column of the inference table (bench/inference_table.py): a TorchScript module
// traced in Python, loaded and run from C++ as a native app embedding libtorch would, timed
// the way the table times PyTorch in Python (CUDA events around `inner` forwards queued back to
// back, the median of `reps` such timings after warm-up). Built on the GPU machine against the
// installed PyTorch (tools/build-libtorch-bench.sh); not part of ember's build.
// Usage: libtorch_bench MODEL.pt DTYPE D0,D1,... [TOKEN_LIMIT]
//   DTYPE float32 | float16 | int64 (token ids in [0, TOKEN_LIMIT)). Prints one JSON line.
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/script.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> dims;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) dims.push_back(std::stoll(part));
  return dims;
}

// Milliseconds per forward: CUDA events around `inner` forwards, median over `reps`.
template <typename F>
double gpu_ms(F&& forward, int inner, int reps) {
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(start, stream);
    for (int i = 0; i < inner; ++i) forward();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms / inner);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL.pt float32|float16|int64 D0,D1,... [TOKEN_LIMIT]\n", argv[0]);
    return 2;
  }
  const std::string dtype = argv[2];
  const std::vector<int64_t> shape = parse_shape(argv[3]);
  // As the Python table: no TF32 in cuBLAS or cuDNN.
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  try {
    torch::jit::Module module = torch::jit::load(argv[1], torch::kCUDA);
    module.eval();
    c10::InferenceMode inference;
    const auto cuda = torch::TensorOptions().device(torch::kCUDA);
    torch::manual_seed(0);
    torch::Tensor x = dtype == "int64"   ? torch::randint(argc > 4 ? std::atoll(argv[4]) : 2, shape, cuda.dtype(torch::kLong))
                      : dtype == "float16" ? torch::randn(shape, cuda.dtype(torch::kHalf))
                                           : torch::randn(shape, cuda.dtype(torch::kFloat));
    std::vector<torch::jit::IValue> inputs{x};
    auto forward = [&] { module.forward(inputs); };
    for (int i = 0; i < 20; ++i) forward();  // warm-up, and the profiling executor's runs
    cudaDeviceSynchronize();
    const double ms = gpu_ms(forward, 10, 15);
    std::printf("{\"median_ms\": %.6f}\n", ms);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

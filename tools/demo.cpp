#include "tools/demo.h"

#include <chrono>
#include <iostream>

#include "ember.h"

namespace ember::tools {

int run_demo(const std::string& device_name) {
  Device device = parse_device(device_name);
  std::cout << "ember " << version() << " on " << device << " (" << get_num_threads() << " CPU threads)\n\n";
  manual_seed(0);

  Tensor a = arange(6, {kFloat32, device}).reshape({2, 3});
  std::cout << "a = arange(6).reshape(2, 3)\n" << a << "\n\n";
  std::cout << "a.transpose(0, 1)  (a view, no copy)\n" << a.transpose(0, 1) << "\n\n";
  std::cout << "a * 2 + 0.5\n" << a * 2 + 0.5 << "\n\n";
  std::cout << "gelu(a - 2)\n" << gelu(a - 2) << "\n\n";
  std::cout << "matmul(a, a.T)\n" << matmul(a, a.transpose(0, 1)) << "\n\n";
  auto [values, indices] = max(a, 1);
  std::cout << "max over dim 1: values " << values << ", indices " << indices << "\n\n";
  std::cout << "sum, mean, std over dim 0: " << sum(a, {0}) << ", " << mean(a, {0}) << ", " << ember::std(a, {0})
            << "\n\n";
  std::cout << "int32 + float -> " << (arange(3, {kInt32, device}) + 0.5) << "  (PyTorch's promotion)\n\n";
  std::cout << "randn(2, 4) with seed 0\n" << randn({2, 4}, {kFloat32, device}) << "\n\n";
  std::cout << "a 2000-element tensor prints abridged:\n" << linspace(0, 1, 2000, {kFloat32, device}) << "\n\n";

  // A small timed workload: a 512x512 float32 matrix product.
  Tensor x = randn({512, 512}, {kFloat32, device});
  matmul(x, x);
  auto t0 = std::chrono::steady_clock::now();
  const int reps = 10;
  Tensor y;
  for (int i = 0; i < reps; ++i) y = matmul(x, x);
  (void)sum(y).item<double>();  // waits for the device
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::cout << "512^3 matmul: " << ms << " ms (" << 2.0 * 512 * 512 * 512 / (ms * 1e6) << " GFLOP/s)\n";
  std::cout << "\n" << OpRegistry::get().ops().size() << " ops registered; `ember ops` lists them.\n";
  return 0;
}

}  // namespace ember::tools

// CPU matrix products cut into one output block per thread (ops/cpu/matmul.cpp's gemm_grid).
// Not in the suites run under qemu-user (tools/cross-test.sh --suites): they raise the thread
// count, and libgomp's multi-threaded regions stall there.
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

TEST_CASE("matmul on the CPU: products cut into blocks, one per thread, match the float64 product") {
  // Above 2^18 multiply-adds a product's output is cut into up to one block per thread, along
  // its rows, its columns or both (gemm_grid in ops/cpu/matmul.cpp); the blocks' bounds fall
  // inside the register tiles' multiples only at the edges. Each case here is cut into several
  // blocks at the thread counts it runs with, transposed operands and addmm's beta included.
  const int saved = get_num_threads();
  struct Case {
    Shape a, b;
    int threads;
  };
  const std::vector<Case> cases = {
      {{100, 300}, {300, 70}, 7},  // 7 blocks of rows
      {{200, 400}, {400, 90}, 16},  // 8 × 2 blocks, the last column block 42 wide
      {{1, 9000}, {9000, 300}, 3},  // one row: blocks of columns
      {{513, 64}, {64, 17}, 5},     // 17 columns: 5 blocks of rows
      {{3, 40, 90}, {3, 90, 60}, 2},  // a batch of 3 on 2 threads: one product per thread
      {{2, 150, 90}, {90, 60}, 4},    // a batch of 2 on 4 threads: each product cut in blocks
  };
  uint64_t seed = 900;
  for (const Case& c : cases) {
    set_num_threads(c.threads);
    for (DType dtype : {kFloat32, kFloat64, kFloat16}) {
      for (Layout la : {Layout::Contiguous, Layout::Transposed}) {
        for (Layout lb : {Layout::Contiguous, Layout::Transposed}) {
          const std::string shapes = shape_str(c.a) + " @ " + shape_str(c.b);
          INFO(std::string(dtype_name(dtype)), " ", shapes, " on ", c.threads, " threads, layouts ",
               std::string(layout_name(la)), "/", std::string(layout_name(lb)));
          // Positive entries: sums of up to 9,000 terms without cancellation, so that float32's
          // rounding stays within a tolerance relative to the result (a block computed from the
          // wrong rows or columns, or not at all, is far outside it).
          Ref ra = random_ref(c.a, 0, 1, seed++), rb = random_ref(c.b, 0, 1, seed++);
          Tensor a = make_input(ra, dtype, Device::cpu(), la), b = make_input(rb, dtype, Device::cpu(), lb);
          const Ref prod = ref_matmul(ra, rb);
          check_close(matmul(a, b), prod, dtype, matmul_scale(c.a.back()));
          if (c.a.size() == 2) {
            Ref bias = random_ref({c.b.back()}, -1, 1, seed++);
            Tensor tbias = make_input(bias, dtype, Device::cpu(), Layout::Contiguous);
            check_close(addmm(tbias, a, b, 0.5, 2.0),
                        zip_ref(prod, bias, [](double p, double s) { return 0.5 * s + 2 * p; }), dtype,
                        matmul_scale(c.a.back()));
          }
        }
      }
    }
  }
  set_num_threads(saved);
}

// The runtime: dtypes and promotion, devices, shapes, tensors, copies and casts, printing,
// threads, errors and the op registry.
#include <cmath>
#include <thread>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

TEST_CASE("promote_types matches PyTorch's table") {
  // Rows and columns in the order bool, uint8, int8, int32, int64, float16, bfloat16, float32, float64.
  const DType b = kBool, u8 = kUInt8, i8 = kInt8, i32 = kInt32, i64 = kInt64, f16 = kFloat16, bf = kBFloat16,
              f32 = kFloat32, f64 = kFloat64;
  const DType table[9][9] = {
      {b, u8, i8, i32, i64, f16, bf, f32, f64},
      {u8, u8, i32, i32, i64, f16, bf, f32, f64},  // uint8 + int8 -> int32 (PyTorch: int16)
      {i8, i32, i8, i32, i64, f16, bf, f32, f64},
      {i32, i32, i32, i32, i64, f16, bf, f32, f64},
      {i64, i64, i64, i64, i64, f16, bf, f32, f64},
      {f16, f16, f16, f16, f16, f16, f32, f32, f64},
      {bf, bf, bf, bf, bf, f32, bf, f32, f64},
      {f32, f32, f32, f32, f32, f32, f32, f32, f64},
      {f64, f64, f64, f64, f64, f64, f64, f64, f64},
  };
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) {
      INFO(std::string(dtype_name(kAllDTypes[i])), " + ", std::string(dtype_name(kAllDTypes[j])));
      CHECK(promote_types(kAllDTypes[i], kAllDTypes[j]) == table[i][j]);
    }
  CHECK(can_cast(kInt64, kFloat16));
  CHECK_FALSE(can_cast(kFloat32, kInt64));
  CHECK_FALSE(can_cast(kInt32, kBool));
  CHECK(can_cast(kBool, kUInt8));
}

TEST_CASE("dtype names and sizes") {
  for (DType t : kAllDTypes) CHECK(dtype_from_name(dtype_name(t)) == t);
  CHECK(dtype_from_name("torch.float16") == kFloat16);
  CHECK(dtype_from_name("half") == kFloat16);
  CHECK(dtype_from_name("long") == kInt64);
  CHECK_FALSE(dtype_from_name("complex64").has_value());
  CHECK(itemsize(kBFloat16) == 2);
  CHECK(itemsize(kBool) == 1);
  CHECK(itemsize(kFloat64) == 8);
  CHECK(is_floating(kBFloat16));
  CHECK_FALSE(is_integral(kBool));
}

TEST_CASE("devices parse and print") {
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda") == Device::cuda(0));
  CHECK(Device::parse("cuda:3") == Device::cuda(3));
  CHECK(Device::cuda(1).str() == "cuda:1");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:1x", "CPU"})
    check_error([&] { Device::parse(bad); }, ErrorCode::InvalidArgument, "[device] expected \"cpu\", \"cuda\" or \"cuda:N\"");
}

TEST_CASE("a CUDA device is refused clearly where there is none") {
  if (cuda_available()) return;
  const char* expected = cuda_built() ? "no CUDA device" : "ember was built without CUDA";
  check_error([&] { zeros({2}, {kFloat32, Device::cuda(0)}); }, cuda_built() ? ErrorCode::Cuda : ErrorCode::Unsupported,
              expected);
  check_error([&] { ones({2}).to(Device::cuda(0)); }, cuda_built() ? ErrorCode::Cuda : ErrorCode::Unsupported, expected);
}

TEST_CASE("shape helpers") {
  CHECK(contiguous_strides({2, 3, 4}) == Strides{12, 4, 1});
  CHECK(contiguous_strides({2, 0, 4}) == Strides{4, 4, 1});
  CHECK(broadcast_shapes({3, 1}, {4}, "t") == Shape{3, 4});
  CHECK(broadcast_shapes({}, {2, 0}, "t") == Shape{2, 0});
  CHECK(wrap_dim(-1, 3, "t") == 2);
  CHECK(wrap_dim(0, 0, "t") == 0);  // a 0-d tensor accepts dim 0 and -1
  CHECK(reduction_dims({}, 3, "t") == std::vector<int64_t>{0, 1, 2});
  CHECK(reduction_dims({-1, 0}, 3, "t") == std::vector<int64_t>{0, 2});
  check_error([] { checked_numel(Shape(65, 1), "t"); }, ErrorCode::InvalidArgument, "[t] tensors may have at most 64 dimensions");
}

DEVICE_TEST("tensors: geometry, item, copies, casts and transfers") {
  Tensor x = arange(6, {kFloat32, device}).reshape({2, 3});
  CHECK(x.dim() == 2);
  CHECK(x.numel() == 6);
  CHECK(x.size(-1) == 3);
  CHECK(x.stride(0) == 3);
  CHECK(x.nbytes() == 24);
  CHECK(x.device() == device);
  CHECK(x.is_contiguous());
  CHECK(x.select(0, 1).select(0, 2).item<float>() == 5);
  CHECK(full({}, 7, {kInt8, device}).item<int>() == 7);
  CHECK(full({}, true, {kBool, device}).item<bool>());
  CHECK(full({}, 0.5, {kBFloat16, device}).item<double>() == 0.5);
  check_error([&] { x.item(); }, ErrorCode::InvalidArgument, "[item] expected a tensor with one element, got shape [2, 3]");
  Tensor c = x.clone();
  CHECK_FALSE(c.shares_storage(x));
  fill_(c, 1);
  CHECK(x.select(0, 0).select(0, 0).item<float>() == 0);
  CHECK(x.to(kFloat32).is_same(x));  // no copy when nothing changes
  CHECK(x.to(device).is_same(x));
  // Casts between every pair of dtypes on values every dtype holds.
  Ref r{{5}, {0, 1, 2, 3, 100}};
  for (DType from : kEveryType)
    for (DType to : kEveryType) {
      INFO(std::string(dtype_name(from)), " -> ", std::string(dtype_name(to)));
      Ref rr = r;
      Tensor t = make_input(rr, from, device, Layout::Contiguous);
      check_close(t.to(to), round_to(rr, to), to);
    }
  // Float to integer casts truncate toward zero; NaN and out-of-range values are defined.
  check_equal_values(tensor({-2.7, 2.7, 300}, {kFloat32, device}).to(kInt32), {-2, 2, 300});
  check_equal_values(tensor({300, -1}, {kFloat32, device}).to(kUInt8), {44, 255});
  CHECK(tensor({NAN}, {kFloat32, device}).to(kInt64).item<int64_t>() == INT64_MIN);
  // copy_ broadcasts and converts; non-contiguous destinations work.
  Tensor d = zeros({3, 2}, {kFloat64, device});
  copy_(d.transpose(0, 1), tensor({1, 2, 3}, {kFloat32, device}));
  check_equal_values(d, {1, 1, 2, 2, 3, 3});
  copy_(d, d);  // onto itself: a no-op
  check_equal_values(d, {1, 1, 2, 2, 3, 3});
  copy_(d.slice(0, 1), d.slice(0, 0, 2));  // overlapping views go through a temporary
  check_equal_values(d, {1, 1, 1, 1, 2, 2});
  check_error([&] { copy_(d, zeros({3}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "[copy_] shapes [3, 2] and [3] cannot be broadcast together");
  check_error([&] { copy_(d, zeros({4, 3, 2}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "[copy_] source of shape [4, 3, 2] cannot be broadcast to the destination's shape [3, 2]");
  zero_(d);
  check_equal_values(d, {0, 0, 0, 0, 0, 0});
  fill_(d.select(1, 0), full({}, 4.0, {kFloat64, device}));
  check_equal_values(d, {4, 0, 4, 0, 4, 0});
  // To the CPU and back keeps every value.
  Tensor back = x.to(Device::cpu()).to(device);
  check_close(back, to_ref(x), kFloat32, 0);
  // The version counter is shared by views and bumped by in-place writes.
  Tensor v = x.select(0, 0);
  uint64_t before = x.version();
  add_(v, 1);
  CHECK(x.version() == before + 1);
}

TEST_CASE("printing matches PyTorch's repr") {
  CHECK(tensor({1, 2, 3}).str() == "tensor([1., 2., 3.])");
  CHECK(tensor({1.5, 2.25}).str() == "tensor([1.5000, 2.2500])");
  CHECK(tensor({-1, 2}).str() == "tensor([-1.,  2.])");
  CHECK(tensor({-0.5, 123.25}).str() == "tensor([ -0.5000, 123.2500])");
  CHECK(tensor({1e-5, 1}).str() == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(tensor({0.1, 10000}).str() == "tensor([1.0000e-01, 1.0000e+04])");
  CHECK(tensor({NAN, 1, INFINITY}).str() == "tensor([nan, 1., inf])");
  CHECK(full({}, 3.5).str() == "tensor(3.5000)");
  CHECK(from_vector<int64_t>({1, 2, 3, 4}, {2, 2}).str() == "tensor([[1, 2],\n        [3, 4]])");
  CHECK(from_vector<int32_t>({1, -20}, {2}).str() == "tensor([  1, -20], dtype=int32)");
  CHECK(from_vector<bool>({true, false}, {2}).str() == "tensor([ True, False])");
  CHECK(tensor({1, 2}, {kFloat16}).str() == "tensor([1., 2.], dtype=float16)");
  CHECK(zeros({0, 3}).str() == "tensor([], size=(0, 3))");
  CHECK(zeros({0}).str() == "tensor([])");
  CHECK(zeros({0}, {kInt64}).str() == "tensor([], dtype=int64)");
  CHECK(zeros({2, 1, 2}).str() == "tensor([[[0., 0.]],\n\n        [[0., 0.]]])");
  CHECK(arange(2000.0).str() ==
        "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])");
  CHECK(arange(3000).reshape({1000, 3}).str() ==
        "tensor([[   0,    1,    2],\n        [   3,    4,    5],\n        [   6,    7,    8],\n        ...,\n"
        "        [2991, 2992, 2993],\n        [2994, 2995, 2996],\n        [2997, 2998, 2999]])");
  CHECK(arange(30.0).str() ==
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n        28., 29.])");
  std::ostringstream os;
  os << tensor({2});
  CHECK(os.str() == "tensor([2.])");
  CHECK(Tensor().str() == "tensor(undefined)");
}

TEST_CASE("threads: the count is settable and kernels agree across counts") {
  int saved = get_num_threads();
  CHECK(saved >= 1);
  check_error([] { set_num_threads(0); }, ErrorCode::InvalidArgument, "[set_num_threads] expected at least 1 thread, got 0");
  Tensor a = randn({300, 500}), b = randn({500, 200});
  set_num_threads(1);
  Tensor e1 = exp(a), m1 = matmul(a, b);
  set_num_threads(3);
  CHECK(get_num_threads() == 3);
  check_close(exp(a), to_ref(e1), kFloat32, 0);
  // Eigen sizes its GEMM blocks by thread count, so products may differ in rounding: bound the
  // difference by the size of the terms (500 products of magnitude ~1), not by the result,
  // which cancellation can make small.
  CHECK(amax(abs(sub(matmul(a, b), m1))).item<double>() < 500 * 1.2e-7 * 4);
  set_num_threads(saved);
  // Ops run concurrently from several threads.
  std::vector<std::thread> workers;
  std::vector<double> sums(4);
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&, t] { sums[t] = sum(mul(a, static_cast<double>(t))).item<double>(); });
  for (auto& w : workers) w.join();
  double base = sum(a).item<double>();
  for (int t = 0; t < 4; ++t) CHECK(sums[t] == doctest::Approx(base * t).epsilon(1e-5));
}

TEST_CASE("errors carry a code and a message") {
  try {
    zeros({2}).view({3});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
    CHECK(std::string(error_code_name(e.code())) == "InvalidArgument");
    CHECK(std::string(e.what()).starts_with("[view] "));
  }
  CHECK(std::string(error_code_name(ErrorCode::OutOfMemory)) == "OutOfMemory");
}

TEST_CASE("the registry lists every op with cpu support") {
  const OpRegistry& r = OpRegistry::get();
  for (const char* name :
       {"empty",       "zeros",       "ones",        "full",        "arange",      "linspace",    "eye",
        "empty_like",  "zeros_like",  "ones_like",   "full_like",   "neg",         "abs",         "exp",
        "log",         "log1p",       "expm1",       "sqrt",        "rsqrt",       "sin",         "cos",
        "tanh",        "sigmoid",     "relu",        "gelu",        "silu",        "softplus",    "leaky_relu",
        "elu",         "hardswish",   "hardsigmoid", "erf",         "sign",        "reciprocal",  "clamp",
        "pow",         "isnan",       "isinf",       "logical_not", "add",         "sub",         "mul",
        "div",         "maximum",     "minimum",     "remainder",   "eq",          "ne",          "lt",
        "le",          "gt",          "ge",          "logical_and", "logical_or",  "logical_xor", "bitwise_and",
        "bitwise_or",  "bitwise_xor", "where",       "sum",         "mean",        "prod",        "max",
        "min",         "argmax",      "argmin",      "amax",        "amin",        "var",         "std",
        "logsumexp",   "any",         "all",         "norm",        "mm",          "bmm",         "matmul",
        "addmm",       "linear",      "view",        "reshape",     "flatten",     "permute",     "transpose",
        "squeeze",     "unsqueeze",   "expand",      "slice",       "select",      "narrow",      "cat",
        "stack",       "split",       "chunk",       "index_select", "gather",     "scatter",     "scatter_add",
        "masked_fill", "tril",        "triu",        "flip",        "roll",        "repeat",      "pad",
        "rand",        "randn",       "randint",     "randperm",    "bernoulli",   "to",          "add_",
        "sub_",        "mul_",        "div_",        "zero_",       "fill_",       "copy_",       "clamp_"}) {
    INFO(name);
    const OpInfo* op = r.find(name);
    REQUIRE(op != nullptr);
    CHECK(op->cpu);
    CHECK_FALSE(op->dtypes.empty());
    CHECK(op->cuda == (cuda_built()));
  }
  CHECK(r.find("no_such_op") == nullptr);
  std::string json = registry_json(r);
  CHECK(json.find("{\"name\": \"add\", \"family\": \"binary\", \"cpu\": true") != std::string::npos);
  CHECK(json.front() == '[');
}

TEST_CASE("the CPU allocator counts the bytes tensors hold and their peak") {
  const HostMemoryStats before = cpu_memory_stats();
  cpu_reset_peak_memory_stats();
  CHECK(cpu_memory_stats().peak_allocated == before.allocated);
  {
    Tensor a = empty({1000});           // 4000 bytes: asked for, not the size class
    Tensor b = empty({1 << 18}, {kUInt8});  // 256 KiB
    CHECK(cpu_memory_stats().allocated == before.allocated + 4000 + (1 << 18));
  }
  CHECK(cpu_memory_stats().allocated == before.allocated);
  CHECK(cpu_memory_stats().peak_allocated == before.allocated + 4000 + (1 << 18));
  { Tensor c = empty({10}); }
  CHECK(cpu_memory_stats().peak_allocated == before.allocated + 4000 + (1 << 18));  // a smaller block later
  cpu_reset_peak_memory_stats();
  CHECK(cpu_memory_stats().peak_allocated == before.allocated);
}

TEST_CASE("the CPU allocator reuses large blocks and gives them back on request") {
  cpu_empty_cache();
  CHECK(cpu_cached_bytes() == 0);
  void* first = nullptr;
  {
    Tensor big = empty({1 << 20});  // 4 MiB
    first = big.data();
  }
  CHECK(cpu_cached_bytes() >= (size_t{4} << 20));
  Tensor again = empty({(1 << 20) - 7});  // a nearby size shares the block
  CHECK(again.data() == first);
  CHECK(cpu_cached_bytes() == 0);
  again = Tensor();
  cpu_empty_cache();
  CHECK(cpu_cached_bytes() == 0);
  // Small blocks are malloc's business and never cached.
  { Tensor small = empty({16}); }
  CHECK(cpu_cached_bytes() == 0);
}

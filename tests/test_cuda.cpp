// The CUDA runtime: allocator statistics, caps and out-of-memory recovery, copies between
// host, devices and pinned memory, streams and events, the TF32 switch, 64-bit indexing and
// device checks. Every case is skipped where no GPU is present.
#include <cstring>
#include <limits>
#include <thread>

#include "runtime/cuda/cuda.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

const auto kNeedsGpu = doctest::skip(!cuda_available());
const Device kCuda0 = Device::cuda(0);

}  // namespace

TEST_CASE("cuda: device properties" * kNeedsGpu) {
  CHECK(cuda::device_count() >= 1);
  cuda::DeviceProperties p = cuda::properties(0);
  CHECK(!p.name.empty());
  CHECK(p.major >= 5);
  CHECK(p.multiprocessors > 0);
  CHECK(p.total_memory > (size_t{1} << 30));
  check_error([] { cuda::properties(cuda::device_count()); }, ErrorCode::Cuda, "no CUDA device cuda:");
}

TEST_CASE("cuda: allocator statistics follow tensors and reset" * kNeedsGpu) {
  cuda::synchronize(0);
  const cuda::MemoryStats before = cuda::memory_stats(0);
  cuda::reset_peak_memory_stats(0);
  {
    Tensor a = empty({1 << 20}, {kFloat32, kCuda0});  // 4 MiB
    cuda::MemoryStats s = cuda::memory_stats(0);
    CHECK(s.allocated == before.allocated + (4u << 20));
    CHECK(s.allocations == before.allocations + 1);
    CHECK(s.peak_allocated >= s.allocated);
    CHECK(s.reserved >= s.allocated);
  }
  cuda::MemoryStats after = cuda::memory_stats(0);
  CHECK(after.allocated == before.allocated);
  CHECK(after.allocations == before.allocations);
  CHECK(after.peak_allocated >= before.allocated + (4u << 20));
  cuda::reset_peak_memory_stats(0);
  CHECK(cuda::memory_stats(0).peak_allocated == after.allocated);
  cuda::empty_cache(0);
  CHECK(cuda::memory_stats(0).reserved <= after.reserved);
}

TEST_CASE("cuda: the memory cap throws OutOfMemory and the process stays usable" * kNeedsGpu) {
  const size_t start = cuda::memory_stats(0).allocated;
  cuda::set_memory_cap(0, start + (64u << 20));
  Tensor small = zeros({1 << 20}, {kFloat32, kCuda0});
  check_error([] { empty({1 << 26}, {kFloat32, kCuda0}); }, ErrorCode::OutOfMemory, "memory cap");
  cuda::set_memory_cap(0, std::nullopt);
  Tensor big = ones({1 << 26}, {kFloat32, kCuda0});
  CHECK(sum(big).item<double>() == double(1 << 26));
  CHECK(sum(small).item<double>() == 0);
}

TEST_CASE("cuda: a tensor made on a thread's own stream outlives the thread and its stream" * kNeedsGpu) {
  // The block is freed on the stream it came from, after that stream's thread has ended and
  // dropped it: the allocation keeps the stream alive, so the free succeeds and the memory
  // goes back to the pool (a free on a destroyed stream failed and the block stayed taken).
  cuda::synchronize(0);
  cuda::empty_cache(0);
  const size_t held = cuda::memory_stats(0).allocated;
  const int64_t n = int64_t{1} << 26;  // 256 MiB of float32
  Tensor kept;
  std::thread([&] {
    cuda::StreamGuard own(cuda::Stream::create(0));
    kept = full({n}, 2.0, {kFloat32, kCuda0});
    cuda::Stream::current(0).synchronize();
  }).join();
  CHECK(sum(kept).item<double>() == 2.0 * static_cast<double>(n));
  kept = Tensor();
  cuda::synchronize(0);
  CHECK(cuda::memory_stats(0).allocated == held);
  cuda::empty_cache(0);
  CHECK(cuda::memory_stats(0).reserved < static_cast<size_t>(n) * 4);
}

TEST_CASE("cuda: a request larger than the device throws OutOfMemory naming the sizes" * kNeedsGpu) {
  const size_t start = cuda::memory_stats(0).allocated;
  const int64_t too_many = int64_t(cuda::properties(0).total_memory);  // float32: 4x the device
  try {
    empty({too_many}, {kFloat32, kCuda0});
    FAIL("expected OutOfMemory");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::OutOfMemory);
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("tried to allocate") != std::string::npos);
    CHECK(msg.find("free of") != std::string::npos);
  }
  CHECK(cuda::memory_stats(0).allocated == start);
  // The next allocation works.
  Tensor t = full({1000}, 3.0, {kFloat32, kCuda0});
  CHECK(sum(t).item<double>() == 3000);
}

TEST_CASE("cuda: ops refuse tensors on different devices" * kNeedsGpu) {
  Tensor a = ones({3}, {kFloat32, kCuda0});
  Tensor b = ones({3});
  check_error([&] { add(a, b); }, ErrorCode::DeviceMismatch, "expected all tensors on the same device, got cuda:0 and cpu");
  check_error([&] { matmul(ones({2, 2}), ones({2, 2}, {kFloat32, kCuda0})); }, ErrorCode::DeviceMismatch, "same device");
  check_error([&] { add_(a, b); }, ErrorCode::DeviceMismatch, "cpu");
  // A 0-d CPU tensor is a scalar and may join any device, as in PyTorch.
  Tensor c = add(a, scalar_tensor(2.0));
  CHECK(c.device() == kCuda0);
  check_equal_values(c, {3, 3, 3});
  // A device that does not exist.
  const int missing = cuda::device_count();
  check_error([&] { zeros({2}, {kFloat32, Device::cuda(missing)}); }, ErrorCode::Cuda, "cuda:");
}

TEST_CASE("cuda: copies host to device, device to device, device to host, every dtype" * kNeedsGpu) {
  for (DType dt : kEveryType) {
    INFO(std::string(dtype_name(dt)));
    Tensor h = arange(0, 1000, 1, {dt == kBool ? kInt64 : dt}).to(dt).reshape({10, 100});
    Tensor d = h.to(kCuda0);
    CHECK(d.device() == kCuda0);
    Tensor d2 = d.transpose(0, 1).contiguous();  // device-side strided copy
    Tensor back = d2.to(Device::cpu());
    CHECK(back.device().is_cpu());
    Ref expected = to_ref(h.transpose(0, 1).contiguous());
    check_close(back, expected, dt);
    // Strided host tensor to device.
    check_close(h.transpose(0, 1).to(kCuda0), expected, dt);
    // Copy with cast across devices.
    Tensor dst = empty({100, 10}, {kFloat64, kCuda0});
    copy_(dst, h.transpose(0, 1));
    check_close(dst, expected, kFloat64);
  }
}

TEST_CASE("cuda: pinned memory and non_blocking transfers" * kNeedsGpu) {
  Tensor h = arange(0, 1 << 20, 1, {kFloat32});
  Tensor pinned = cuda::pin_memory(h);
  CHECK(cuda::is_pinned(pinned));
  CHECK_FALSE(cuda::is_pinned(h));
  Tensor d = pinned.to(kCuda0, /*non_blocking=*/true);
  Tensor back = d.to(Device::cpu(), /*non_blocking=*/true);
  CHECK(cuda::is_pinned(back));
  cuda::synchronize(0);
  CHECK(std::memcmp(back.data(), h.data(), h.nbytes()) == 0);
  // non_blocking from pageable memory must still be correct (the source may be freed at once).
  Tensor d2;
  {
    Tensor temp = full({1 << 20}, 7.0, {kFloat32});
    d2 = temp.to(kCuda0, true);
  }
  CHECK(sum(d2).item<double>() == 7.0 * (1 << 20));
  Tensor e = cuda::empty_pinned({4, 4}, kFloat16);
  CHECK(cuda::is_pinned(e));
  CHECK(e.dtype() == kFloat16);
  check_error([&] { cuda::pin_memory(d); }, ErrorCode::InvalidArgument, "expected a CPU tensor");
}

TEST_CASE("cuda: streams and events order work" * kNeedsGpu) {
  cuda::Stream ember_stream = cuda::Stream::current(0);
  cuda::Stream side = cuda::Stream::create(0);
  CHECK_FALSE(side == ember_stream);
  Tensor a = zeros({1 << 22}, {kFloat32, kCuda0});
  {
    cuda::StreamGuard guard(side);
    CHECK(cuda::Stream::current(0) == side);
    // Make the side stream wait for a's zero-fill on ember's stream, then work there.
    cuda::Event ready(0, false);
    ready.record(ember_stream);
    ready.wait(side);
    add_(a, 1.0);
    cuda::Event done(0, false);
    done.record();
    done.wait(ember_stream);
  }
  CHECK(cuda::Stream::current(0) == ember_stream);
  CHECK(sum(a).item<double>() == double(1 << 22));

  cuda::Event start(0), end(0);
  start.record();
  Tensor b = mul(a, 2.0);
  end.record();
  end.synchronize();
  float ms = cuda::Event::elapsed_ms(start, end);
  CHECK(ms >= 0);
  CHECK(ms < 1000);
}

TEST_CASE("cuda: the TF32 switch changes float32 matmul precision" * kNeedsGpu) {
  manual_seed(3);
  Tensor a = randn({512, 512}, {kFloat32, kCuda0});
  Tensor b = randn({512, 512}, {kFloat32, kCuda0});
  Tensor exact = matmul(a.to(kFloat64), b.to(kFloat64));
  CHECK_FALSE(cuda::allow_tf32());
  double err_fp32 = amax(abs(sub(matmul(a, b).to(kFloat64), exact))).item<double>();
  cuda::set_allow_tf32(true);
  double err_tf32 = amax(abs(sub(matmul(a, b).to(kFloat64), exact))).item<double>();
  cuda::set_allow_tf32(false);
  INFO("fp32 error ", err_fp32, ", tf32 error ", err_tf32);
  CHECK(err_fp32 < 1e-3);
  CHECK(err_tf32 > 4 * err_fp32);  // TF32 keeps 10 mantissa bits
  CHECK(err_tf32 < 0.5);
}

TEST_CASE("cuda: elementwise ops and reductions index past 2^31 elements" * kNeedsGpu) {
  const int64_t n = (int64_t{1} << 31) + 4099;  // int8: 2 GiB
  Tensor t = ones({n}, {kInt8, kCuda0});
  // The last elements are reached: write through a view at the end, read it back.
  fill_(t.slice(0, n - 3), 5);
  Tensor u = add(t, t);  // contiguous, vectorized
  CHECK(u.slice(0, n - 4).to(Device::cpu()).to(kInt64).data_ptr<int64_t>()[0] == 2);
  CHECK(u.slice(0, n - 1).item<int64_t>() == 10);
  Tensor v = add(t.slice(0, 0, n, 2), 1);  // strided, 64-bit offsets
  CHECK(v.numel() == (n + 1) / 2);
  CHECK(v.slice(0, v.numel() - 1).item<int64_t>() == 6);
  // Sum counts every element: (n - 3) ones and three fives.
  CHECK(sum(t).item<int64_t>() == (n - 3) + 15);
  CHECK(argmax(t).item<int64_t>() == n - 3);
}

TEST_CASE("cuda: a second device, where present, copies peer to peer" * doctest::skip(cuda::device_count() < 2)) {
  Tensor a = arange(0, 1000, 1, {kFloat32, kCuda0});
  Tensor b = a.to(Device::cuda(1));
  CHECK(b.device() == Device::cuda(1));
  check_close(b, to_ref(a), kFloat32);
  check_error([&] { add(a, b); }, ErrorCode::DeviceMismatch, "cuda:0 and cuda:1");
}

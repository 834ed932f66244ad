// cuBLASLt GEMMs with epilogues (gemm_lt.h). cuBLASLt wants descriptors for the product and
// each matrix, and an algorithm from its heuristic (tens of microseconds on the host): both are
// made once per shape and thread and kept, so a repeated linear layer costs one
// cublasLtMatmul call. The heuristic is told each pointer's real alignment, because it
// otherwise assumes 256 bytes and may pick a kernel that faults on a view's offset; the bias,
// which it is not told about, must be 16-byte aligned (else the caller's plain path).
// With cuda::gemm_autotune() the plan times the heuristic's first candidates on the call's own
// operands (outside a capture) and keeps the fastest: at shapes with few output tiles, such as a
// vision transformer's 197 tokens, the first guess need not be the fastest split.
#include "ops/cuda/gemm_lt.h"

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "ops/creation.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda/handles.h"
#include "runtime/cuda/runtime.h"
#include "runtime/memory_plan.h"

namespace ember::cuda_ops {

namespace {

// The largest power of two up to 256 that divides the address.
int64_t alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  int64_t a = 256;
  while (a > 1 && v % static_cast<uintptr_t>(a) != 0) a /= 2;
  return a;
}

template <typename H, cublasStatus_t (*Destroy)(H)>
struct LtDeleter {
  void operator()(H h) const { Destroy(h); }  // host-side only; errors at exit are ignored
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, LtDeleter<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>>;
using Layout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LtDeleter<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>>;
using Preference =
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, LtDeleter<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>>;

struct Plan {
  bool found = false;
  MatmulDesc desc;
  Layout a, b, d;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

using Key = std::array<int64_t, 16>;
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 0;
    for (int64_t v : k) h = h * 1000003u ^ std::hash<int64_t>{}(v);
    return h;
  }
};

// How much scratch the heuristic may ask for (most picks need none; split-K ones do).
constexpr uint64_t kMaxWorkspace = 32u << 20;

// Scratch of `bytes` for a product on the device's current stream. Outside a capture, one
// buffer per device and stream, held and grown as the plans need. A split-K product's scratch
// is then allocated once, as cuBLAS holds its own, not on every call and in every forward's
// peak (outside any memory plan: it outlives the run). Inside a capture, the graph's memory
// serves each call (`per_call`). A held buffer could later be replaced while a graph still
// points at it.
void* workspace_for(int device, size_t bytes, Tensor& per_call) {
  if (bytes == 0) return nullptr;
  const Device d = Device::cuda(device);
  if (cuda::is_capturing(device)) {
    per_call = empty({static_cast<int64_t>(bytes)}, {kUInt8, d});
    return per_call.data();
  }
  thread_local std::map<std::pair<int, cudaStream_t>, Tensor> held;
  Tensor& buffer = held[{device, cuda_detail::stream(device)}];
  if (!buffer.defined() || buffer.nbytes() < bytes) {
    MemoryPlan::Outside unplanned;
    buffer = Tensor();  // freed in stream order: the products that used it run first
    buffer = empty({static_cast<int64_t>(bytes)}, {kUInt8, d});
  }
  return buffer.data();
}

// Candidates timed under gemm_autotune, and the timed calls of each after one untimed.
constexpr int kCandidates = 8;
constexpr int kTimedCalls = 3;

Layout make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  EMBER_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  return Layout(l);
}

template <typename V>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const V& value) {
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
}

// D = epilogue(alpha · A · B) with one algorithm, on the device's current stream.
cublasStatus_t matmul(const LtGemm& g, cublasLtHandle_t handle, const Plan& plan, const cublasLtMatmulAlgo_t& algo,
                      void* workspace, size_t workspace_bytes) {
  const float beta = 0;
  return cublasLtMatmul(handle, plan.desc.get(), &g.alpha, g.a, plan.a.get(), g.b, plan.b.get(), &beta, g.d,
                        plan.d.get(), g.d, plan.d.get(), &algo, workspace, workspace_bytes,
                        cuda_detail::stream(g.device));
}

// The fastest of the heuristic's candidates on these operands: each run once, then timed over
// kTimedCalls calls with events (the host waits, once per shape). Writing D is harmless: the
// call that follows writes it again. A candidate cuBLASLt refuses to run is passed over.
int fastest(const LtGemm& g, cublasLtHandle_t handle, const Plan& plan,
            const std::vector<cublasLtMatmulHeuristicResult_t>& results) {
  size_t bytes = 0;
  for (const auto& r : results) bytes = std::max(bytes, r.workspaceSize);
  Tensor per_call;
  void* ws = workspace_for(g.device, bytes, per_call);
  int best = 0;
  float best_ms = 0;
  bool timed = false;
  for (size_t i = 0; i < results.size(); ++i) {
    auto call = [&] { return matmul(g, handle, plan, results[i].algo, ws, results[i].workspaceSize); };
    if (call() != CUBLAS_STATUS_SUCCESS) continue;
    cuda::Event start(g.device), stop(g.device);
    start.record();
    bool ran = true;
    for (int t = 0; t < kTimedCalls && ran; ++t) ran = call() == CUBLAS_STATUS_SUCCESS;
    stop.record();
    if (!ran) continue;
    stop.synchronize();
    const float ms = cuda::Event::elapsed_ms(start, stop);
    if (!timed || ms < best_ms) best = static_cast<int>(i), best_ms = ms;
    timed = true;
  }
  return best;  // none ran: the heuristic's first, whose real call then reports cuBLASLt's error
}

std::unique_ptr<Plan> make_plan(const LtGemm& g, cublasLtHandle_t handle, bool tune) {
  auto plan = std::make_unique<Plan>();
  cublasLtMatmulDesc_t desc = nullptr;
  EMBER_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, g.compute, CUDA_R_32F));
  plan->desc.reset(desc);
  set_desc(desc, CUBLASLT_MATMUL_DESC_TRANSA, g.op_a);
  set_desc(desc, CUBLASLT_MATMUL_DESC_TRANSB, g.op_b);
  set_desc(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, g.epilogue);
  if (g.bias) set_desc(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
  // Stored shapes, before the transposes.
  const bool ta = g.op_a != CUBLAS_OP_N, tb = g.op_b != CUBLAS_OP_N;
  plan->a = make_layout(g.type, ta ? g.k : g.m, ta ? g.m : g.k, g.lda);
  plan->b = make_layout(g.type, tb ? g.n : g.k, tb ? g.k : g.n, g.ldb);
  plan->d = make_layout(g.type, g.m, g.n, g.m);

  cublasLtMatmulPreference_t pref = nullptr;
  EMBER_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  Preference owned_pref(pref);
  auto set_pref = [&](cublasLtMatmulPreferenceAttributes_t attr, auto value) {
    EMBER_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
  };
  set_pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kMaxWorkspace);
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(alignment(g.a)));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(alignment(g.b)));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(alignment(g.d)));
  set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(alignment(g.d)));

  std::vector<cublasLtMatmulHeuristicResult_t> results(tune ? kCandidates : 1);
  int returned = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle, desc, plan->a.get(), plan->b.get(), plan->d.get(), plan->d.get(), pref,
                                     static_cast<int>(results.size()), results.data(), &returned);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || (status == CUBLAS_STATUS_SUCCESS && returned == 0)) return plan;
  EMBER_CUBLAS_CHECK(status);
  results.resize(static_cast<size_t>(returned));
  const cublasLtMatmulHeuristicResult_t& chosen = results[results.size() > 1 ? fastest(g, handle, *plan, results) : 0];
  plan->found = true;
  plan->algo = chosen.algo;
  plan->workspace = chosen.workspaceSize;
  return plan;
}

}  // namespace

bool gemm_lt(const LtGemm& g) {
  if (g.bias && alignment(g.bias) < 16) return false;
  // cuBLASLt checks ld ≥ the stored rows even for a single column, which cuBLAS lets pass.
  const bool ta = g.op_a != CUBLAS_OP_N, tb = g.op_b != CUBLAS_OP_N;
  LtGemm fixed = g;
  if ((ta ? g.m : g.k) == 1) fixed.lda = std::max<int64_t>(fixed.lda, ta ? g.k : g.m);
  if ((tb ? g.k : g.n) == 1) fixed.ldb = std::max<int64_t>(fixed.ldb, tb ? g.n : g.k);
  if (fixed.lda < (ta ? g.k : g.m) || fixed.ldb < (tb ? g.n : g.k)) return false;

  // Timing needs the host to wait, which a capture cannot; a shape first seen while capturing
  // keeps the heuristic's choice. Under cuda::deterministic() the choice must not depend on timing.
  const bool timed = cuda::gemm_autotune() && !cuda::deterministic();
  const Key key{g.device, g.type, g.compute, g.op_a, g.op_b, g.m, g.n, g.k, fixed.lda, fixed.ldb, g.epilogue,
                alignment(g.a), alignment(g.b), alignment(g.d), g.bias != nullptr, timed};
  const bool tune = timed && !cuda::is_capturing(g.device);
  thread_local std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans;
  cublasLtHandle_t handle = cuda_detail::cublaslt_handle(g.device);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(fixed, handle, tune)).first;
  Plan& plan = *it->second;
  if (!plan.found) return false;

  if (g.bias) set_desc(plan.desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
  Tensor per_call;
  void* workspace = workspace_for(g.device, plan.workspace, per_call);
  EMBER_CUBLAS_CHECK(matmul(fixed, handle, plan, plan.algo, workspace, plan.workspace));
  return true;
}

}  // namespace ember::cuda_ops

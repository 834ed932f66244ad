// A kernel-time profiler for any CUDA process, for machines without Nsight Systems: preloaded
// (LD_PRELOAD=.../libkernel_trace.so), it records every kernel, copy and memset through
// CUPTI's activity API and, at exit, prints each kernel's total device time, calls and share,
// largest first. It works the same on ember's benchmarks and on PyTorch's scripts, so the two
// sides of a comparison are profiled alike.
//   EMBER_TRACE_OUT=path  write the table there (default: standard error)
//   EMBER_TRACE_TOP=N     rows to print (default 40)
//   EMBER_TRACE_GRID=1    one row per kernel name and grid size (tells the sizes of one
//                         element-wise kernel's calls apart)
#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Total {
  double ns = 0;
  long calls = 0;
};

std::mutex mutex;
std::map<std::string, Total>& totals() {
  static auto* t = new std::map<std::string, Total>;  // never destroyed: read at exit
  return *t;
}

std::string demangled(const char* name) {
  if (!name) return "(unnamed)";
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  std::string s = status == 0 && d ? d.get() : name;
  return s.size() > 240 ? s.substr(0, 237) + "..." : s;
}

void add(const std::string& name, uint64_t start, uint64_t end) {
  std::lock_guard<std::mutex> lock(mutex);
  Total& t = totals()[name];
  t.ns += static_cast<double>(end - start);
  ++t.calls;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *size = 16u << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, *size));
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      static const bool by_grid = std::getenv("EMBER_TRACE_GRID") != nullptr;
      std::string name = demangled(k->name);
      if (by_grid)
        name = "grid(" + std::to_string(k->gridX) + "," + std::to_string(k->gridY) + "," + std::to_string(k->gridZ) +
               ") " + name;
      add(name, k->start, k->end);
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      const char* kinds[] = {"?", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA", "DtoD", "HtoH", "PtoP"};
      add(std::string("[memcpy ") + (m->copyKind < 11 ? kinds[m->copyKind] : "?") + "]", m->start, m->end);
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
      add("[memset]", m->start, m->end);
    }
  }
  std::free(buffer);
}

void report() {
  cuptiActivityFlushAll(1);
  std::vector<std::pair<std::string, Total>> rows(totals().begin(), totals().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
  double all = 0;
  for (const auto& r : rows) all += r.second.ns;
  const char* path = std::getenv("EMBER_TRACE_OUT");
  FILE* out = path ? std::fopen(path, "w") : stderr;
  if (!out) out = stderr;
  const char* top_env = std::getenv("EMBER_TRACE_TOP");
  const size_t top = top_env ? std::strtoul(top_env, nullptr, 10) : 40;
  std::fprintf(out, "device time %.3f ms in %zu kernel names\n%10s %8s %6s  %s\n", all / 1e6, rows.size(), "total ms",
               "calls", "share", "kernel");
  for (size_t i = 0; i < rows.size() && i < top; ++i)
    std::fprintf(out, "%10.3f %8ld %5.1f%%  %s\n", rows[i].second.ns / 1e6, rows[i].second.calls,
                 100 * rows[i].second.ns / std::max(all, 1.0), rows[i].first.c_str());
  if (out != stderr) std::fclose(out);
}

struct Tracer {
  Tracer() {
    cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET);
    // Delivered every 100 ms, so that records are not lost if the CUDA context is torn down
    // before the exit handler runs.
    cuptiActivityFlushPeriod(100);
    std::atexit(report);
  }
} tracer;

}  // namespace

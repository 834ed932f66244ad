#include "graph/op_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace ember::graph {

namespace {

struct Totals {
  std::mutex mutex;
  std::map<std::string, std::pair<int64_t, double>> by_op;  // calls, seconds

  ~Totals() {  // at exit: the table, largest total first
    std::vector<std::pair<std::string, std::pair<int64_t, double>>> rows(by_op.begin(), by_op.end());
    if (rows.empty()) return;
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
    double all = 0;
    for (const auto& r : rows) all += r.second.second;
    std::fprintf(stderr, "EMBER_PROFILE_OPS: %.3f ms in %zu ops\n%-28s %10s %12s %7s\n", all * 1e3, rows.size(), "op",
                 "calls", "total ms", "share");
    for (const auto& [op, t] : rows)
      std::fprintf(stderr, "%-28s %10lld %12.3f %6.1f%%\n", op.c_str(), static_cast<long long>(t.first), t.second * 1e3,
                   100 * t.second / all);
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

}  // namespace

bool op_profile_on() {
  static const bool on = [] {
    const char* v = std::getenv("EMBER_PROFILE_OPS");
    if (!v || std::string(v) == "0") return false;
    totals();  // constructed now, so destroyed (and printed) after anything that runs graphs
    return true;
  }();
  return on;
}

void op_profile_add(const std::string& op, double seconds) {
  Totals& t = totals();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto& [calls, total] = t.by_op[op];
  ++calls;
  total += seconds;
}

}  // namespace ember::graph

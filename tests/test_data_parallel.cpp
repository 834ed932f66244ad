// The TCP process group and DataParallel with ranks as threads of this process (on loopback):
// the multi-rank scenarios of tests/dist_scenarios.cpp, faults of the TCP backend, one-rank
// jobs, and the engine's end-of-backward callback that DataParallel relies on.
#include <atomic>
#include <thread>

#include <unistd.h>

#include "autograd/engine.h"
#include "distributed/data_parallel.h"
#include "distributed/process_group.h"
#include "nn/module.h"
#include "ops/ops.h"
#include "tests/dist_scenarios.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test;

namespace {

int test_port(int offset) { return 40000 + static_cast<int>(::getpid() % 20000) + offset; }

DistEnv env_for(int rank, int world, int port) {
  DistEnv env;
  env.rank = rank;
  env.world_size = world;
  env.master_port = port;
  return env;
}

// Runs fn(group) on `world` ranks (threads) of a TCP group; returns every rank's failures and
// errors, prefixed with the rank.
template <typename F>
std::vector<std::string> on_ranks(int world, int port, F fn, ProcessGroupOptions options = {}) {
  std::vector<std::vector<std::string>> found(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        auto group = init_process_group(Backend::Tcp, env_for(r, world, port), options);
        for (const std::string& s : fn(group)) found[static_cast<size_t>(r)].push_back(s);
      } catch (const Error& e) {
        found[static_cast<size_t>(r)].push_back(str_cat("error: ", e.what()));
      }
    });
  for (auto& t : threads) t.join();
  std::vector<std::string> all;
  for (int r = 0; r < world; ++r)
    for (const std::string& s : found[static_cast<size_t>(r)]) all.push_back(str_cat("rank ", r, ": ", s));
  return all;
}

void check_none(const std::vector<std::string>& failures) {
  for (const std::string& s : failures) INFO(s);
  CHECK(failures.empty());
  for (const std::string& s : failures) MESSAGE(s);
}

}  // namespace

TEST_CASE("distributed: every collective, every dtype, over TCP (2 and 3 ranks)") {
  check_none(on_ranks(2, test_port(0), [](const auto& g) { return check_collectives(g); }));
  check_none(on_ranks(3, test_port(1), [](const auto& g) { return check_collectives(g); }));
}

TEST_CASE("distributed: DataParallel over 2 ranks matches single-process training") {
  check_none(on_ranks(2, test_port(2), [](const auto& g) { return check_data_parallel_training(g); }));
}

TEST_CASE("distributed: DataParallel trains a CNN (conv, batch norm, max pool) like one process") {
  check_none(on_ranks(2, test_port(9), [](const auto& g) { return check_data_parallel_cnn(g); }));
}

TEST_CASE("distributed: DataParallel with parameters unused on some ranks") {
  check_none(on_ranks(2, test_port(3), [](const auto& g) { return check_unused_parameters(g); }));
}

TEST_CASE("distributed: DataParallel trains a loaded .ember model like one process") {
  const std::string path = std::string(EMBER_SOURCE_DIR) + "/examples/data/digits_mlp.ember";
  check_none(on_ranks(2, test_port(4), [&](const auto& g) { return check_data_parallel_model(g, path); }));
}

TEST_CASE("distributed: one-rank jobs need no communication (and no NCCL)") {
  auto group = init_process_group(Backend::Tcp, DistEnv{});
  CHECK(group->size() == 1);
  check_none(check_collectives(group));
  check_none(check_data_parallel_training(group));
  check_none(check_unused_parameters(group));
  if (!nccl_available()) {
    CHECK(init_process_group(Backend::Nccl, DistEnv{})->size() == 1);
    check_error([] { make_nccl_group(env_for(0, 2, test_port(5)), {}); }, ErrorCode::Unsupported,
                "needs NCCL, and this build of ember has none");
  }
}

TEST_CASE("distributed: TCP collectives that disagree, a dead peer and a silent peer are clear errors") {
  // Rank 1 reduces 12 elements where rank 0 reduces 10: both ranks are told what each called.
  auto mismatch = on_ranks(2, test_port(6), [](const auto& g) {
    g->all_reduce(zeros({g->rank() == 0 ? 10 : 12}));
    return std::vector<std::string>{};
  });
  REQUIRE(mismatch.size() == 2);
  for (const std::string& s : mismatch) {
    CHECK(s.find("ranks disagree on the collective: rank 1 called all_reduce #0 on 12 float32 elements (sum), "
                 "rank 0 called all_reduce #0 on 10 float32 elements (sum)") != std::string::npos);
  }

  // Rank 1 leaves (its group is destroyed): rank 0's next collective names it.
  auto dead = on_ranks(2, test_port(7), [](const auto& g) {
    if (g->rank() == 0) g->all_reduce(zeros({4}));
    return std::vector<std::string>{};
  });
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].find("rank 0: error: [tcp process group] rank 1 (during all_reduce #0 on 4 float32 elements (sum)) "
                     "closed the connection") != std::string::npos);

  // Rank 1 stays but never calls: rank 0 gives up at the timeout; later calls say the group failed.
  std::atomic<bool> rank0_done{false};
  ProcessGroupOptions quick;
  quick.timeout = std::chrono::milliseconds(1500);
  const auto start = std::chrono::steady_clock::now();
  auto silent = on_ranks(
      2, test_port(8),
      [&](const auto& g) {
        std::vector<std::string> seen;
        if (g->rank() == 1) {
          while (!rank0_done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
          return seen;
        }
        try {
          g->barrier();
        } catch (const Error& e) {
          seen.push_back(e.what());
        }
        rank0_done = true;
        try {
          g->barrier();
        } catch (const Error& e) {
          seen.push_back(e.what());
        }
        return seen;
      },
      quick);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(silent.size() == 2);
  CHECK(silent[0].find("timed out waiting for rank 1 (during barrier #0)") != std::string::npos);
  CHECK(silent[1].find("an earlier collective failed") != std::string::npos);
  CHECK(seconds < 10);
}

TEST_CASE("autograd: queue_callback runs after every leaf's gradient is accumulated") {
  Tensor w = ones({3}).requires_grad_();
  Tensor seen;
  int calls = 0;
  w.register_post_accumulate_grad_hook([&](const Tensor&) {
    autograd::queue_callback([&] {
      ++calls;
      seen = w.grad().clone();
      autograd::queue_callback([&] { ++calls; });  // a callback may queue another
    });
  });
  sum(mul(w, 2.0)).backward();
  CHECK(calls == 2);
  check_equal_values(seen, {2, 2, 2});
  check_error([] { autograd::queue_callback([] {}); }, ErrorCode::InvalidArgument, "during backward()");
  // A failing callback propagates out of backward(), and the next backward starts clean.
  Tensor v = ones({2}).requires_grad_();
  bool fail = true;
  v.register_post_accumulate_grad_hook([&](const Tensor&) {
    autograd::queue_callback([&] {
      if (fail) throw_error(ErrorCode::InvalidArgument, "callback failed");
    });
  });
  check_error([&] { sum(v).backward(); }, ErrorCode::InvalidArgument, "callback failed");
  fail = false;
  sum(v).backward();
  check_equal_values(v.grad(), {2, 2});
}

// The parts of distributed training that need no GPU: reading the job from the environment
// (torchrun, Slurm, Open MPI), the TCP rendezvous (ranks as threads of this process, on
// loopback), and sharding a dataset over ranks.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <unistd.h>

#include "distributed/env.h"
#include "distributed/rendezvous.h"
#include "distributed/sampler.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::distributed;
using namespace ember::test;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

// A port for one test: different per test and per run, inside the unprivileged range.
int test_port(int offset) { return 20000 + static_cast<int>(::getpid() % 20000) + offset; }

// One rank of a rendezvous on its own thread: what it received, or its error message.
struct RankResult {
  std::vector<uint8_t> got;
  std::string error;
};

std::thread start_rank(int rank, int world, int port, std::vector<uint8_t> payload, std::chrono::milliseconds timeout,
                       RankResult& out) {
  return std::thread([=, &out] {
    DistEnv env;
    env.rank = rank;
    env.world_size = world;
    env.master_port = port;
    try {
      out.got = tcp_broadcast(env, payload, timeout);
    } catch (const Error& e) {
      out.error = e.what();
    }
  });
}

}  // namespace

TEST_CASE("distributed: the job is read from torchrun's, Slurm's and Open MPI's variables") {
  DistEnv none = env_from_environment(env_of({}));
  CHECK(none.world_size == 1);
  CHECK(none.rank == 0);
  CHECK(none.source == "single process");

  DistEnv t = env_from_environment(env_of({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                           {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "node7"},
                                           {"MASTER_PORT", "1234"}}));
  CHECK(t.source == "torchrun");
  CHECK((t.rank == 5 && t.world_size == 8 && t.local_rank == 1 && t.local_world_size == 4));
  CHECK((t.master_addr == "node7" && t.master_port == 1234));

  DistEnv s = env_from_environment(env_of({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"},
                                           {"SLURM_TASKS_PER_NODE", "2(x2)"}, {"SLURM_NODEID", "1"},
                                           {"SLURM_NNODES", "2"}, {"MASTER_ADDR", "10.0.0.1"}}));
  CHECK(s.source == "slurm");
  CHECK((s.rank == 3 && s.world_size == 4 && s.local_rank == 1 && s.local_world_size == 2));
  CHECK(s.master_port == 29500);
  // Uneven nodes: "3(x2),1" is 3, 3, 1 tasks; the third node has one.
  DistEnv uneven = env_from_environment(env_of({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "7"}, {"SLURM_LOCALID", "0"},
                                                {"SLURM_TASKS_PER_NODE", "3(x2),1"}, {"SLURM_NODEID", "2"},
                                                {"SLURM_NNODES", "3"}, {"MASTER_ADDR", "n0"}}));
  CHECK(uneven.local_world_size == 1);
  // One node: no MASTER_ADDR needed.
  CHECK(env_from_environment(env_of({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_NNODES", "1"}}))
            .master_addr == "127.0.0.1");

  DistEnv m = env_from_environment(env_of({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                           {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}));
  CHECK(m.source == "open mpi");
  CHECK((m.rank == 1 && m.world_size == 2 && m.master_addr == "127.0.0.1"));

  // torchrun's variables win over a Slurm allocation the job runs inside.
  CHECK(env_from_environment(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "3"},
                                     {"SLURM_NTASKS", "4"}}))
            .source == "torchrun");

  check_error([] { env_from_environment(env_of({{"RANK", "two"}, {"WORLD_SIZE", "4"}})); }, ErrorCode::InvalidArgument,
              "RANK=\"two\" is not a whole number");
  check_error([] { env_from_environment(env_of({{"RANK", "4"}, {"WORLD_SIZE", "4"}})); }, ErrorCode::InvalidArgument,
              "in [0, 3]");
  check_error([] { env_from_environment(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}})); },
              ErrorCode::InvalidArgument, "MASTER_PORT");
  check_error([] {
    env_from_environment(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_NNODES", "2"}}));
  }, ErrorCode::InvalidArgument, "needs MASTER_ADDR");
  check_error([] {
    env_from_environment(env_of({{"RANK", "0"}, {"WORLD_SIZE", "8"}, {"LOCAL_WORLD_SIZE", "4"}}));
  }, ErrorCode::InvalidArgument, "needs MASTER_ADDR");
  check_error([] {
    env_from_environment(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_TASKS_PER_NODE", "2"},
                                 {"SLURM_NODEID", "1"}}));
  }, ErrorCode::InvalidArgument, "past the nodes");
}

TEST_CASE("distributed: the TCP rendezvous gives every rank rank 0's bytes") {
  const int world = 4;
  const int port = test_port(0);
  const std::vector<uint8_t> id = {1, 2, 3, 250, 0, 7};
  std::vector<RankResult> results(world);
  std::vector<std::thread> ranks;
  // Rank 0 starts last: the others retry until it listens.
  for (int r = world - 1; r >= 0; --r) {
    ranks.push_back(start_rank(r, world, port, r == 0 ? id : std::vector<uint8_t>{9}, std::chrono::seconds(20),
                               results[r]));
    if (r == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) {
    INFO("rank ", r, ": ", results[r].error);
    CHECK(results[r].error.empty());
    CHECK(results[r].got == id);
  }
}

TEST_CASE("distributed: a rendezvous with a missing rank times out naming it") {
  const int port = test_port(1);
  RankResult rank0, rank1;
  std::thread r0 = start_rank(0, 3, port, {1}, std::chrono::milliseconds(1500), rank0);
  // A longer timeout than rank 0's: rank 1 sees rank 0 give up.
  std::thread r1 = start_rank(1, 3, port, {}, std::chrono::seconds(10), rank1);
  r0.join();
  r1.join();
  CHECK(rank0.error.find("missing ranks: 2") != std::string::npos);
  CHECK(rank1.error.find("closed the connection") != std::string::npos);
  // Nobody listening at all: the joining rank gives up at its deadline, naming the address.
  DistEnv alone;
  alone.rank = 1;
  alone.world_size = 2;
  alone.master_port = test_port(2);
  check_error([&] { tcp_broadcast(alone, {}, std::chrono::milliseconds(300)); }, ErrorCode::Io,
              "could not reach rank 0 at 127.0.0.1:");
}

TEST_CASE("distributed: ranks that disagree on the world size are refused") {
  const int port = test_port(3);
  RankResult rank0, rank1;
  std::thread r0 = start_rank(0, 2, port, {1}, std::chrono::seconds(10), rank0);
  std::thread r1 = start_rank(1, 3, port, {}, std::chrono::seconds(10), rank1);
  r0.join();
  r1.join();
  CHECK(rank0.error.find("rank 1 has world size 3, rank 0 has 2") != std::string::npos);
  CHECK(rank1.error.find("rank 0 refused rank 1") != std::string::npos);
}

TEST_CASE("distributed: shards are disjoint, cover the dataset and follow the epoch") {
  for (bool drop_last : {false, true}) {
    INFO("drop_last ", drop_last);
    const int world = 4;
    const int64_t size = 10;
    std::multiset<int64_t> seen;
    size_t per_rank = 0;
    for (int r = 0; r < world; ++r) {
      auto mine = shard_indices(size, r, world, {.seed = 7, .epoch = 2, .drop_last = drop_last});
      if (r == 0) per_rank = mine.size();
      CHECK(mine.size() == per_rank);
      seen.insert(mine.begin(), mine.end());
    }
    CHECK(per_rank == (drop_last ? 2u : 3u));
    for (int64_t i : seen) CHECK((i >= 0 && i < size));
    if (!drop_last) {
      // 12 slots for 10 samples: every sample once, two of them twice (the padding).
      std::set<int64_t> distinct(seen.begin(), seen.end());
      CHECK(distinct.size() == 10u);
    } else {
      CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 8u);
    }
  }
  // The same permutation on every rank for an epoch, another the next epoch; no shuffle keeps order.
  CHECK(shard_indices(100, 1, 2, {.seed = 3, .epoch = 0}) == shard_indices(100, 1, 2, {.seed = 3, .epoch = 0}));
  CHECK(shard_indices(100, 1, 2, {.seed = 3, .epoch = 0}) != shard_indices(100, 1, 2, {.seed = 3, .epoch = 1}));
  CHECK(shard_indices(5, 1, 2, {.shuffle = false}) == std::vector<int64_t>{1, 3, 0});
  check_error([] { shard_indices(10, 2, 2); }, ErrorCode::InvalidArgument, "outside a world of 2");
}

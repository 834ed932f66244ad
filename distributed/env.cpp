#include "distributed/env.h"

#include <cerrno>
#include <cstdlib>

#include "runtime/error.h"

namespace ember::distributed {

std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

namespace {

int parse_int(const std::string& name, const std::string& value, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value.c_str(), &end, 10);
  EMBER_CHECK(!value.empty() && end && *end == '\0' && errno == 0 && v >= lo && v <= hi, InvalidArgument,
              "[distributed] ", name, "=\"", value, "\" is not a whole number in [", lo, ", ", hi, "]");
  return static_cast<int>(v);
}

// The variable names of one convention.
struct Convention {
  const char* source;
  const char* rank;
  const char* world_size;
  const char* local_rank;
  const char* local_world_size;
};

constexpr Convention kConventions[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", nullptr},  // per node: see slurm_local_size
    {"open mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
};

constexpr int kMaxRanks = 1 << 20;

// Slurm's tasks on this node: SLURM_TASKS_PER_NODE lists the count of every node, compressed
// ("4(x2),3" is 4, 4, 3), and SLURM_NODEID is this node's place in that list.
std::optional<int> slurm_local_size(const EnvLookup& lookup) {
  auto list = lookup("SLURM_TASKS_PER_NODE");
  auto node = lookup("SLURM_NODEID");
  if (!list || !node) return std::nullopt;
  const int node_id = parse_int("SLURM_NODEID", *node, 0, kMaxRanks);
  int index = 0;
  size_t at = 0;
  while (at <= list->size()) {
    const size_t comma = std::min(list->find(',', at), list->size());
    std::string item = list->substr(at, comma - at);
    int repeat = 1;
    if (const size_t paren = item.find("(x"); paren != std::string::npos) {
      EMBER_CHECK(item.back() == ')', InvalidArgument, "[distributed] SLURM_TASKS_PER_NODE=\"", *list,
                  "\" is not a list like 4(x2),3");
      repeat = parse_int("SLURM_TASKS_PER_NODE", item.substr(paren + 2, item.size() - paren - 3), 1, kMaxRanks);
      item = item.substr(0, paren);
    }
    const int count = parse_int("SLURM_TASKS_PER_NODE", item, 1, kMaxRanks);
    if (node_id < index + repeat) return count;
    index += repeat;
    at = comma + 1;
  }
  throw_error(ErrorCode::InvalidArgument, str_cat("[distributed] SLURM_NODEID=", node_id,
                                                  " is past the nodes of SLURM_TASKS_PER_NODE=\"", *list, "\""));
}

}  // namespace

DistEnv env_from_environment(const EnvLookup& lookup) {
  DistEnv env;
  const Convention* found = nullptr;
  for (const Convention& c : kConventions)
    if (lookup(c.rank) && lookup(c.world_size)) {
      found = &c;
      break;
    }
  if (!found) return env;
  env.source = found->source;
  env.world_size = parse_int(found->world_size, *lookup(found->world_size), 1, kMaxRanks);
  env.rank = parse_int(found->rank, *lookup(found->rank), 0, env.world_size - 1);
  env.local_rank = env.rank;
  env.local_world_size = env.world_size;
  if (auto v = lookup(found->local_rank)) env.local_rank = parse_int(found->local_rank, *v, 0, kMaxRanks);
  // Whether the job spans several machines, where that is known.
  bool several_machines = false;
  if (found->local_world_size) {
    if (auto v = lookup(found->local_world_size))
      env.local_world_size = parse_int(found->local_world_size, *v, 1, kMaxRanks);
    several_machines = env.local_world_size < env.world_size;
  } else {
    if (auto n = slurm_local_size(lookup)) env.local_world_size = *n;
    auto nodes = lookup("SLURM_NNODES");
    if (!nodes) nodes = lookup("SLURM_JOB_NUM_NODES");
    several_machines = nodes ? parse_int("SLURM_NNODES", *nodes, 1, kMaxRanks) > 1
                             : env.local_world_size < env.world_size;
  }
  EMBER_CHECK(env.local_rank < env.local_world_size, InvalidArgument, "[distributed] the local rank ",
              env.local_rank, " (", found->local_rank, ") is not below the ", env.local_world_size,
              " ranks on this machine");
  if (auto port = lookup("MASTER_PORT")) env.master_port = parse_int("MASTER_PORT", *port, 1, 65535);
  if (auto addr = lookup("MASTER_ADDR")) {
    EMBER_CHECK(!addr->empty(), InvalidArgument, "[distributed] MASTER_ADDR is empty");
    env.master_addr = *addr;
  } else {
    // Every rank on this machine: rank 0 is local. Otherwise the address cannot be guessed.
    EMBER_CHECK(!several_machines, InvalidArgument, "[distributed] a ", env.source, " job of ",
                env.world_size, " processes over several machines needs MASTER_ADDR (the host of rank 0) and "
                "MASTER_PORT in the environment; see docs/DISTRIBUTED.md");
  }
  return env;
}

}  // namespace ember::distributed

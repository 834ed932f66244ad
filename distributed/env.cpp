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
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
    {"open mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
};

constexpr int kMaxRanks = 1 << 20;

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
  if (auto v = lookup(found->local_world_size)) {
    // Slurm writes SLURM_NTASKS_PER_NODE as "4" or, for uneven nodes, "4(x2),3": the first count.
    std::string s = *v;
    if (const size_t cut = s.find_first_of("(,"); cut != std::string::npos) s = s.substr(0, cut);
    env.local_world_size = parse_int(found->local_world_size, s, 1, kMaxRanks);
  }
  EMBER_CHECK(env.local_rank < env.local_world_size, InvalidArgument, "[distributed] ", found->local_rank, "=",
              env.local_rank, " is not below ", found->local_world_size, "=", env.local_world_size);
  if (auto port = lookup("MASTER_PORT")) env.master_port = parse_int("MASTER_PORT", *port, 1, 65535);
  if (auto addr = lookup("MASTER_ADDR")) {
    EMBER_CHECK(!addr->empty(), InvalidArgument, "[distributed] MASTER_ADDR is empty");
    env.master_addr = *addr;
  } else {
    // Every rank on this machine: rank 0 is local. Otherwise the address cannot be guessed.
    EMBER_CHECK(env.world_size == env.local_world_size, InvalidArgument, "[distributed] a ", env.source, " job of ",
                env.world_size, " processes over several machines needs MASTER_ADDR (the host of rank 0) and "
                "MASTER_PORT in the environment; see docs/DISTRIBUTED.md");
  }
  return env;
}

}  // namespace ember::distributed

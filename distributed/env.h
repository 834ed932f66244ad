// Where this process sits in a distributed job, read from the environment conventions users
// already have: torchrun's (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_TASKS_PER_NODE with
// SLURM_NODEID, SLURM_NNODES) and
// Open MPI's (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE). The rendezvous address
// always comes from MASTER_ADDR / MASTER_PORT (Slurm and mpirun jobs export them in the batch
// script; see docs/DISTRIBUTED.md).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace ember::distributed {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single process";  // "torchrun", "slurm", "open mpi" or "single process"
};

/// Reads a variable; the default reads the process environment (tests pass their own).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> process_env(const std::string& name);

/// The job as the environment describes it: torchrun's variables first, then Slurm's, then
/// Open MPI's; none of them: a single process. Throws InvalidArgument naming the variable for a
/// value that is not a number, a rank outside [0, world size), a port outside 1..65535, or a
/// multi-process job without MASTER_ADDR where it cannot be guessed.
DistEnv env_from_environment(const EnvLookup& lookup = process_env);

}  // namespace ember::distributed

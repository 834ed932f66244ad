// The first step of every distributed job, on its own: read this process's place from the
// environment (torchrun, Slurm, Open MPI or `ember launch`) and receive rank 0's token through
// the TCP rendezvous. With NCCL the token is the communicator's unique id.
// Run: ember launch --nproc-per-node 4 --allow-oversubscribe -- ./distributed_hello
#include <cstdio>
#include <random>

#include "ember.h"

int main() {
  using namespace ember::distributed;
  try {
    const DistEnv env = env_from_environment();
    std::vector<uint8_t> token(8);
    if (env.rank == 0) {
      std::random_device rd;
      for (uint8_t& b : token) b = static_cast<uint8_t>(rd());
    }
    token = tcp_broadcast(env, token, std::chrono::seconds(60));
    std::printf("rank %d of %d (local %d, %s): token", env.rank, env.world_size, env.local_rank, env.source.c_str());
    for (uint8_t b : token) std::printf(" %02x", b);
    std::printf("\n");
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "distributed_hello: %s\n", e.what());
    return 1;
  }
  return 0;
}

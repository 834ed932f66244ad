// `ember launch`: one process per local rank, with torchrun's environment, on one machine (or
// one node of several, started once per node); when a rank fails the others are stopped.
#pragma once

#include <string>
#include <vector>

namespace ember::tools {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double grace_seconds = 10;  // SIGTERM to SIGKILL for the surviving ranks
  bool allow_oversubscribe = false;  // more ranks than GPUs (CPU jobs)
  std::vector<std::string> command;
};

/// Runs the job; returns 0 when every rank exits 0, else the first failing rank's exit status
/// (128 + signal for a rank killed by a signal).
int launch(const LaunchOptions& options);

}  // namespace ember::tools

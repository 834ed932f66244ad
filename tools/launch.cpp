#include "tools/launch.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "ember.h"

namespace ember::tools {

namespace {

volatile sig_atomic_t g_forwarded_signal = 0;

void remember_signal(int sig) { g_forwarded_signal = sig; }

// Starts `command` with the rank's environment; returns the child's pid.
pid_t start_rank(const LaunchOptions& o, int local_rank) {
  const int world = o.nnodes * o.nproc_per_node;
  const int rank = o.node_rank * o.nproc_per_node + local_rank;
  const pid_t pid = ::fork();
  EMBER_CHECK(pid >= 0, Io, "[launch] fork failed: ", std::strerror(errno));
  if (pid > 0) return pid;
  // The child: torchrun's variables, then the program.
  const std::pair<const char*, std::string> vars[] = {
      {"RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(world)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node)},
      {"GROUP_RANK", std::to_string(o.node_rank)},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(o.master_port)},
  };
  for (const auto& [name, value] : vars) ::setenv(name, value.c_str(), 1);
  std::vector<char*> argv;
  for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::fprintf(stderr, "[ember launch] rank %d: cannot run %s: %s\n", rank, argv[0], std::strerror(errno));
  std::_Exit(127);
}

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int launch(const LaunchOptions& o) {
  EMBER_CHECK(!o.command.empty(), InvalidArgument, "[launch] no program given (ember launch ... -- prog args)");
  EMBER_CHECK(o.nproc_per_node >= 1 && o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes,
              InvalidArgument, "[launch] expected --nproc-per-node >= 1 and 0 <= --node-rank < --nnodes, got ",
              o.nproc_per_node, ", ", o.node_rank, ", ", o.nnodes);
  const int gpus = cuda_built() ? cuda::device_count() : 0;
  EMBER_CHECK(gpus == 0 || o.nproc_per_node <= gpus || o.allow_oversubscribe, InvalidArgument, "[launch] ",
              o.nproc_per_node, " ranks per node but this machine has ", gpus,
              " GPUs (one process per GPU; --allow-oversubscribe for CPU jobs)");
  struct sigaction sa{};
  sa.sa_handler = remember_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::vector<pid_t> pids;
  for (int r = 0; r < o.nproc_per_node; ++r) pids.push_back(start_rank(o, r));
  const int first_rank = o.node_rank * o.nproc_per_node;
  auto stop_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  int running = o.nproc_per_node, result = 0;
  bool stopping = false;
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] != done) continue;
        pids[i] = -1;
        --running;
        const int code = exit_status(status);
        if (code != 0 && !stopping) {
          std::fprintf(stderr, "[ember launch] rank %d exited with status %d; stopping the other ranks\n",
                       first_rank + static_cast<int>(i), code);
          result = code;
          stopping = true;
          stop_all(SIGTERM);
          stop_deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                                  std::chrono::duration<double>(o.grace_seconds));
        }
      }
      continue;
    }
    if (g_forwarded_signal != 0 && !stopping) {
      // Ctrl-C or a scheduler's SIGTERM: passed on, then the same grace period.
      stopping = true;
      result = 128 + g_forwarded_signal;
      stop_all(g_forwarded_signal);
      stop_deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                              std::chrono::duration<double>(o.grace_seconds));
    }
    if (stopping && std::chrono::steady_clock::now() > stop_deadline) {
      std::fprintf(stderr, "[ember launch] ranks still running after %.0f s: killing them\n", o.grace_seconds);
      stop_all(SIGKILL);
      stop_deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return result;
}

}  // namespace ember::tools

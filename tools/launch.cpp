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

// Starts `command` with the rank's environment (this process's, with torchrun's variables
// set); returns the child's pid. Everything is built before fork: between fork and exec the
// child only calls exec (CUDA's threads may hold the allocator's lock at fork time).
pid_t start_rank(const LaunchOptions& o, int local_rank) {
  const int world = o.nnodes * o.nproc_per_node;
  const int rank = o.node_rank * o.nproc_per_node + local_rank;
  const std::pair<std::string, std::string> vars[] = {
      {"RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(world)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node)},
      {"GROUP_RANK", std::to_string(o.node_rank)},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(o.master_port)},
  };
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    bool replaced = false;
    for (const auto& [name, value] : vars) replaced = replaced || entry.rfind(name + "=", 0) == 0;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [name, value] : vars) env.push_back(name + "=" + value);
  std::vector<char*> envp, argv;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string cannot_run = str_cat("[ember launch] rank ", rank, ": cannot run ", o.command[0], ": ");
  const pid_t pid = ::fork();
  EMBER_CHECK(pid >= 0, Io, "[launch] fork failed: ", std::strerror(errno));
  if (pid > 0) return pid;
  ::execvpe(argv[0], argv.data(), envp.data());
  // One write, so that ranks failing together do not interleave their lines.
  char line[1024];
  const int n = std::snprintf(line, sizeof line, "%s%s\n", cannot_run.c_str(), std::strerror(errno));
  [[maybe_unused]] ssize_t written = ::write(2, line, static_cast<size_t>(std::min<int>(n, sizeof line - 1)));
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
  ::signal(SIGCHLD, SIG_DFL);  // an inherited SIG_IGN would make waitpid lose the ranks' statuses

  std::vector<pid_t> pids;
  auto stop_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  try {
    for (int r = 0; r < o.nproc_per_node; ++r) pids.push_back(start_rank(o, r));
  } catch (const Error&) {
    stop_all(SIGKILL);  // a rank that could not start: the ones already running go too
    for (pid_t p : pids) ::waitpid(p, nullptr, 0);
    throw;
  }
  const int first_rank = o.node_rank * o.nproc_per_node;
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
    if (g_forwarded_signal != 0) {
      const int sig = g_forwarded_signal;
      g_forwarded_signal = 0;
      if (!stopping) {
        // Ctrl-C or a scheduler's SIGTERM: passed on, then the same grace period.
        stopping = true;
        result = 128 + sig;
        stop_all(sig);
        stop_deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(o.grace_seconds));
      } else {
        stop_all(SIGKILL);  // a second Ctrl-C does not wait for the grace period
      }
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

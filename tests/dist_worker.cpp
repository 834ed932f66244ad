// One rank of a multi-process test job: the scenarios of tests/dist_scenarios.cpp with ranks as
// processes (NCCL on a multi-GPU machine, TCP anywhere), and a training loop in which one rank
// kills itself, for the fault tests. Prints "PASS name" / "FAIL name: why" per scenario and
// exits 1 when any failed.
//
//   ember launch --nproc-per-node 2 -- dist_worker --backend nccl collectives training
//   dist_worker --backend nccl --timeout-s 20 --kill-rank 1 --kill-step 5 killed   (RANK etc. set by hand)
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ember.h"
#include "tests/dist_scenarios.h"

using namespace ember;
using namespace ember::distributed;

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "dist_worker: %s\nusage: dist_worker [--backend tcp|nccl] [--timeout-s S] [--model PATH]\n"
               "       [--kill-rank R] [--kill-step N] SCENARIO...\n"
               "scenarios: collectives training unused cnn model killed\n",
               why);
  std::exit(2);
}

// Trains until rank `kill_rank` kills itself at `kill_step`; the survivors must then end with a
// clear error (NCCL: the watchdog's timeout or NCCL's error; TCP: the collective's Io error)
// instead of hanging. Reading the loss each step blocks the host on the GPU, as real loops do.
int train_until_killed(const std::shared_ptr<ProcessGroup>& pg, int kill_rank, int kill_step) {
  auto model = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(256, 1024), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(1024, 10)});
  model->to(pg->device());
  DataParallel dp(model, pg);
  nn::SGD opt(model->parameters(), {0.01});
  Tensor x = randn({64, 256}, TensorOptions{DType::Float32, pg->device()});
  Tensor y = remainder(arange(64, TensorOptions{DType::Int64, Device::cpu()}), 10).to(pg->device());
  for (int step = 0; step < 100000; ++step) {
    if (pg->rank() == kill_rank && step == kill_step) {
      std::printf("rank %d: killing myself at step %d\n", pg->rank(), step);
      std::fflush(stdout);
      std::raise(SIGKILL);
    }
    model->zero_grad();
    Tensor loss = nn::cross_entropy(dp.forward(x), y);
    loss.backward();
    opt.step();
    const double l = loss.item<double>();
    if (step % 100 == 0) std::printf("rank %d step %d loss %.4f\n", pg->rank(), step, l);
  }
  std::printf("rank %d: finished without noticing the dead rank\n", pg->rank());
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  Backend backend = Backend::Auto;
  ProcessGroupOptions options;
  std::string model_path = std::string(EMBER_SOURCE_DIR) + "/examples/data/digits_mlp.ember";
  int kill_rank = -1, kill_step = 5;
  std::vector<std::string> scenarios;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--backend") {
      const std::string b = value();
      backend = b == "nccl" ? Backend::Nccl : b == "tcp" ? Backend::Tcp : (usage("unknown backend"), Backend::Auto);
    } else if (a == "--timeout-s") {
      options.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::atof(value().c_str()) * 1000));
    } else if (a == "--model") {
      model_path = value();
    } else if (a == "--kill-rank") {
      kill_rank = std::atoi(value().c_str());
    } else if (a == "--kill-step") {
      kill_step = std::atoi(value().c_str());
    } else if (a.rfind("--", 0) == 0) {
      usage(("unknown option " + a).c_str());
    } else {
      scenarios.push_back(a);
    }
  }
  if (scenarios.empty()) usage("no scenario");

  std::shared_ptr<ProcessGroup> pg;
  try {
    pg = init_process_group(backend, env_from_environment(), options);
  } catch (const Error& e) {
    std::fprintf(stderr, "dist_worker: %s\n", e.what());
    return 1;
  }
  int failed = 0;
  for (const std::string& name : scenarios) {
    test::Failures found;
    try {
      if (name == "collectives") found = test::check_collectives(pg);
      else if (name == "training") found = test::check_data_parallel_training(pg);
      else if (name == "unused") found = test::check_unused_parameters(pg);
      else if (name == "cnn") found = test::check_data_parallel_cnn(pg);
      else if (name == "model") found = test::check_data_parallel_model(pg, model_path);
      else if (name == "killed") return train_until_killed(pg, kill_rank, kill_step);
      else usage(("unknown scenario " + name).c_str());
    } catch (const Error& e) {
      found.push_back(str_cat("error: ", e.what()));
    }
    if (found.empty()) {
      std::printf("rank %d (%s, %s): PASS %s\n", pg->rank(), backend_name(pg->backend()),
                  pg->device().str().c_str(), name.c_str());
    } else {
      ++failed;
      for (const std::string& why : found) std::printf("rank %d: FAIL %s: %s\n", pg->rank(), name.c_str(), why.c_str());
    }
    std::fflush(stdout);
  }
  return failed ? 1 : 0;
}

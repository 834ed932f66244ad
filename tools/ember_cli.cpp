// The `ember` command line tool.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "ember.h"
#include "tools/demo.h"
#include "tools/launch.h"
#include "tools/model_bench.h"
#include "tools/model_commands.h"

namespace {

void print_ops_table() {
  const auto& ops = ember::OpRegistry::get().ops();
  std::printf("%-16s %-10s %-4s %-5s %-8s %s\n", "op", "family", "cpu", "cuda", "backward", "dtypes");
  for (const auto& op : ops) {
    std::string dtypes;
    for (size_t i = 0; i < op.dtypes.size(); ++i) dtypes.append(i ? "," : "").append(ember::dtype_name(op.dtypes[i]));
    std::printf("%-16s %-10s %-4s %-5s %-8s %s\n", op.name.c_str(), op.family.c_str(), op.cpu ? "yes" : "no",
                op.cuda ? "yes" : "no", op.backward ? "yes" : "no", dtypes.c_str());
  }
  std::printf("%zu ops\n", ops.size());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ember: an embedded C++ tensor runtime"};
  app.set_version_flag("--version", std::string("ember ") + ember::version() +
                                        (ember::cuda_built() ? " (CUDA)" : " (CPU only)"));
  app.require_subcommand(0, 1);

  auto* ops = app.add_subcommand("ops", "List every op with its devices, backward and dtypes");
  bool json = false;
  ops->add_flag("--json", json, "Print a JSON array (one object per op)");

  auto* demo = app.add_subcommand("demo", "A short tour of tensors and ops");
  std::string device = "best";
  demo->add_option("--device", device, "cpu, cuda, cuda:N or best")->capture_default_str();

  auto* info = app.add_subcommand("info", "Describe a .ember model: inputs, outputs, ops, parameters, producer");
  std::string model_path;
  info->add_option("model", model_path, "the .ember file")->required();

  auto* validate = app.add_subcommand("validate", "Verify a .ember model completely (exit status 0 when valid)");
  validate->add_option("model", model_path, "the .ember file")->required();

  auto* run = app.add_subcommand("run", "Run a .ember model on .npy inputs (random inputs when none are given)");
  run->add_option("model", model_path, "the .ember file")->required();
  std::vector<std::string> run_inputs, run_outputs;
  int64_t batch = 1;
  run->add_option("--input,-i", run_inputs, "an input .npy file, one per model input, in order");
  run->add_option("--output,-o", run_outputs, "where to write each output as .npy, in order");
  run->add_option("--device", device, "cpu, cuda, cuda:N or best")->capture_default_str();
  run->add_option("--batch", batch, "the size of symbolic dims for random inputs")->capture_default_str();

  auto* bench = app.add_subcommand("bench", "Time a .ember model's forward on random inputs: latency, throughput, "
                                             "memory");
  bench->add_option("model", model_path, "the .ember file")->required();
  ember::tools::BenchOptions bo;
  bench->add_option("--device", bo.device, "cpu, cuda, cuda:N or best")->capture_default_str();
  bench->add_option("--batch", bo.batch, "the size of symbolic input dims")->capture_default_str();
  bench->add_option("--warmup", bo.warmup, "forwards before timing")->capture_default_str();
  bench->add_option("--iterations", bo.iterations, "timed forwards")->capture_default_str();
  bool no_graphs = false, no_optimize = false, no_plan = false;
  bench->add_flag("--no-cuda-graphs", no_graphs, "run every forward eagerly (no CUDA graph capture)");
  bench->add_flag("--no-memory-plan", no_plan, "eager forwards allocate as they go (no planned arena)");
  bench->add_flag("--no-optimize", no_optimize, "run the graph as exported (no inference passes)");
  bench->add_flag("--tf32", bo.tf32, "float32 matrix products on TF32 tensor cores");
  bench->add_option("--dtype", bo.dtype, "float16 or bfloat16: run a float32 model in reduced precision");
  bench->add_flag("--json", bo.json, "print one JSON object");

  auto* convert = app.add_subcommand("convert", "Re-save a .ember model's weights as safetensors (PyTorch's names)");
  convert->add_option("model", model_path, "the .ember file")->required();
  std::string safetensors_path;
  convert->add_option("--safetensors", safetensors_path, "the safetensors file to write")->required();

  auto* finetune = app.add_subcommand("finetune", "Train a .ember model on one batch with SGD and cross-entropy, "
                                                    "printing each step's loss");
  finetune->add_option("model", model_path, "the .ember file")->required();
  std::string target_path, tuned_path;
  int steps = 20;
  double lr = 0.01, momentum = 0;
  finetune->add_option("--input,-i", run_inputs, "an input .npy file, one per model input")->required();
  finetune->add_option("--target,-t", target_path, "int64 class indices (.npy)")->required();
  finetune->add_option("--steps", steps, "SGD steps")->capture_default_str();
  finetune->add_option("--lr", lr, "learning rate")->capture_default_str();
  finetune->add_option("--momentum", momentum, "SGD momentum")->capture_default_str();
  finetune->add_option("--device", device, "cpu, cuda, cuda:N or best")->capture_default_str();
  finetune->add_option("--output,-o", tuned_path, "where to save the tuned model");
  bool class_last = false;
  finetune->add_flag("--class-last", class_last,
                     "classes in the output's last dim (a language model's [B, T, vocab] with targets [B, T])");

  auto* launch = app.add_subcommand(
      "launch", "Start one process per local rank with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, "
                "MASTER_ADDR, ...); when one fails, stop the others and exit with its status");
  ember::tools::LaunchOptions lo;
  launch->add_option("--nproc-per-node", lo.nproc_per_node, "processes on this machine (one per GPU)")->required();
  launch->add_option("--nnodes", lo.nnodes, "machines in the job")->capture_default_str();
  launch->add_option("--node-rank", lo.node_rank, "this machine's index, 0 on the one with rank 0")
      ->capture_default_str();
  launch->add_option("--master-addr", lo.master_addr, "host of rank 0")->capture_default_str();
  launch->add_option("--master-port", lo.master_port, "port rank 0 listens on")->capture_default_str();
  launch->add_option("--grace", lo.grace_seconds, "seconds between SIGTERM and SIGKILL for the surviving ranks")
      ->capture_default_str();
  launch->add_flag("--allow-oversubscribe", lo.allow_oversubscribe, "allow more ranks than GPUs (CPU jobs)");
  launch->add_option("command", lo.command, "the program and its arguments, after --")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (*ops) {
      if (json) std::cout << ember::registry_json(ember::OpRegistry::get());
      else print_ops_table();
    } else if (*demo) {
      return ember::tools::run_demo(device);
    } else if (*info) {
      return ember::tools::model_info(model_path);
    } else if (*validate) {
      return ember::tools::model_validate(model_path);
    } else if (*launch) {
      return ember::tools::launch(lo);
    } else if (*finetune) {
      return ember::tools::model_finetune(model_path, run_inputs, target_path, device, steps, lr, momentum, tuned_path,
                                           class_last);
    } else if (*convert) {
      ember::load(model_path).save_safetensors(safetensors_path);
      std::cout << "wrote " << safetensors_path << "\n";
    } else if (*bench) {
      bo.cuda_graphs = !no_graphs;
      bo.optimize = !no_optimize;
      bo.plan_memory = !no_plan;
      return ember::tools::model_bench(model_path, bo);
    } else if (*run) {
      return ember::tools::model_run(model_path, run_inputs, run_outputs, device, batch);
    } else {
      std::cout << app.help();
    }
  } catch (const ember::Error& e) {
    std::cerr << "ember: error (" << ember::error_code_name(e.code()) << "): " << e.what() << "\n";
    return 1;
  }
  return 0;
}

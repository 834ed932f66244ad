// Generates tokens from a language model exported from PyTorch (.ember; tokens [B, T] int64 in,
// logits [B, T, vocab] out): greedily, or by top-k sampling. A model exported with a fixed
// sequence length T sees exactly the last T tokens, so the prompt must hold T or more.
// Usage: generate MODEL.ember (--prompt 1,2,3 | --prompt-npy tokens.npy) [--tokens N] [--top-k K]
//        [--temperature T] [--seed S] [--device cpu|cuda|cuda:N|best]
// Prints the prompt and the new tokens as ids.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>
#include <string>

#include "ember.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app{"Generate tokens from an exported language model"};
  std::string path, prompt_list, prompt_npy, device_name = "cpu";
  nn::GenerateOptions o;
  app.add_option("model", path, "the .ember file")->required();
  app.add_option("--prompt", prompt_list, "token ids, comma-separated");
  app.add_option("--prompt-npy", prompt_npy, ".npy of int64 token ids (its first row)");
  app.add_option("--tokens", o.max_new_tokens, "how many to generate")->check(CLI::PositiveNumber);
  app.add_option("--top-k", o.top_k, "0: greedy; k: sample among the k most likely");
  app.add_option("--temperature", o.temperature, "divides the logits before sampling");
  app.add_option("--seed", o.seed, "the sampler's seed");
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or best");
  CLI11_PARSE(app, argc, argv);
  try {
    const Device device = parse_device(device_name);
    Model model = load(path, device);
    std::vector<int64_t> prompt;
    if (!prompt_npy.empty()) {
      Tensor t = load_npy(prompt_npy).to(kInt64).contiguous();
      if (t.dim() == 2) t = t.select(0, 0).contiguous();
      prompt.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    } else {
      std::stringstream ss(prompt_list);
      for (std::string id; std::getline(ss, id, ',');) prompt.push_back(std::stoll(id));
    }
    // The input's sequence dim: fixed at export, or symbolic (any length).
    const graph::Value& input = model.graph().values.at(model.graph().inputs.at(0));
    EMBER_CHECK(input.shape.size() == 2 && input.dtype == kInt64, InvalidArgument, "expected a model taking int64 "
                "tokens [batch, T]; its first input is ", input.dtype, " with ", input.shape.size(), " dims");
    if (!input.shape[1].is_symbolic()) {
      o.context = input.shape[1].size;
      o.fixed_context = true;
    }
    const auto tokens = nn::generate([&](const Tensor& x) { return model.forward({x})[0]; }, prompt, device, o);
    std::printf("prompt:");
    for (size_t i = 0; i < prompt.size(); ++i) std::printf(" %lld", static_cast<long long>(tokens[i]));
    std::printf("\ngenerated:");
    for (size_t i = prompt.size(); i < tokens.size(); ++i) std::printf(" %lld", static_cast<long long>(tokens[i]));
    std::printf("\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "generate: %s\n", e.what());
    return 1;
  }
  return 0;
}

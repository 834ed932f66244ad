// A character-level GPT trained from C++ on the text the project ships
// (examples/data/tiny_text.txt), then made to write: greedily and by top-k sampling.
// Usage: tiny_gpt [--device cpu|cuda|cuda:N|best] [--steps N] [--seed S] [--max-loss L]
// Exits 1 when the final loss over the whole text is above --max-loss (the test's check).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "ember.h"

using namespace ember;

int main(int argc, char** argv) {
  CLI::App app{"Train a character-level GPT on the shipped text and let it write"};
  std::string device_name = "cpu", text_path = std::string(EMBER_DATA_DIR) + "/tiny_text.txt";
  int steps = 500;
  uint64_t seed = 0;
  double max_loss = 1.0;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or best");
  app.add_option("--steps", steps, "training steps (batches of 16 windows)")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "initialisation, batches and sampling");
  app.add_option("--max-loss", max_loss, "fail (exit 1) when the final loss is above this");
  app.add_option("--text", text_path, "the training text");
  CLI11_PARSE(app, argc, argv);
  try {
    const Device device = parse_device(device_name);
    std::ifstream in(text_path);
    EMBER_CHECK(in.good(), Io, "cannot read ", text_path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    // The vocabulary: the text's characters, in byte order.
    std::map<char, int64_t> index;
    for (char c : text) index.emplace(c, 0);
    std::string chars;
    for (auto& [c, i] : index) {
      i = static_cast<int64_t>(chars.size());
      chars.push_back(c);
    }
    std::vector<int64_t> ids;
    for (char c : text) ids.push_back(index[c]);

    nn::GPTConfig config;
    config.vocab_size = static_cast<int64_t>(chars.size());
    config.block_size = 64;
    config.layers = 2;
    config.heads = 4;
    config.width = 64;
    config.dropout = 0;
    manual_seed(seed);
    nn::GPT gpt(config);
    gpt.to(device);
    nn::Adam opt(gpt.parameters(), {.lr = 3e-3, .weight_decay = 0.01, .decoupled_weight_decay = true});
    std::mt19937_64 rng(seed);
    const int64_t T = config.block_size, B = 16, last_start = static_cast<int64_t>(ids.size()) - T - 1;
    // Windows of T characters and the T that follow each by one.
    auto windows = [&](const std::vector<int64_t>& starts) {
      const int64_t n = static_cast<int64_t>(starts.size());
      Tensor x = empty({n, T}, {kInt64, Device::cpu()}), y = empty({n, T}, {kInt64, Device::cpu()});
      for (int64_t b = 0; b < n; ++b)
        for (int64_t t = 0; t < T; ++t) {
          x.data_ptr<int64_t>()[b * T + t] = ids[starts[b] + t];
          y.data_ptr<int64_t>()[b * T + t] = ids[starts[b] + t + 1];
        }
      return std::pair{x.to(device), y.to(device).reshape({-1})};
    };
    auto loss_of = [&](const Tensor& x, const Tensor& y) {
      return nn::cross_entropy(gpt.forward(x).reshape({-1, config.vocab_size}), y);
    };
    // The loss over the whole text (every T-th window), in evaluation mode.
    auto text_loss = [&] {
      NoGradGuard no_grad;
      gpt.eval();
      std::vector<int64_t> starts;
      for (int64_t s = 0; s <= last_start; s += T) starts.push_back(s);
      auto [x, y] = windows(starts);
      const double l = loss_of(x, y).item<double>();
      gpt.train();
      return l;
    };
    const double first = text_loss();
    int64_t weights = 0;
    for (const Tensor& p : gpt.parameters()) weights += p.numel();
    std::printf("%zu characters, %lld distinct; a GPT of %lld weights on %s\n", text.size(),
                static_cast<long long>(chars.size()), static_cast<long long>(weights), device.str().c_str());
    std::uniform_int_distribution<int64_t> start(0, last_start);
    for (int step = 1; step <= steps; ++step) {
      std::vector<int64_t> starts(B);
      for (int64_t& s : starts) s = start(rng);
      auto [x, y] = windows(starts);
      gpt.zero_grad();
      Tensor loss = loss_of(x, y);
      loss.backward();
      opt.step();
      if (step % 100 == 0) std::printf("step %4d: batch loss %.3f\n", step, loss.item<double>());
    }
    const double last = text_loss();
    std::printf("loss over the text: %.3f before training, %.3f after (ln %lld = %.3f)\n", first, last,
                static_cast<long long>(chars.size()), std::log(static_cast<double>(chars.size())));

    gpt.eval();
    const std::string prompt_text = "The keeper";
    std::vector<int64_t> prompt;
    for (char c : prompt_text) prompt.push_back(index.count(c) ? index[c] : 0);
    auto model = [&](const Tensor& tokens) { return gpt.forward(tokens); };
    auto show = [&](const char* how, const nn::GenerateOptions& o) {
      std::string out;
      for (int64_t id : nn::generate(model, prompt, device, o)) out.push_back(chars[static_cast<size_t>(id)]);
      std::printf("--- %s ---\n%s\n", how, out.c_str());
    };
    nn::GenerateOptions greedy;
    greedy.max_new_tokens = 200;
    greedy.context = T;
    show("greedy", greedy);
    nn::GenerateOptions sampled = greedy;
    sampled.top_k = 5;
    sampled.temperature = 0.8;
    sampled.seed = seed;
    show("top-5 sampling, temperature 0.8", sampled);
    if (last > max_loss) {
      std::fprintf(stderr, "tiny_gpt: the final loss %.3f is above %.3f\n", last, max_loss);
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "tiny_gpt: %s\n", e.what());
    return 1;
  }
  return 0;
}

#include "nn/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "ops/creation.h"
#include "runtime/error.h"

namespace ember::nn {

int64_t choose_token(const Tensor& logits, const GenerateOptions& options, std::mt19937_64& rng) {
  EMBER_CHECK(logits.dim() == 1 && logits.numel() > 0, InvalidArgument,
              "[generate] expected one row of logits [vocab], got shape ", shape_str(logits.sizes()));
  const Tensor row = logits.to(Device::cpu()).to(kFloat64).contiguous();
  const double* v = row.data_ptr<double>();
  const int64_t vocab = row.numel();
  if (options.top_k <= 0) return std::max_element(v, v + vocab) - v;  // greedy: the first largest
  EMBER_CHECK(options.temperature > 0, InvalidArgument, "[generate] temperature must be positive, got ",
              options.temperature);
  const int64_t k = std::min(options.top_k, vocab);
  std::vector<int64_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  // Softmax over the k largest, stably (their largest is order[0]).
  std::vector<double> weight(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) weight[i] = std::exp((v[order[i]] - v[order[0]]) / options.temperature);
  std::discrete_distribution<int64_t> pick(weight.begin(), weight.end());
  return order[static_cast<size_t>(pick(rng))];
}

std::vector<int64_t> generate(const LanguageModel& model, const std::vector<int64_t>& prompt, Device device,
                              const GenerateOptions& options) {
  EMBER_CHECK(!prompt.empty(), InvalidArgument, "[generate] the prompt is empty");
  EMBER_CHECK(!options.fixed_context || (options.context > 0 && static_cast<int64_t>(prompt.size()) >= options.context),
              InvalidArgument, "[generate] the model takes exactly ", options.context, " tokens; the prompt has ",
              prompt.size());
  NoGradGuard no_grad;
  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> tokens = prompt;
  for (int64_t n = 0; n < options.max_new_tokens; ++n) {
    const int64_t total = static_cast<int64_t>(tokens.size());
    const int64_t t = options.context > 0 ? std::min(options.context, total) : total;
    Tensor window = empty({1, t}, {kInt64, Device::cpu()});
    std::copy(tokens.end() - t, tokens.end(), window.data_ptr<int64_t>());
    const Tensor logits = model(window.to(device));
    EMBER_CHECK(logits.dim() == 3 && logits.size(0) == 1 && logits.size(1) == t, InvalidArgument,
                "[generate] expected the model's logits as [1, ", t, ", vocab], got ", shape_str(logits.sizes()));
    tokens.push_back(choose_token(logits.select(0, 0).select(0, t - 1), options, rng));
  }
  return tokens;
}

}  // namespace ember::nn

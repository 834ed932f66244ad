#include "nn/generate.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/random.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "ops/sort.h"
#include "runtime/error.h"

namespace ember::nn {

int64_t choose_token(const Tensor& logits, const GenerateOptions& options, std::mt19937_64& rng) {
  EMBER_CHECK(logits.dim() == 1 && logits.numel() > 0, InvalidArgument,
              "[generate] expected one row of logits [vocab], got shape ", shape_str(logits.sizes()));
  if (options.top_k <= 0) return argmax(logits).item<int64_t>();  // greedy: the first largest
  EMBER_CHECK(options.temperature > 0, InvalidArgument, "[generate] temperature must be positive, got ",
              options.temperature);
  // On the logits' device: the k largest (ties in vocabulary order), their softmax at the
  // temperature, one draw; only the chosen token comes back to the host.
  const ValuesIndices top = topk(logits, std::min(options.top_k, logits.numel()));
  const DType acc = logits.dtype() == kFloat64 ? kFloat64 : kFloat32;
  const Tensor probs = softmax(div(top.values.to(acc), options.temperature), 0);
  Generator gen(rng());
  return index_select(top.indices, 0, multinomial(probs, 1, true, &gen)).item<int64_t>();
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

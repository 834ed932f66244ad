// Autoregressive generation from any language model: a function from tokens [1, t] (int64) to
// logits [1, t, vocab] — an nn::GPT, a loaded .ember model, anything. Each new token comes from
// the last position's logits: greedily (the largest), or sampled from the k largest after
// dividing by a temperature. The choice runs where the logits are (topk, softmax and
// multinomial ops); one token per step comes back to the host.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "runtime/tensor.h"

namespace ember::nn {

/// tokens [1, t] int64 → logits [1, t, vocab].
using LanguageModel = std::function<Tensor(const Tensor& tokens)>;

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  /// 0: greedy. k > 0: sample among the k most likely tokens.
  int64_t top_k = 0;
  double temperature = 1.0;
  uint64_t seed = 0;  // the sampler's; the same seed gives the same text
  /// The model sees at most this many of the latest tokens (a GPT's block size); 0: all.
  int64_t context = 0;
  /// The model takes exactly `context` tokens (an export with a fixed sequence length): the
  /// prompt must then hold at least that many.
  bool fixed_context = false;
};

/// The prompt followed by the generated tokens. Throws InvalidArgument for an empty prompt,
/// a prompt shorter than a fixed context, or a model whose output is not [1, t, vocab].
std::vector<int64_t> generate(const LanguageModel& model, const std::vector<int64_t>& prompt, Device device,
                              const GenerateOptions& options = {});

/// The next token from one row of logits [vocab] (any device): greedy or top-k as above.
int64_t choose_token(const Tensor& logits, const GenerateOptions& options, std::mt19937_64& rng);

}  // namespace ember::nn

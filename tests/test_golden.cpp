// Golden fixtures exported from PyTorch (tools/make_model_fixtures.py): ember's outputs and
// parameter gradients for the same inputs and loss match PyTorch's on every device.
#include <algorithm>
#include <filesystem>
#include <random>
#include <set>

#include "ember.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;

namespace {

void check_fixture(const std::string& name, Device device) {
  INFO(name);
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fixtures/models" / name;
  REQUIRE(fs::exists(dir / "model.ember"));
  Model m = load((dir / "model.ember").string(), device);
  TensorList inputs;
  for (size_t k = 0; fs::exists(dir / ("input_" + std::to_string(k) + ".npy")); ++k)
    inputs.push_back(load_npy((dir / ("input_" + std::to_string(k) + ".npy")).string()).to(device));
  TensorList outputs = m.forward(inputs);
  Tensor loss = zeros({}, {kFloat64, device});
  for (size_t k = 0; k < outputs.size(); ++k) {
    Tensor want = load_npy((dir / ("output_" + std::to_string(k) + ".npy")).string());
    // fp32 against PyTorch's fp32 on the CPU: ember's kernels sum in other orders.
    check_close(outputs[k], to_ref(want), kFloat32, 10);
    Tensor o = outputs[k].to(kFloat64);
    loss = add(loss, mean(mul(o, o)));
  }
  loss.backward();
  for (const auto& [pname, p] : m.named_parameters()) {
    const std::string& param = pname;  // clang 14 lambdas cannot capture structured bindings
    INFO(param);
    Tensor want = load_npy((dir / ("grad." + pname + ".npy")).string());
    REQUIRE(p.grad().defined());
    check_close(p.grad(), to_ref(want), kFloat32, 10);
  }
  if (!fs::exists(dir / "train_output_0.npy")) return;
  // Training mode: batch statistics normalise, and the running statistics move as PyTorch's.
  m.train();
  {
    NoGradGuard no_grad;
    check_close(m.forward(inputs)[0], to_ref(load_npy((dir / "train_output_0.npy").string())), kFloat32, 10);
  }
  int checked = 0;
  for (const auto& [bname, b] : m.named_buffers()) {
    const fs::path want = dir / ("train_buffer." + bname + ".npy");
    if (!fs::exists(want)) continue;
    const std::string& buffer = bname;
    INFO(buffer);
    check_close(b, to_ref(load_npy(want.string())), kFloat32, 10);
    ++checked;
  }
  CHECK(checked > 0);
}

}  // namespace

DEVICE_TEST("golden: an MLP exported from PyTorch matches its outputs and gradients") {
  check_fixture("mlp", device);
}

DEVICE_TEST("golden: a model with reshapes, reductions and broadcasting matches PyTorch") {
  check_fixture("shapes", device);
}

DEVICE_TEST("golden: a small CNN (convolutions, batch norm, pooling, a residual add) matches PyTorch") {
  check_fixture("cnn", device);
}

DEVICE_TEST("golden: a tiny GPT (embeddings, causal pre-norm attention, layer norm, tied head) matches PyTorch") {
  check_fixture("transformer", device);
}

DEVICE_TEST("golden: generation from the exported tiny GPT: greedy starts with PyTorch's choice; top-k sampling") {
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fixtures/models/transformer";
  Model m = load((dir / "model.ember").string(), device);
  const Tensor x = load_npy((dir / "input_0.npy").string());
  const Tensor want = load_npy((dir / "output_0.npy").string());  // PyTorch's logits [2, 12, 50]
  std::vector<int64_t> prompt(x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + 12);
  auto model = [&](const Tensor& t) { return m.forward({t})[0]; };
  nn::GenerateOptions o;
  o.max_new_tokens = 4;
  o.context = 12;
  o.fixed_context = true;
  const auto greedy = nn::generate(model, prompt, device, o);
  REQUIRE(greedy.size() == 16);
  CHECK(greedy[12] == argmax(want.select(0, 0).select(0, 11)).item<int64_t>());
  // k = 1 is greedy; a seed gives the same text again; every sample is among the k largest.
  o.top_k = 1;
  CHECK(nn::generate(model, prompt, device, o) == greedy);
  o.top_k = 5;
  o.seed = 9;
  CHECK(nn::generate(model, prompt, device, o) == nn::generate(model, prompt, device, o));
  const Tensor row = want.select(0, 0).select(0, 11);
  std::vector<std::pair<double, int64_t>> ranked;
  for (int64_t i = 0; i < row.numel(); ++i) ranked.emplace_back(-row.data_ptr<float>()[i], i);
  std::sort(ranked.begin(), ranked.end());
  std::set<int64_t> top5;
  for (int i = 0; i < 5; ++i) top5.insert(ranked[static_cast<size_t>(i)].second);
  std::mt19937_64 rng(1);
  o.temperature = 100;  // nearly uniform over the five: every one of them should turn up
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(nn::choose_token(row.to(device), o, rng));
  CHECK(std::includes(top5.begin(), top5.end(), seen.begin(), seen.end()));
  CHECK(seen.size() == 5);
  o.fixed_context = true;
  check_error([&] { nn::generate(model, {1, 2, 3}, device, o); }, ErrorCode::InvalidArgument,
              "takes exactly 12 tokens; the prompt has 3");
}

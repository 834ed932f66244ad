// Checkpoints: round trips of every dtype, atomic replacement, damaged files, and a resumed
// training run that continues bit-identically.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ember_ckpt_" + name)).string();
}

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = a.detach().contiguous().to(Device::cpu()), y = b.detach().contiguous().to(Device::cpu());
  return x.sizes() == y.sizes() && x.dtype() == y.dtype() &&
         (x.nbytes() == 0 || std::memcmp(x.data(), y.data(), x.nbytes()) == 0);  // empty: no data pointer
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

}  // namespace

TEST_CASE("checkpoint: tensors of every dtype round-trip exactly") {
  nn::TensorMap saved;
  manual_seed(4);
  for (DType dt : kEveryType) saved.emplace(std::string("t.") + dtype_name(dt), (randn({3, 5}) * 10).to(dt));
  saved.emplace("scalar", scalar_tensor(int64_t{42}));
  saved.emplace("empty", zeros({0, 4}));
  saved.emplace("strided", arange(0, 12, 1, {kFloat64}).reshape({3, 4}).transpose(0, 1));
  const std::string path = temp_path("roundtrip.ckpt");
  nn::save_tensors(path, saved);
  nn::TensorMap loaded = nn::load_tensors(path);
  CHECK(loaded.size() == saved.size());
  for (auto& [name, t] : saved) {
    const std::string& key = name;  // clang 14 lambdas cannot capture structured bindings
    INFO(key);
    REQUIRE(loaded.count(name));
    CHECK(same_bits(loaded[name], t));
  }
  // Saving again replaces the file and leaves no temporary behind.
  nn::save_tensors(path, {{"only", ones({2})}});
  CHECK(nn::load_tensors(path).size() == 1);
  for (auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    CHECK(entry.path().filename().string().find("ember_ckpt_roundtrip.ckpt.tmp") == std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: a failed save leaves the previous file intact; damaged files are refused") {
  const std::string path = temp_path("damage.ckpt");
  nn::save_tensors(path, {{"w", arange(0, 100, 1, {kFloat32})}});
  const std::string good = read_file(path);
  check_error([] { nn::save_tensors("/nonexistent-dir/x.ckpt", {{"w", ones({2})}}); }, ErrorCode::Io, "cannot create");
  CHECK(read_file(path) == good);

  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  write_file(path, flipped);
  check_error([&] { nn::load_tensors(path); }, ErrorCode::InvalidModel, "checksum mismatch");
  // Every truncation is a clean error.
  for (size_t cut : {size_t{0}, size_t{5}, size_t{20}, good.size() / 2, good.size() - 1}) {
    write_file(path, good.substr(0, cut));
    INFO("cut at ", cut);
    check_error([&] { nn::load_tensors(path); }, ErrorCode::InvalidModel, path);
  }
  write_file(path, "not a checkpoint at all, just some text");
  check_error([&] { nn::load_tensors(path); }, ErrorCode::InvalidModel, "bad magic");
  check_error([] { nn::load_tensors("/nonexistent/x.ckpt"); }, ErrorCode::Io, "cannot open");
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: a resumed run continues bit-identically on the CPU") {
  auto make = [] {
    return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(8, 16), std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(16, 3)});
  };
  manual_seed(1);
  Tensor x = randn({40, 8});
  Tensor y = randint(0, 3, {40}, {kInt64});
  nn::AdamOptions o;
  o.lr = 1e-2;
  o.amsgrad = true;
  // One step: a shuffled batch of 8 drawn from the default generator, then an update.
  auto train = [&](nn::Module& model, nn::Optimizer& opt) {
    Tensor idx = randperm(40, {kInt64}).slice(0, 0, 8);
    Tensor loss = nn::cross_entropy(model(index_select(x, 0, idx)), index_select(y, 0, idx));
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  const std::string path = temp_path("resume.ckpt");

  manual_seed(7);
  auto a = make();
  nn::Adam opt_a(a->parameters(), o);
  for (int s = 0; s < 5; ++s) train(*a, opt_a);
  nn::save_checkpoint(path, *a, opt_a, 5);
  for (int s = 5; s < 10; ++s) train(*a, opt_a);

  manual_seed(123);  // different initial weights and generator state
  auto b = make();
  nn::Adam opt_b(b->parameters(), o);
  CHECK(nn::load_checkpoint(path, *b, opt_b) == 5);
  for (int s = 5; s < 10; ++s) train(*b, opt_b);

  auto pa = a->named_parameters(), pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(same_bits(pa[i].second, pb[i].second));
  }
  std::remove(path.c_str());
}

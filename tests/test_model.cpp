// Model files: the writer and the verified reader, bad files rejected cleanly, the executor
// (inputs checked, intermediates freed, autograd through a loaded model), save and reload,
// safetensors, and the committed golden fixtures exported from PyTorch.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ember.h"
#include "serialization/checksum.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;

namespace {

// y = softmax(relu(x @ W1^T + b1) @ W2^T, dim 1), x [batch, 4]; also returns sum(x, dim 1).
struct TinyModel {
  graph::Graph g;
  std::vector<Tensor> data;
};

TinyModel tiny_model() {
  using graph::Value, graph::ValueKind, graph::Dim;
  TinyModel m;
  Dim batch{-1, "batch"};
  m.g.values = {
      {"x", kFloat32, {batch, {4, ""}}, ValueKind::Input, false},
      {"fc1.weight", kFloat32, {{3, ""}, {4, ""}}, ValueKind::Parameter, true},
      {"fc1.bias", kFloat32, {{3, ""}}, ValueKind::Parameter, true},
      {"fc2.weight", kFloat32, {{2, ""}, {3, ""}}, ValueKind::Parameter, true},
      {"h", kFloat32, {batch, {3, ""}}, ValueKind::Intermediate, false},
      {"r", kFloat32, {batch, {3, ""}}, ValueKind::Intermediate, false},
      {"logits", kFloat32, {batch, {2, ""}}, ValueKind::Intermediate, false},
      {"probs", kFloat32, {batch, {2, ""}}, ValueKind::Output, false},
      {"row_sum", kFloat32, {batch}, ValueKind::Output, false},
  };
  auto node = [](const char* op, std::vector<int32_t> in, std::vector<uint32_t> out, graph::Attributes a = {}) {
    graph::Node n;
    n.op = op;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    n.attributes = std::move(a);
    n.name = op;
    return n;
  };
  graph::Attributes softmax_dim, sum_dims;
  softmax_dim.values["dim"] = int64_t{1};
  sum_dims.values["dims"] = std::vector<int64_t>{1};
  m.g.nodes = {node("linear", {0, 1, 2}, {4}), node("relu", {4}, {5}), node("linear", {5, 3, -1}, {6}),
               node("softmax", {6}, {7}, softmax_dim), node("sum", {0}, {8}, sum_dims)};
  m.g.inputs = {0};
  m.g.outputs = {7, 8};
  m.g.producer = "test";
  m.g.metadata["note"] = "tiny";
  manual_seed(3);
  m.data.resize(m.g.values.size());
  m.data[1] = randn({3, 4});
  m.data[2] = randn({3});
  m.data[3] = randn({2, 3});
  return m;
}

fs::path temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "ember_test_model";
  fs::create_directories(dir);
  return dir / name;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// The same computation with eager ops, for reference.
std::pair<Tensor, Tensor> eager(const TinyModel& m, const Tensor& x) {
  Tensor h = relu(linear(x, m.data[1].to(x.device()), m.data[2].to(x.device())));
  Tensor logits = linear(h, m.data[3].to(x.device()));
  return {nn::softmax(logits, 1), sum(x, {1})};
}

ModelFile read_bytes(const std::string& bytes) { return read_model(bytes_in_memory(bytes), "bytes"); }

}  // namespace

DEVICE_TEST("model: a written file loads, runs like the eager ops, and keeps PyTorch names") {
  TinyModel tm = tiny_model();
  const fs::path path = temp_path("tiny.ember");
  write_model_file(path.string(), tm.g, tm.data);
  Model m = load(path.string(), device);
  CHECK(m.device() == device);
  CHECK(m.graph().producer == "test");
  CHECK(m.graph().metadata.at("note") == "tiny");
  auto names = m.named_parameters();
  REQUIRE(names.size() == 3);
  CHECK(names[0].first == "fc1.weight");
  CHECK(names[2].first == "fc2.weight");
  CHECK(m.parameter_count() == 12 + 3 + 6);
  Tensor x = randn({5, 4}, {kFloat32, device});
  TensorList y = m.forward({x});
  auto [probs, row_sum] = eager(tm, x);
  REQUIRE(y.size() == 2);
  check_close(y[0], to_ref(probs), kFloat32);
  check_close(y[1], to_ref(row_sum), kFloat32);
  // The symbolic batch takes any size.
  CHECK(m.forward({randn({1, 4}, {kFloat32, device})})[0].sizes() == Shape{1, 2});
  // Bad inputs are named.
  check_error([&] { m.forward({randn({5, 3}, {kFloat32, device})}); }, ErrorCode::ShapeMismatch,
              "input 0 (\"x\") should have shape [batch, 4], got [5, 3]");
  check_error([&] { m.forward({randn({5, 4}, {kFloat64, device})}); }, ErrorCode::DTypeMismatch, "should be float32");
  check_error([&] { m.forward({x, x}); }, ErrorCode::InvalidArgument, "takes 1 inputs, got 2");
  if (device.is_cuda())
    check_error([&] { m.forward({randn({5, 4})}); }, ErrorCode::DeviceMismatch, "is on cpu, the model on cuda:0");
}

DEVICE_TEST("model: a loaded model fine-tunes, saves, and reloads with the new weights") {
  TinyModel tm = tiny_model();
  const fs::path path = temp_path("tune.ember"), saved = temp_path("tuned.ember");
  write_model_file(path.string(), tm.g, tm.data);
  Model m = load(path.string(), device);
  REQUIRE(m.parameters().size() == 3);
  for (const Tensor& p : m.parameters()) CHECK(p.requires_grad());
  // Gradients through the executor equal those of the eager graph.
  Tensor x = randn({6, 4}, {kFloat32, device});
  Tensor loss = sum(mul(m.forward({x})[0], m.forward({x})[0]));
  loss.backward();
  Tensor w1 = tm.data[1].to(device), b1 = tm.data[2].to(device), w2 = tm.data[3].to(device);
  for (Tensor* t : {&w1, &b1, &w2}) t->requires_grad_();
  Tensor p = nn::softmax(linear(relu(linear(x, w1, b1)), w2), 1);
  sum(mul(p, p)).backward();
  check_close(m.parameters()[0].grad(), to_ref(w1.grad()), kFloat32);
  check_close(m.parameters()[2].grad(), to_ref(w2.grad()), kFloat32);
  // A few SGD steps lower the loss, as on any module.
  Tensor target = from_vector<int64_t>({0, 1, 0, 1, 1, 0}, {6}, {kInt64, device});
  nn::SGD opt(m.parameters(), {.lr = 0.5});
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    Tensor l = nn::nll_loss(log(m.forward({x})[0]), target);
    l.backward();
    opt.step();
    (step == 0 ? first : last) = l.item<double>();
  }
  CHECK(last < first);
  m.save(saved.string());
  Model back = load(saved.string(), device);
  Tensor y0 = m.forward({x})[0], y1 = back.forward({x})[0];
  check_close(y1, to_ref(y0), kFloat32);
  // The original file is untouched: fine-tuning on the CPU wrote to private pages only.
  Model original = load(path.string(), Device::cpu());
  check_close(original.named_parameters()[0].second, to_ref(tm.data[1]), kFloat32);
}

DEVICE_TEST("model: weights larger than the upload's staging buffers arrive intact") {
  // Three weights of 8, 40 and 12 MB: pieces split across both 16 MB pinned halves.
  using graph::Value, graph::ValueKind, graph::Dim;
  graph::Graph g;
  g.values = {{"x", kFloat32, {{2, ""}, {2048, ""}}, ValueKind::Input, false},
              {"a", kFloat32, {{1024, ""}, {2048, ""}}, ValueKind::Parameter, true},
              {"b", kFloat32, {{5000, ""}, {2048, ""}}, ValueKind::Parameter, true},
              {"c", kFloat32, {{1500, ""}, {2048, ""}}, ValueKind::Buffer, false},
              {"y", kFloat32, {{2, ""}, {7524, ""}}, ValueKind::Output, false}};
  graph::Node n;
  n.op = "cat";
  graph::Node la, lb, lc;
  la.op = lb.op = lc.op = "linear";
  g.values.insert(g.values.end() - 1, {{"ya", kFloat32, {{2, ""}, {1024, ""}}, ValueKind::Intermediate, false},
                                       {"yb", kFloat32, {{2, ""}, {5000, ""}}, ValueKind::Intermediate, false},
                                       {"yc", kFloat32, {{2, ""}, {1500, ""}}, ValueKind::Intermediate, false}});
  la.inputs = {0, 1};
  la.outputs = {4};
  lb.inputs = {0, 2};
  lb.outputs = {5};
  lc.inputs = {0, 3};
  lc.outputs = {6};
  n.inputs = {4, 5, 6};
  n.outputs = {7};
  n.attributes.values["dim"] = int64_t{1};
  g.nodes = {la, lb, lc, n};
  g.inputs = {0};
  g.outputs = {7};
  manual_seed(5);
  std::vector<Tensor> data(g.values.size());
  data[1] = randn({1024, 2048});
  data[2] = randn({5000, 2048});
  data[3] = randn({1500, 2048});
  const fs::path path = temp_path("big.ember");
  write_model_file(path.string(), g, data);
  Model m = load(path.string(), device);
  for (const auto& [name, p] : m.named_parameters()) CHECK(p.device() == device);
  CHECK(m.named_buffers()[0].second.device() == device);
  Tensor x = randn({2, 2048});
  Tensor want = cat({linear(x, data[1]), linear(x, data[2]), linear(x, data[3])}, 1);
  // Sums of 2048 products of magnitude ~45: the GPU's GEMM rounds differently from the CPU's,
  // so an absolute bound; the weights themselves are compared bit for bit below.
  Tensor got = m.forward({x.to(device)})[0].to(Device::cpu());
  CHECK(amax(abs(sub(got.to(kFloat64), want.to(kFloat64)))).item<double>() < 1e-3);
  // Bit-exact weights.
  CHECK(all(eq(m.named_parameters()[1].second.to(Device::cpu()), data[2])).item<bool>());
  CHECK(all(eq(m.named_buffers()[0].second.to(Device::cpu()), data[3])).item<bool>());
}

TEST_CASE("model: safetensors with PyTorch's names and byte ranges") {
  TinyModel tm = tiny_model();
  const fs::path path = temp_path("st.ember"), st = temp_path("tiny.safetensors");
  write_model_file(path.string(), tm.g, tm.data);
  Model m = load(path.string());
  m.save_safetensors(st.string());
  std::string bytes = file_bytes(st);
  REQUIRE(bytes.size() > 8);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  std::string header = bytes.substr(8, n);
  CHECK(header.find("\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}") != std::string::npos);
  CHECK(header.find("\"fc2.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[60,84]}") != std::string::npos);
  CHECK(bytes.size() == 8 + n + 84);
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  CHECK(first == tm.data[1].reshape({-1}).select(0, 0).item<float>());
}

TEST_CASE("model: bad files are InvalidModel errors naming what is wrong") {
  TinyModel tm = tiny_model();
  const std::string good = model_file_bytes(tm.g, tm.data);
  CHECK_NOTHROW(read_bytes(good));
  check_error([&] { read_bytes(good.substr(0, 10)); }, ErrorCode::InvalidModel, "too small for a model");
  check_error([&] { read_bytes(good.substr(0, good.size() - 1)); }, ErrorCode::InvalidModel, "truncated");
  std::string wrong_id = good;
  wrong_id[8] = 'X';
  check_error([&] { read_bytes(wrong_id); }, ErrorCode::InvalidModel, "identifier at byte 8 is not \"EMBR\"");
  std::string flipped = good;
  flipped[flipped.size() - 16 - 8] ^= 0x10;  // inside the last weight
  check_error([&] { read_bytes(flipped); }, ErrorCode::InvalidModel, "checksum mismatch");

  auto rejects = [&](graph::Graph g, std::vector<Tensor> data, const std::string& text) {
    std::string bytes = model_file_bytes(g, data, /*check=*/false);
    check_error([&] { read_bytes(bytes); }, ErrorCode::InvalidModel, text);
  };
  {
    graph::Graph g = tm.g;
    g.nodes[1].inputs = {99};
    rejects(g, tm.data, "node 1 (relu \"relu\"): input 0 refers to value 99, out of range (9 values)");
  }
  {
    graph::Graph g = tm.g;  // an absent input where the operator needs one
    g.nodes[1].inputs = {-1};
    rejects(g, tm.data, "input 0 is absent (-1), but this operator requires it");
  }
  {
    graph::Graph g = tm.g;
    g.nodes[1].op = "frobnicate";
    rejects(g, tm.data, "unknown operator \"frobnicate\"");
  }
  {
    graph::Graph g = tm.g;
    g.nodes[1].inputs = {0, 1};
    rejects(g, tm.data, "relu \"relu\"): 2 inputs, expected 1");
  }
  {
    graph::Graph g = tm.g;
    g.nodes[3].attributes.values["dim"] = std::string("one");
    rejects(g, tm.data, "attribute \"dim\" has type string");
  }
  {
    graph::Graph g = tm.g;
    g.nodes[3].attributes.values.erase("dim");
    rejects(g, tm.data, "missing attribute \"dim\"");
  }
  {
    graph::Graph g = tm.g;  // a shape whose byte count overflows 64 bits
    g.values[1].shape = {{INT64_MAX, ""}, {4, ""}};
    rejects(g, tm.data, "\"fc1.weight\")'s shape overflows");
  }
  {
    graph::Graph g = tm.g;  // a shape that does not match the blob
    g.values[1].shape = {{30, ""}, {4, ""}};
    rejects(g, tm.data, "holds 48 bytes, but its shape and dtype need 480");
  }
  {
    graph::Graph g = tm.g;
    g.values[2].shape = {{-5, ""}};
    rejects(g, tm.data, "dim 0 of size -5");
  }
  {
    graph::Graph g = tm.g;
    g.outputs = {7, 100};
    rejects(g, tm.data, "graph output id 100 is out of range");
  }
  {
    graph::Graph g = tm.g;  // a value used before it is computed
    std::swap(g.nodes[0], g.nodes[1]);
    rejects(g, tm.data, "is used before any node produces it");
  }
}

TEST_CASE("model: blobs past the data segment and bad dtype codes are refused") {
  TinyModel tm = tiny_model();
  std::string bytes = model_file_bytes(tm.g, tm.data);
  // Patch fc2.weight's blob offset (a little-endian u64 of value 128 in the flatbuffer) past
  // the end, then fix the checksum so the semantic check is what refuses it.
  const uint64_t old_offset = 128, old_size = 24;
  std::string pattern(16, '\0');
  std::memcpy(pattern.data(), &old_offset, 8);
  std::memcpy(pattern.data() + 8, &old_size, 8);
  size_t at = bytes.find(pattern);
  REQUIRE(at != std::string::npos);
  const uint64_t far = 1 << 20;
  std::memcpy(bytes.data() + at, &far, 8);
  const uint64_t sum = content_checksum(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size() - 16);
  std::memcpy(bytes.data() + bytes.size() - 16, &sum, 8);
  check_error([&] { read_bytes(bytes); }, ErrorCode::InvalidModel,
              "\"fc2.weight\")'s data (24 bytes at offset 1048576) reaches past the end of the 152-byte data segment");
}

TEST_CASE("model: the chunked checksum is the same streamed or in parallel") {
  std::string bytes(3 * kChecksumChunk + 12345, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  ChecksumStream stream;
  for (size_t at = 0; at < bytes.size(); at += 777777) stream.update(p + at, std::min<size_t>(777777, bytes.size() - at));
  const uint64_t parallel = content_checksum(p, bytes.size());
  CHECK(stream.digest() == parallel);
  // The definition: XXH3 of the chunks' digests.
  std::vector<uint64_t> digests;
  for (size_t at = 0; at < bytes.size(); at += kChecksumChunk)
    digests.push_back(XXH3_64bits(p + at, std::min(kChecksumChunk, bytes.size() - at)));
  CHECK(parallel == XXH3_64bits(digests.data(), digests.size() * 8));
  bytes[2 * kChecksumChunk + 5] ^= 1;
  CHECK(content_checksum(p, bytes.size()) != parallel);
}

TEST_CASE("model: every truncation and every flipped byte of a file is refused cleanly") {
  TinyModel tm = tiny_model();
  const std::string good = model_file_bytes(tm.g, tm.data);
  // The flatbuffer and the start of the data segment, where parsing happens; the checksum
  // covers the rest. Never a crash: an InvalidModel error or (never here) a valid model.
  const size_t fb_end = std::min<size_t>(good.size(), 4 + *reinterpret_cast<const uint32_t*>(good.data()) + 64);
  size_t refused = 0;
  for (size_t cut = 0; cut < good.size(); cut += (cut < fb_end ? 1 : 97)) {
    try {
      read_bytes(good.substr(0, cut));
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidModel);
      ++refused;
    }
  }
  for (size_t i = 0; i < fb_end; ++i) {
    std::string bad = good;
    bad[i] ^= 0x5a;
    try {
      read_bytes(bad);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidModel);
      ++refused;
    }
  }
  CHECK(refused > fb_end);
}

#include "tools/model_commands.h"

#include <cstdio>
#include <map>

#include "ember.h"

namespace ember::tools {

namespace {

std::string shape_of(const graph::Value& v) {
  std::string s = "[";
  for (size_t d = 0; d < v.shape.size(); ++d)
    s.append(d ? ", " : "").append(v.shape[d].is_symbolic() ? v.shape[d].symbol : std::to_string(v.shape[d].size));
  return s + "]";
}

}  // namespace

int model_info(const std::string& path) {
  ModelFile f = read_model_file(path);  // verifies everything, checksum included
  const graph::Graph& g = f.graph;
  std::printf("%s: ember model, format %u.%u, %llu bytes, checksum %016llx (verified)\n", path.c_str(),
              f.version_major, f.version_minor, static_cast<unsigned long long>(f.file_size),
              static_cast<unsigned long long>(f.checksum));
  std::printf("producer: %s %s (torch %s)\n", g.producer.c_str(), g.producer_version.c_str(), g.torch_version.c_str());
  for (const auto& [k, v] : g.metadata) std::printf("metadata: %s = %s\n", k.c_str(), v.c_str());
  for (uint32_t id : g.inputs)
    std::printf("input  %-20s %-8s %s\n", g.values[id].name.c_str(), dtype_name(g.values[id].dtype), shape_of(g.values[id]).c_str());
  for (uint32_t id : g.outputs)
    std::printf("output %-20s %-8s %s\n", g.values[id].name.c_str(), dtype_name(g.values[id].dtype), shape_of(g.values[id]).c_str());
  int64_t params = 0, param_bytes = 0, trainable = 0, buffers = 0, buffer_bytes = 0;
  for (size_t id = 0; id < g.values.size(); ++id) {
    const Tensor& t = f.data[id];
    if (!t.defined()) continue;
    if (g.values[id].kind == graph::ValueKind::Parameter) {
      params += t.numel();
      param_bytes += static_cast<int64_t>(t.nbytes());
      if (g.values[id].requires_grad) trainable += t.numel();
    } else {
      buffers += t.numel();
      buffer_bytes += static_cast<int64_t>(t.nbytes());
    }
  }
  std::printf("parameters: %lld (%lld bytes), %lld trainable; buffers and constants: %lld (%lld bytes)\n",
              static_cast<long long>(params), static_cast<long long>(param_bytes), static_cast<long long>(trainable),
              static_cast<long long>(buffers), static_cast<long long>(buffer_bytes));
  std::map<std::string, int> histogram;
  for (const graph::Node& n : g.nodes) ++histogram[n.op];
  std::printf("nodes: %zu\n", g.nodes.size());
  for (const auto& [op, count] : histogram) std::printf("  %-14s %d\n", op.c_str(), count);
  return 0;
}

int model_validate(const std::string& path) {
  ModelFile f = read_model_file(path);
  std::printf("%s: ok (%zu values, %zu nodes, checksum %016llx)\n", path.c_str(), f.graph.values.size(),
              f.graph.nodes.size(), static_cast<unsigned long long>(f.checksum));
  return 0;
}

TensorList random_inputs(const graph::Graph& g, Device device, int64_t batch) {
  manual_seed(0);
  TensorList args;
  for (uint32_t id : g.inputs) {
    const graph::Value& v = g.values[id];
    Shape shape;
    for (const graph::Dim& d : v.shape) shape.push_back(d.is_symbolic() ? batch : d.size);
    args.push_back(is_floating(v.dtype) ? randn(shape, {v.dtype, device}) : zeros(shape, {v.dtype, device}));
  }
  return args;
}

int model_run(const std::string& path, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
              const std::string& device_name, int64_t batch) {
  const Device device = parse_device(device_name);
  Model m = load(path, device, {.trainable = false});
  const graph::Graph& g = m.graph();
  EMBER_CHECK(inputs.empty() || inputs.size() == g.inputs.size(), InvalidArgument, "the model takes ",
              g.inputs.size(), " inputs, got ", inputs.size(), " --input files");
  EMBER_CHECK(outputs.empty() || outputs.size() == g.outputs.size(), InvalidArgument, "the model has ",
              g.outputs.size(), " outputs, got ", outputs.size(), " --output files");
  TensorList args;
  if (inputs.empty()) {
    args = random_inputs(g, device, batch);
    for (size_t i = 0; i < args.size(); ++i)
      std::printf("input  %s: random %s %s\n", g.values[g.inputs[i]].name.c_str(), dtype_name(args[i].dtype()),
                  shape_str(args[i].sizes()).c_str());
  } else {
    for (const std::string& file : inputs) args.push_back(load_npy(file).to(device));
  }
  TensorList ys;
  {
    NoGradGuard no_grad;
    ys = m.forward(args);
  }
  for (size_t i = 0; i < ys.size(); ++i) {
    const std::string& name = g.values[g.outputs[i]].name;
    if (!outputs.empty()) {
      save_npy(outputs[i], ys[i]);
      std::printf("output %s: %s %s -> %s\n", name.c_str(), dtype_name(ys[i].dtype()), shape_str(ys[i].sizes()).c_str(),
                  outputs[i].c_str());
    } else {
      Tensor y = ys[i].to(Device::cpu()).to(kFloat64);
      std::printf("output %s: %s %s, mean %.6g, min %.6g, max %.6g\n", name.c_str(), dtype_name(ys[i].dtype()),
                  shape_str(ys[i].sizes()).c_str(), mean(y).item<double>(), amin(y).item<double>(), amax(y).item<double>());
    }
  }
  return 0;
}

int model_finetune(const std::string& path, const std::vector<std::string>& inputs, const std::string& target,
                   const std::string& device_name, int steps, double lr, double momentum, const std::string& output,
                   bool class_last) {
  const Device device = parse_device(device_name);
  Model m = load(path, device);
  EMBER_CHECK(inputs.size() == m.graph().inputs.size(), InvalidArgument, "the model takes ", m.graph().inputs.size(),
              " inputs, got ", inputs.size(), " --input files");
  TensorList args;
  for (const std::string& f : inputs) args.push_back(load_npy(f).to(device));
  Tensor y = load_npy(target).to(device);
  if (class_last) y = y.reshape({-1});
  m.train();
  nn::SGD opt(m.parameters(), {.lr = lr, .momentum = momentum});
  for (int step = 0; step < steps; ++step) {
    Tensor out = m.forward(args)[0];
    if (class_last) out = out.reshape({-1, out.size(-1)});
    Tensor loss = nn::cross_entropy(out, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    std::printf("step %d loss %.9g\n", step, loss.item<double>());
  }
  if (!output.empty()) m.save(output);
  return 0;
}

}  // namespace ember::tools

#include "model/model.h"

#include "autograd/grad_mode.h"
#include "model/upload.h"
#include "runtime/error.h"
#include "serialization/model_file.h"
#include "serialization/safetensors.h"

namespace ember {

Model Model::load(const std::string& path, Device device, const LoadOptions& options) {
  ModelFile file = read_model_file(path);
  Model m;
  m.graph_ = std::make_shared<graph::Graph>(std::move(file.graph));
  m.executor_ = std::make_shared<graph::Executor>(*m.graph_);
  m.stored_ = std::move(file.data);
  m.checksum_ = file.checksum;
  m.device_ = Device::cpu();
  m.to(device);
  for (size_t id = 0; id < m.stored_.size(); ++id) {
    const graph::Value& v = m.graph_->values[id];
    if (v.kind == graph::ValueKind::Parameter && v.requires_grad && options.trainable && is_floating(v.dtype))
      m.stored_[id].requires_grad_();
  }
  return m;
}

namespace {

bool records_autograd(const TensorList& inputs, const std::vector<Tensor>& stored) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  for (const Tensor& t : stored)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

}  // namespace

TensorList Model::forward(const TensorList& inputs) const {
  if (!training_ && !records_autograd(inputs, stored_)) return inference_plan()->run(inputs);
  return executor_->run(inputs, stored_, {training_, device_});
}

std::shared_ptr<InferencePlan> Model::inference_plan() const {
  std::lock_guard<std::mutex> lock(inference_->mutex);
  if (!inference_->plan || !inference_->plan->current(stored_))
    inference_->plan = std::make_shared<InferencePlan>(*graph_, stored_, device_, inference_->options);
  return inference_->plan;
}

void Model::set_inference_options(const InferenceOptions& options) {
  EMBER_CHECK(!options.dtype || *options.dtype == kFloat16 || *options.dtype == kBFloat16, InvalidArgument,
              "[set_inference_options] dtype: float16 or bfloat16 (or none, as exported), got ", *options.dtype);
  auto fresh = std::make_shared<InferenceState>();
  fresh->options = options;
  inference_ = std::move(fresh);
}

InferenceStats Model::inference_stats() const {
  std::lock_guard<std::mutex> lock(inference_->mutex);
  return inference_->plan ? inference_->plan->stats() : InferenceStats{};
}

std::vector<std::pair<std::string, Tensor>> Model::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t id = 0; id < stored_.size(); ++id)
    if (graph_->values[id].kind == graph::ValueKind::Parameter) out.emplace_back(graph_->values[id].name, stored_[id]);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Model::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t id = 0; id < stored_.size(); ++id)
    if (graph_->values[id].kind == graph::ValueKind::Buffer) out.emplace_back(graph_->values[id].name, stored_[id]);
  return out;
}

std::vector<Tensor> Model::parameters() const {
  std::vector<Tensor> out;
  for (const auto& [name, t] : named_parameters())
    if (t.requires_grad()) out.push_back(t);
  return out;
}

void Model::to(Device device) {
  if (device == device_) return;
  NoGradGuard no_grad;
  std::vector<bool> requires_grad(stored_.size());
  for (size_t id = 0; id < stored_.size(); ++id) requires_grad[id] = stored_[id].defined() && stored_[id].requires_grad();
  // Moved into a copy, swapped in only when every weight has arrived: a failure (out of memory)
  // leaves the model as it was.
  std::vector<Tensor> moved = stored_;
  if (device_.is_cpu() && device.is_cuda()) {
    upload_to_cuda(moved, device);  // one transfer per weight, staged and overlapped
  } else {
    for (Tensor& t : moved)
      if (t.defined()) t = t.to(device);  // one copy per weight
  }
  for (size_t id = 0; id < moved.size(); ++id)
    if (requires_grad[id]) moved[id].requires_grad_();
  stored_ = std::move(moved);
  device_ = device;
  set_inference_options(inference_->options);  // a plan for the new device when next needed
}

void Model::save(const std::string& path) const {
  graph::Graph g = *graph_;
  // The file records which parameters fine-tuning updates.
  for (size_t id = 0; id < stored_.size(); ++id)
    if (g.values[id].kind == graph::ValueKind::Parameter && stored_[id].defined())
      g.values[id].requires_grad = g.values[id].requires_grad || stored_[id].requires_grad();
  write_model_file(path, g, stored_);
}

void Model::save_safetensors(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors = named_parameters();
  for (auto& b : named_buffers()) tensors.push_back(std::move(b));
  ember::save_safetensors(path, tensors, {{"format", "pt"}});
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

int64_t Model::parameter_bytes() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += static_cast<int64_t>(t.nbytes());
  return n;
}

}  // namespace ember

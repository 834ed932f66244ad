#include "nn/graph_step.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <vector>

#include "nn/fused_step.h"
#include "ops/creation.h"
#include "ops/copy.h"
#include "runtime/cuda/cuda.h"
#include "runtime/error.h"

namespace ember::nn {

struct GraphStep::Captured {
  TensorList inputs;  // the graph reads the batch here
  Tensor loss;        // and writes the loss here
  std::vector<std::pair<Tensor, Tensor>> grads;  // (parameter, the gradient tensor the graph fills)
  std::unique_ptr<fused::GraphedArgs> args;
  std::optional<cuda::Graph> graph;
  std::optional<cuda::Event> done;  // recorded after each replay

  ~Captured() {
    // The graph's buffers are freed with it: let its last replay finish first.
    try {
      if (done) done->synchronize();
    } catch (...) {
    }
  }
};

namespace {

std::string signature_of(const TensorList& inputs) {
  std::ostringstream key;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      key << "none;";
      continue;
    }
    key << t.device() << ' ' << t.dtype();
    for (int64_t d : t.sizes()) key << ' ' << d;
    key << ';';
  }
  return key.str();
}

}  // namespace

GraphStep::GraphStep(Optimizer& optimizer, LossFn loss_fn, GraphStepOptions options)
    : optimizer_(optimizer), loss_fn_(std::move(loss_fn)), options_(options) {
  EMBER_CHECK(loss_fn_ != nullptr, InvalidArgument, "[GraphStep] expected a loss function");
  EMBER_CHECK(options_.warmup_steps >= 1, InvalidArgument,
              "[GraphStep] expected at least 1 warm-up step (the optimizer's state must exist), got ",
              options_.warmup_steps);
  EMBER_CHECK(options_.max_graphs >= 1, InvalidArgument, "[GraphStep] expected max_graphs >= 1");
}

GraphStep::~GraphStep() = default;

Tensor GraphStep::step(const TensorList& inputs) {
  Signature& s = signatures_[signature_of(inputs)];
  if (s.captured) {
    if (std::optional<Tensor> loss = replay(*s.captured, inputs)) return *loss;
    // The optimizer's update no longer matches the captured one (another set of parameters has
    // gradients): this signature runs eagerly from now on. Nothing was launched or committed.
    s.captured.reset();
    s.uncapturable = true;
    ++s.eager_steps;
    return eager_step(inputs);
  }
  if (!options_.cuda_graphs || s.uncapturable || s.eager_steps < options_.warmup_steps) {
    ++s.eager_steps;
    const Tensor loss = eager_step(inputs);
    s.loss_shape = loss.sizes();
    s.loss_dtype = loss.dtype();
    return loss;
  }
  size_t kept = 0;
  Signature* oldest = nullptr;
  for (auto& [key, other] : signatures_) {
    if (!other.captured) continue;
    ++kept;
    if (!oldest || other.order < oldest->order) oldest = &other;
  }
  if (kept >= options_.max_graphs && oldest) {
    oldest->captured.reset();
    oldest->eager_steps = 0;  // captured again after its warm-up if it comes back
  }
  return capture_and_run(s, inputs);
}

Tensor GraphStep::eager_step(const TensorList& inputs) {
  optimizer_.zero_grad();
  const Tensor loss = loss_fn_(inputs);
  loss.backward();
  optimizer_.step();
  ++stats_.eager_steps;
  return loss.detach();
}

Tensor GraphStep::capture_and_run(Signature& s, const TensorList& inputs) {
  const std::vector<Tensor>& params = optimizer_.params();
  auto give_up = [&](const std::string& why) {
    s.uncapturable = true;
    stats_.capture_failure = why;
    ++s.eager_steps;
    return eager_step(inputs);
  };
  // The last eager step left every gradient and the optimizer's state in place.
  if (!fused::applies(params))
    return give_up(
        "[GraphStep] not captured: the parameters with gradients are not all contiguous float32 tensors on one "
        "CUDA device, so the optimizer's update is not its fused kernel");
  int device = -1;
  std::vector<const void*> grads_before;
  size_t with_grad = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    grads_before.push_back(g.defined() ? g.data() : nullptr);
    if (!g.defined()) continue;
    device = p.device().index;
    ++with_grad;
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && !inputs[i].is_cuda())
      return give_up(str_cat("[GraphStep] not captured: input ", i, " is on ", inputs[i].device(),
                             "; copy the batch to cuda:", device, " before the step"));

  auto c = std::make_unique<Captured>();
  for (const Tensor& t : inputs) c->inputs.push_back(t.defined() ? t.clone() : Tensor());
  c->loss = empty(s.loss_shape, {s.loss_dtype, Device::cuda(device)});
  c->args = std::make_unique<fused::GraphedArgs>((with_grad + 47) / 48 + 1, device);
  // A capture runs the optimizer's host side (Adam's step counts) but none of its kernels: the
  // state is put back if the capture fails after that.
  const std::map<std::string, Tensor> optimizer_state = optimizer_.state_dict();
  bool stepped = false;
  try {
    c->graph.emplace(cuda::Graph::capture(device, [&] {
      for (const Tensor& p : params) {
        if (const Tensor g = p.grad(); g.defined()) zero_(g);
      }
      const Tensor loss = loss_fn_(c->inputs);
      EMBER_CHECK(loss.defined() && loss.sizes() == c->loss.sizes() && loss.dtype() == c->loss.dtype() &&
                      loss.device() == c->loss.device(),
                  Unsupported, "[GraphStep] not captured: the loss changed shape, dtype or device since the eager steps");
      loss.backward();
      {
        fused::GraphedArgs::Scope scope(*c->args, fused::GraphedArgs::Mode::Capture);
        stepped = true;
        optimizer_.step();
      }
      copy_(c->loss, loss.detach());
    }));  // the loss, the activations and the autograd graph were freed inside the capture
    // Each gradient must have been summed into the tensor it had before (the graph refills it);
    // one made anew would live in the graph's memory, freed at the next launch.
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor g = params[i].grad();
      EMBER_CHECK((g.defined() ? g.data() : nullptr) == grads_before[i], Unsupported,
                  "[GraphStep] not captured: the gradient of parameter ", i,
                  " was not summed in place (is a reference to it held elsewhere?)");
      if (g.defined()) c->grads.emplace_back(params[i], g);
    }
  } catch (const Error& e) {
    if (stepped) optimizer_.load_state_dict(optimizer_state);
    return give_up(e.what());
  }
  // The capture ran the step's host side already (its arguments are in the slots): launch it.
  c->args->upload();
  c->graph->replay();
  c->done.emplace(device, /*timing=*/false);
  c->done->record();
  ++stats_.captures;
  ++stats_.replays;
  s.order = captures_made_++;
  s.captured = std::move(c);
  return s.captured->loss.clone();
}

std::optional<Tensor> GraphStep::replay(Captured& c, const TensorList& inputs) {
  for (auto& [p, g] : c.grads)
    if (!p.grad().is_same(g)) p.set_grad(g);
  // The optimizer's host side for this step, writing the arguments the graph's update reads.
  // The optimizers commit their state (step counts, new buffers) only once an update has gone
  // through, so a refresh that finds the update changed leaves them as they were.
  try {
    fused::GraphedArgs::Scope scope(*c.args, fused::GraphedArgs::Mode::Refresh);
    optimizer_.step();
    EMBER_CHECK(c.args->seen() == c.args->captured(), Internal, "[GraphStep] the optimizer's update made ",
                c.args->seen(), " fused launches, the captured one ", c.args->captured());
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Internal) throw;
    stats_.capture_failure = str_cat(e.what(), "; the graph was dropped");
    return std::nullopt;
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined()) copy_(c.inputs[i], inputs[i]);
  // Queued after the last replay, whose kernels read the same device slots.
  c.args->upload();
  c.graph->replay();
  c.done->record();
  ++stats_.replays;
  return c.loss.clone();
}

}  // namespace ember::nn

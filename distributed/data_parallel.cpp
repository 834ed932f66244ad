#include "distributed/data_parallel.h"

#include <map>
#include <optional>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "model/model.h"
#include "nn/module.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/join.h"
#include "runtime/error.h"

namespace ember::distributed {

void broadcast_coalesced(ProcessGroup& group, const std::vector<Tensor>& tensors, int root) {
  if (group.size() == 1) return;
  NoGradGuard no_grad;  // parameters are leaves that require grad: these copies are not training
  std::map<DType, std::vector<Tensor>> by_dtype;
  for (const Tensor& t : tensors)
    if (t.defined() && t.numel() > 0) by_dtype[t.dtype()].push_back(t);
  for (auto& [dtype, list] : by_dtype) {
    std::vector<Tensor> flat;
    for (const Tensor& t : list) flat.push_back(t.reshape({-1}));
    Tensor all = cat(flat);
    group.broadcast(all, root);
    int64_t offset = 0;
    for (const Tensor& t : list) {
      copy_(t, all.slice(0, offset, offset + t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

namespace detail {

// The gradient buckets and the per-backward bookkeeping (see data_parallel.h).
class Reducer : public std::enable_shared_from_this<Reducer> {
 public:
  Reducer(std::shared_ptr<ProcessGroup> group, std::vector<std::string> names, std::vector<Tensor> params,
          const DataParallelOptions& options)
      : group_(std::move(group)), names_(std::move(names)), params_(std::move(params)), options_(options) {
    make_buckets();
    ready_.assign(params_.size(), 0);
    stats_.buckets = static_cast<int>(buckets_.size());
  }

  // Hooks hold the reducer weakly: a parameter outliving its DataParallel keeps no state alive.
  void register_hooks() {
    std::weak_ptr<Reducer> self = weak_from_this();
    for (size_t i = 0; i < params_.size(); ++i)
      params_[i].register_post_accumulate_grad_hook([self, i](const Tensor&) {
        if (auto r = self.lock()) r->on_gradient(i);
      });
  }

  void pause() { ++paused_; }
  void resume() { --paused_; }
  const DataParallelStats& stats() const { return stats_; }

  std::vector<double> last_step_overlap_ms() const {
    std::vector<double> ms;
    if (!backward_end_) return ms;
    for (const auto& w : last_works_)
      if (auto v = w->finished_ms_before(*backward_end_)) ms.push_back(*v);
    return ms;
  }

 private:
  struct Bucket {
    Tensor flat;                   // the gradients of its parameters, end to end
    std::vector<size_t> params;    // indices into params_
    std::vector<int64_t> offsets;  // each one's first element in flat
    size_t ready = 0;
    std::shared_ptr<Work> work;
  };

  void make_buckets() {
    // Reverse registration order approximates the order backward produces gradients; one
    // dtype per bucket (a collective has one dtype).
    std::map<DType, size_t> open;  // dtype → index of its bucket being filled
    std::vector<size_t> bytes;
    where_.resize(params_.size());
    for (size_t k = params_.size(); k-- > 0;) {
      const Tensor& p = params_[k];
      EMBER_CHECK(p.device() == group_->device(), DeviceMismatch, "[DataParallel] parameter '", names_[k], "' is on ",
                  p.device(), " but the process group reduces tensors on ", group_->device(),
                  ": move the model to the group's device first");
      auto it = open.find(p.dtype());
      if (it == open.end() ||
          bytes[it->second] >= (it->second == 0 ? options_.first_bucket_bytes : options_.bucket_bytes)) {
        buckets_.emplace_back();
        bytes.push_back(0);
        it = open.insert_or_assign(p.dtype(), buckets_.size() - 1).first;
      }
      Bucket& b = buckets_[it->second];
      where_[k] = {it->second, b.params.size()};
      b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
      b.params.push_back(k);
      bytes[it->second] += p.nbytes();
    }
    for (Bucket& b : buckets_) {
      const Tensor& last = params_[b.params.back()];
      b.flat = empty({b.offsets.back() + last.numel()}, TensorOptions{last.dtype(), last.device()});
    }
  }

  Tensor slot(size_t i) const {
    const auto [b, k] = where_[i];
    const int64_t off = buckets_[b].offsets[k];
    return buckets_[b].flat.slice(0, off, off + params_[i].numel());
  }

  void on_gradient(size_t i) {
    if (paused_ > 0) return;  // no_sync(): accumulate locally
    if (!finish_queued_) {
      std::weak_ptr<Reducer> self = weak_from_this();
      autograd::queue_callback([self] {
        if (auto r = self.lock()) r->finish();
      });
      finish_queued_ = true;
    }
    EMBER_CHECK(!ready_[i], InvalidArgument, "[DataParallel] parameter '", names_[i],
                "' received its gradient twice in one backward pass (a second backward over a retained graph?); "
                "accumulate with no_sync() instead");
    mark_ready(i, params_[i].grad());
    if (options_.overlap) launch_ready_buckets();
  }

  void mark_ready(size_t i, const Tensor& grad) {
    NoGradGuard no_grad;
    Tensor s = slot(i);
    if (grad.defined()) copy_(s, grad.reshape({-1}));
    else zero_(s);
    ready_[i] = 1;
    ++buckets_[where_[i].first].ready;
  }

  // Buckets start in index order on every rank, so the ranks' collectives match.
  void launch_ready_buckets() {
    while (next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].params.size()) {
      buckets_[next_].work = group_->all_reduce_async(buckets_[next_].flat, ReduceOp::Avg);
      ++next_;
    }
  }

  // The end of backward: start what is left, wait, hand the averages back.
  void finish() {
    finish_queued_ = false;
    const int during = static_cast<int>(next_);
    std::vector<size_t> missing;
    for (size_t i = 0; i < params_.size(); ++i)
      if (!ready_[i]) missing.push_back(i);
    if (!missing.empty()) {
      if (!options_.find_unused_parameters) {
        std::string list;
        for (size_t k = 0; k < missing.size() && k < 8; ++k) list += (k ? ", '" : "'") + names_[missing[k]] + "'";
        if (missing.size() > 8) list += str_cat(" and ", missing.size() - 8, " more");
        reset();
        throw_error(ErrorCode::InvalidArgument,
                    str_cat("[DataParallel] ", missing.size(), " parameter(s) received no gradient in this backward: ",
                            list, ". Every rank must reduce every bucket: construct DataParallel with "
                            "find_unused_parameters = true (they then count as zero), or freeze them "
                            "(requires_grad_(false)) before wrapping"));
      }
      // A gradient accumulated under no_sync() still counts; none at all counts as zero.
      for (size_t i : missing) mark_ready(i, params_[i].grad());
    }
    launch_ready_buckets();
    NoGradGuard no_grad;
    // A mark on the device's timeline where backward's kernels end, for last_step_overlap_ms().
    const Device dev = group_->device();
    if (dev.is_cuda()) {
      backward_end_.emplace(dev.index);
      backward_end_->record();
    }
    last_works_.clear();
    for (Bucket& b : buckets_) {
      b.work->wait();  // ember's stream waits; the host does not
      last_works_.push_back(std::move(b.work));
    }
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor avg = slot(i).view(params_[i].sizes());
      Tensor g = params_[i].grad();
      if (options_.gradient_as_bucket_view) params_[i].set_grad(avg);
      else if (g.defined()) copy_(g, avg);
      else params_[i].set_grad(avg.clone());
    }
    reset();
    stats_.launched_during_backward = during;
    ++stats_.synced_steps;
  }

  void reset() {
    std::fill(ready_.begin(), ready_.end(), 0);
    for (Bucket& b : buckets_) {
      b.ready = 0;
      b.work.reset();
    }
    next_ = 0;
  }

  std::shared_ptr<ProcessGroup> group_;
  std::vector<std::string> names_;
  std::vector<Tensor> params_;
  DataParallelOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  // parameter → (bucket, position in it)
  std::vector<char> ready_;
  size_t next_ = 0;  // the next bucket to start
  bool finish_queued_ = false;
  int paused_ = 0;
  DataParallelStats stats_;
  std::optional<cuda::Event> backward_end_;           // CUDA groups: the last backward's end
  std::vector<std::shared_ptr<Work>> last_works_;      // its buckets' all-reduces
};

}  // namespace detail

namespace {

// Moves each contiguous tensor's data into one flat tensor per dtype and makes the tensor a
// view of it, in place (every handle to it — the module's, the optimizer's — sees the move), so
// a broadcast of the buffers is one collective per dtype with no copies in or out. Tensors
// that are not contiguous are left out (broadcast_coalesced copies those).
std::vector<Tensor> rebind_to_flat(const std::vector<Tensor>& tensors, std::vector<Tensor>& left_out) {
  NoGradGuard no_grad;
  std::map<DType, std::vector<Tensor>> by_dtype;
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    (t.is_contiguous() ? by_dtype[t.dtype()] : left_out).push_back(t);
  }
  std::vector<Tensor> flats;
  for (auto& [dtype, list] : by_dtype) {
    int64_t total = 0;
    for (const Tensor& t : list) total += t.numel();
    Tensor flat = empty({total}, TensorOptions{dtype, list.front().device()});
    int64_t offset = 0;
    for (const Tensor& t : list) {
      copy_(flat.slice(0, offset, offset + t.numel()), t.reshape({-1}));
      TensorImpl& impl = t.impl();
      impl.storage = flat.storage();
      impl.offset = flat.storage_offset() + offset;
      impl.strides = contiguous_strides(impl.sizes);
      offset += t.numel();
    }
    flats.push_back(flat);
  }
  return flats;
}

std::vector<Tensor> values(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : named) out.push_back(t);
  return out;
}

}  // namespace

DataParallel::DataParallel(std::vector<std::pair<std::string, Tensor>> parameters,
                           std::vector<std::pair<std::string, Tensor>> buffers, std::shared_ptr<ProcessGroup> group,
                           DataParallelOptions options)
    : group_(std::move(group)), options_(options) {
  EMBER_CHECK(group_ != nullptr, InvalidArgument, "[DataParallel] expected a process group, got null");
  buffers_ = values(buffers);
  // Every rank starts from rank 0's weights and buffers.
  std::vector<Tensor> state = values(parameters);
  state.insert(state.end(), buffers_.begin(), buffers_.end());
  for (const Tensor& t : state)
    EMBER_CHECK(!t.defined() || t.device() == group_->device(), DeviceMismatch, "[DataParallel] a tensor is on ",
                t.device(), " but the process group reduces tensors on ", group_->device(),
                ": move the model to the group's device first");
  broadcast_coalesced(*group_, state, 0);
  if (group_->size() == 1) return;
  if (options_.broadcast_buffers) {
    std::vector<Tensor> rest;
    flat_buffers_ = rebind_to_flat(buffers_, rest);
    buffers_ = std::move(rest);  // what broadcast_coalesced still has to copy
  }

  std::vector<std::string> names;
  std::vector<Tensor> trained;
  for (auto& [name, t] : parameters)
    if (t.defined() && t.requires_grad()) {
      names.push_back(name);
      trained.push_back(t);
    }
  reducer_ = std::make_shared<detail::Reducer>(group_, std::move(names), std::move(trained), options_);
  reducer_->register_hooks();
}

DataParallel::DataParallel(std::shared_ptr<nn::Module> module, std::shared_ptr<ProcessGroup> group,
                           DataParallelOptions options)
    : DataParallel(module ? module->named_parameters() : std::vector<std::pair<std::string, Tensor>>{},
                   module ? module->named_buffers() : std::vector<std::pair<std::string, Tensor>>{}, std::move(group),
                   options) {
  EMBER_CHECK(module != nullptr, InvalidArgument, "[DataParallel] expected a module, got null");
  module_ = std::move(module);
}

DataParallel::DataParallel(Model& model, std::shared_ptr<ProcessGroup> group, DataParallelOptions options)
    : DataParallel(model.named_parameters(), model.named_buffers(), std::move(group), options) {
  model_ = &model;
}

DataParallel::~DataParallel() = default;

void DataParallel::before_forward(bool training) {
  if (!training || !options_.broadcast_buffers || group_->size() == 1) return;
  for (const Tensor& flat : flat_buffers_) group_->broadcast(flat, 0);
  broadcast_coalesced(*group_, buffers_, 0);
}

Tensor DataParallel::forward(const Tensor& x) {
  EMBER_CHECK(module_ != nullptr, InvalidArgument,
              "[DataParallel] forward(Tensor) needs the module form; this DataParallel wraps ",
              model_ ? "a loaded model: call forward(TensorList)" : "tensors: run your forward yourself");
  before_forward(module_->is_training());
  return module_->forward(x);
}

TensorList DataParallel::forward(const TensorList& inputs) {
  EMBER_CHECK(model_ != nullptr, InvalidArgument,
              "[DataParallel] forward(TensorList) needs the model form; this DataParallel wraps ",
              module_ ? "a module: call forward(Tensor)" : "tensors: run your forward yourself");
  before_forward(model_->is_training());
  return model_->forward(inputs);
}

DataParallel::NoSync::NoSync(std::shared_ptr<detail::Reducer> reducer) : reducer_(std::move(reducer)) {
  if (reducer_) reducer_->pause();
}

DataParallel::NoSync::~NoSync() {
  if (reducer_) reducer_->resume();
}

DataParallel::NoSync DataParallel::no_sync() { return NoSync(reducer_); }

std::vector<double> DataParallel::last_step_overlap_ms() const {
  return reducer_ ? reducer_->last_step_overlap_ms() : std::vector<double>{};
}

const DataParallelStats& DataParallel::stats() const {
  return reducer_ ? reducer_->stats() : single_rank_stats_;
}

}  // namespace ember::distributed

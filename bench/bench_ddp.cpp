// Data-parallel benchmark of issue 8, ember's side (bench/torch_ddp.py is PyTorch's): one rank
// per GPU, started by ember launch. Times a training step (forward, cross-entropy, backward
// with the gradient all-reduce, SGD) of an exported model at a fixed batch per GPU — world 1
// runs the plain model, larger worlds wrap it in DataParallel — and the all-reduce of a 1 GiB
// float32 tensor. Each figure is the median over event-timed steps after warm-up, on rank 0.
// Rows written to CSV (compare.py's format): ddp_<name>_w<N>_b<B>[_nooverlap] and
// allreduce_1gib_w<N>, in milliseconds.
// MODEL "gpt" instead of a file: nn::GPT (6 layers, width 384, T 256, GPT-2's vocabulary, no
// dropout; bench/gpt_model.py is PyTorch's twin) trained with AdamW on random tokens.
// Usage: ember launch --nproc-per-node N -- bench_ddp MODEL.ember|gpt NAME [out.csv] [--batch B]
//        [--steps S] [--no-overlap] [--no-allreduce]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember.h"

using namespace ember;
using namespace ember::distributed;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_ddp MODEL.ember NAME [out.csv] [--batch B] [--steps S] [--no-overlap] [--no-allreduce]\n");
    return 2;
  }
  const std::string path = argv[1], name = argv[2];
  std::string csv_path;
  int64_t batch = 64;
  int steps = 20;
  bool overlap = true, allreduce = true;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--no-overlap") overlap = false;
    else if (a == "--no-allreduce") allreduce = false;
    else csv_path = a;
  }
  try {
    auto pg = init_process_group();
    const Device dev = pg->device();
    const int world = pg->size();
    DataParallelOptions options;
    options.overlap = overlap;
    std::optional<DataParallel> dp;
    std::function<void()> step;
    // A loaded image classifier with SGD, or the GPT with AdamW.
    std::optional<Model> model;
    std::shared_ptr<nn::GPT> gpt;
    std::unique_ptr<nn::Optimizer> opt;
    Tensor x, y;
    manual_seed(1 + pg->rank());
    if (path == "gpt") {
      nn::GPTConfig c;
      c.dropout = 0;
      gpt = std::make_shared<nn::GPT>(c);
      gpt->to(dev);
      if (world > 1) dp.emplace(gpt, pg, options);
      opt = std::make_unique<nn::Adam>(gpt->parameters(),
                                       nn::AdamOptions{.lr = 3e-4, .weight_decay = 0.01, .decoupled_weight_decay = true});
      Tensor t = randint(0, c.vocab_size, {batch, c.block_size + 1}, TensorOptions{DType::Int64, dev});
      x = t.slice(1, 0, c.block_size).contiguous();
      y = t.slice(1, 1, c.block_size + 1).reshape({-1});
      step = [&, c] {
        gpt->zero_grad();
        Tensor logits = dp ? dp->forward(x) : gpt->forward(x);
        nn::cross_entropy(logits.reshape({-1, c.vocab_size}), y).backward();
        opt->step();
      };
    } else {
      model.emplace(load(path, dev));
      model->train();
      if (world > 1) dp.emplace(*model, pg, options);
      opt = std::make_unique<nn::SGD>(model->parameters(), nn::SGDOptions{0.01, 0.9});
      x = randn({batch, 3, 224, 224}, TensorOptions{DType::Float32, dev});
      y = remainder(arange(batch, TensorOptions{DType::Int64, Device::cpu()}), 1000).to(dev);
      step = [&] {
        for (const Tensor& p : model->parameters()) p.set_grad(Tensor());
        Tensor logits = dp ? dp->forward(TensorList{x})[0] : model->forward({x})[0];
        nn::cross_entropy(logits, y).backward();
        opt->step();
      };
    }
    for (int i = 0; i < 5; ++i) step();
    pg->barrier();
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      cuda::Event start(dev.index), end(dev.index);
      start.record();
      step();
      end.record();
      end.synchronize();
      ms.push_back(cuda::Event::elapsed_ms(start, end));
    }
    // Every rank's median: the slowest rank sets the pace.
    Tensor slowest = full({1}, median(ms), TensorOptions{DType::Float64, dev});
    pg->all_reduce(slowest, distributed::ReduceOp::Max);
    const double step_ms = slowest.item<double>();
    std::vector<std::pair<std::string, double>> rows;
    const std::string suffix = overlap ? "" : "_nooverlap";
    rows.emplace_back(str_cat("ddp_", name, "_w", world, "_b", batch, suffix), step_ms);
    if (pg->rank() == 0) {
      std::printf("ember %s: %d GPU(s), batch %lld per GPU: step %.2f ms, %.1f %s/s", name.c_str(), world,
                  static_cast<long long>(batch), step_ms, world * batch * 1000.0 / step_ms,
                  gpt ? "sequences" : "images");
      if (dp) {
        std::printf(", %d of %d gradient buckets started during backward%s", dp->stats().launched_during_backward,
                    dp->stats().buckets, overlap ? "" : " (overlap off)");
        // Device-side evidence of the overlap: when each bucket's all-reduce finished,
        // relative to the last kernel of backward.
        std::printf("; bucket all-reduces finished (ms before backward's end):");
        for (double ms : dp->last_step_overlap_ms()) std::printf(" %.2f", ms);
      }
      std::printf("\n");
    }
    if (allreduce && world > 1 && overlap) {
      const int64_t n = (int64_t{1} << 30) / 4;
      Tensor t = ones({n}, TensorOptions{DType::Float32, dev});
      for (int i = 0; i < 3; ++i) pg->all_reduce(t);
      std::vector<double> ar;
      for (int i = 0; i < 10; ++i) {
        cuda::Event start(dev.index), end(dev.index);
        start.record();
        pg->all_reduce(t);
        end.record();
        end.synchronize();
        ar.push_back(cuda::Event::elapsed_ms(start, end));
      }
      const double ar_ms = median(ar);
      const double busbw = (n * 4.0) / (ar_ms / 1000) * 2.0 * (world - 1) / world / 1e9;
      rows.emplace_back(str_cat("allreduce_1gib_w", world), ar_ms);
      if (pg->rank() == 0)
        std::printf("ember all_reduce 1 GiB float32 on %d GPUs: %.3f ms, bus bandwidth %.1f GB/s\n", world, ar_ms, busbw);
    }
    if (pg->rank() == 0 && !csv_path.empty()) {
      FILE* f = std::fopen(csv_path.c_str(), "a");
      if (!f) throw_error(ErrorCode::Io, "cannot open " + csv_path);
      for (const auto& [row, value] : rows) std::fprintf(f, "%s,%.6f,0,0\n", row.c_str(), value);
      std::fclose(f);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_ddp: %s\n", e.what());
    return 1;
  }
  return 0;
}

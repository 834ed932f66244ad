// The TCP process group: CPU tensors reduced through rank 0 over the connections the
// rendezvous made (a star). Each collective: every other rank sends rank 0 a header (what it is
// calling, on how many elements of which dtype) and its data; rank 0 checks that all agree,
// computes in rank order (so sums are the same on every run) and answers each rank. Simple and
// bounded by rank 0's bandwidth: meant for CPU jobs of a few ranks and for testing distributed
// code without GPUs. Ranks of one job share a byte order (x86-64 and aarch64 both do).
#include <mutex>

#include "distributed/process_group.h"
#include "distributed/tcp.h"
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "runtime/error.h"

namespace ember::distributed {

namespace {

constexpr const char* kTag = "tcp process group";

enum class Kind : uint32_t { AllReduce = 1, Broadcast, AllGather, ReduceScatter, Barrier };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::AllReduce: return "all_reduce";
    case Kind::Broadcast: return "broadcast";
    case Kind::AllGather: return "all_gather";
    case Kind::ReduceScatter: return "reduce_scatter";
    case Kind::Barrier: return "barrier";
  }
  return "?";
}

// What a rank is calling; rank 0 refuses a collective on which the ranks disagree.
struct Header {
  uint32_t kind = 0, dtype = 0, op = 0;
  int32_t root = 0;
  uint64_t numel = 0, seq = 0;

  bool operator==(const Header&) const = default;
  std::string describe() const {
    std::string s = str_cat(kind_name(static_cast<Kind>(kind)), " #", seq);
    if (static_cast<Kind>(kind) != Kind::Barrier)
      s += str_cat(" on ", numel, " ", static_cast<DType>(dtype), " elements");
    if (static_cast<Kind>(kind) == Kind::AllReduce || static_cast<Kind>(kind) == Kind::ReduceScatter)
      s += str_cat(" (", reduce_op_name(static_cast<ReduceOp>(op)), ")");
    if (static_cast<Kind>(kind) == Kind::Broadcast) s += str_cat(" from rank ", root);
    return s;
  }
};

Tensor combine(const Tensor& a, const Tensor& b, ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return maximum(a, b);
    case ReduceOp::Min: return minimum(a, b);
    default: return add(a, b);
  }
}

class TcpGroup final : public ProcessGroup {
 public:
  TcpGroup(const DistEnv& env, const ProcessGroupOptions& options, tcp::Star star)
      : ProcessGroup(env.rank, env.world_size), timeout_(options.timeout), star_(std::move(star)) {}

  Backend backend() const override { return Backend::Tcp; }
  Device device() const override { return Device::cpu(); }

  std::shared_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_reduce(t, op, "all_reduce");
    run(Kind::AllReduce, t, t, op, 0);
    struct Done final : Work {  // the host did the work: nothing is pending
      void wait() override {}
      bool is_completed() override { return true; }
    };
    return std::make_shared<Done>();
  }

  void broadcast(const Tensor& t, int root) override {
    check_tensor(t, "broadcast", "the tensor");
    EMBER_CHECK(root >= 0 && root < size(), InvalidArgument, "[broadcast] root ", root, " is outside a world of ",
                size());
    run(Kind::Broadcast, t, t, ReduceOp::Sum, root);
  }

  void all_gather(const Tensor& input, const Tensor& output) override {
    check_all_gather(input, output);
    run(Kind::AllGather, input, output, ReduceOp::Sum, 0);
  }

  void reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) override {
    check_reduce_scatter(input, output, op);
    run(Kind::ReduceScatter, input, output, op, 0);
  }

  void barrier() override { run(Kind::Barrier, Tensor(), Tensor(), ReduceOp::Sum, 0); }

 private:
  // Whether a rank sends its input to rank 0 for this collective.
  static bool sends_data(const Header& h, int rank) {
    const Kind k = static_cast<Kind>(h.kind);
    return k == Kind::AllReduce || k == Kind::AllGather || k == Kind::ReduceScatter ||
           (k == Kind::Broadcast && h.root == rank);
  }

  void run(Kind kind, const Tensor& in, const Tensor& out, ReduceOp op, int root) {
    std::lock_guard<std::mutex> lock(mutex_);
    EMBER_CHECK(failed_.empty(), Io, "[", kTag, "] rank ", rank(), ": an earlier collective failed (", failed_,
                "); the group cannot be used again");
    Header h;
    h.kind = static_cast<uint32_t>(kind);
    h.dtype = in.defined() ? static_cast<uint32_t>(in.dtype()) : 0;
    h.op = static_cast<uint32_t>(op);
    h.root = root;
    h.numel = in.defined() ? static_cast<uint64_t>(in.numel()) : 0;
    h.seq = seq_++;
    const tcp::Clock::time_point deadline = tcp::Clock::now() + timeout_;
    try {
      if (rank() == 0) serve(h, in, out, op, deadline);
      else join(h, in, out, deadline);
    } catch (const Error& e) {
      failed_ = e.what();
      throw;
    }
  }

  // Rank 0: collect, check, compute, answer.
  void serve(const Header& h, const Tensor& in, const Tensor& out, ReduceOp op, tcp::Clock::time_point deadline) {
    std::vector<Tensor> parts(static_cast<size_t>(size()));
    if (in.defined()) parts[0] = in;
    std::string problem;
    for (int r = 1; r < size(); ++r) {
      const std::string who = str_cat("rank ", r, " (during ", h.describe(), ")");
      Header theirs;
      tcp::recv_all(link(r), &theirs, sizeof theirs, deadline, kTag, who);
      if (!(theirs == h)) {
        if (problem.empty())
          problem = str_cat("ranks disagree on the collective: rank ", r, " called ", theirs.describe(),
                            ", rank 0 called ", h.describe());
        continue;  // its data (if any) stays unread: the group is unusable after this anyway
      }
      if (sends_data(h, r)) {
        parts[static_cast<size_t>(r)] = empty(in.sizes(), TensorOptions{in.dtype(), Device::cpu()});
        tcp::recv_all(link(r), parts[static_cast<size_t>(r)].data(), in.nbytes(), deadline, kTag, who);
      }
    }
    if (!problem.empty()) {
      for (int r = 1; r < size(); ++r) {
        try {
          reply(r, 1, problem.data(), problem.size(), deadline);
        } catch (const Error&) {
          // the rank is gone: rank 0 still reports the disagreement below
        }
      }
      throw_error(ErrorCode::InvalidArgument, str_cat("[", kTag, "] ", problem));
    }

    const Kind kind = static_cast<Kind>(h.kind);
    Tensor result;  // what every rank receives (reduce_scatter: sliced per rank)
    if (kind == Kind::AllReduce || kind == Kind::ReduceScatter) {
      result = parts[0].clone();
      for (int r = 1; r < size(); ++r) result = combine(result, parts[static_cast<size_t>(r)], op);
      if (op == ReduceOp::Avg) result = div(result, static_cast<double>(size()));
      result = result.to(in.dtype()).reshape({-1});
    } else if (kind == Kind::AllGather) {
      result = out.view({size(), in.numel()});
      for (int r = 0; r < size(); ++r) copy_(result.select(0, r), parts[static_cast<size_t>(r)].reshape({-1}));
      result = result.reshape({-1});
    } else if (kind == Kind::Broadcast) {
      result = parts[static_cast<size_t>(h.root)].reshape({-1});
    }

    const int64_t chunk = kind == Kind::ReduceScatter ? out.numel() : 0;
    for (int r = 1; r < size(); ++r) {
      if (!result.defined()) {
        reply(r, 0, nullptr, 0, deadline);
      } else if (kind == Kind::ReduceScatter) {
        Tensor mine = result.slice(0, r * chunk, (r + 1) * chunk);
        reply(r, 0, mine.data(), mine.nbytes(), deadline);
      } else {
        reply(r, 0, result.data(), result.nbytes(), deadline);
      }
    }
    if (!result.defined()) return;
    Tensor flat_out = out.view({out.numel()});
    if (kind == Kind::ReduceScatter) copy_(flat_out, result.slice(0, 0, chunk));
    else if (!result.shares_storage(out)) copy_(flat_out, result);
    out.bump_version();
  }

  // Any other rank: send, then read rank 0's answer into `out`.
  void join(const Header& h, const Tensor& in, const Tensor& out, tcp::Clock::time_point deadline) {
    const std::string who = str_cat("rank 0 (during ", h.describe(), ")");
    tcp::send_all(link(0), &h, sizeof h, deadline, kTag, who);
    if (sends_data(h, rank())) tcp::send_all(link(0), in.data(), in.nbytes(), deadline, kTag, who);
    uint32_t status = 0, n = 0;
    tcp::recv_all(link(0), &status, 4, deadline, kTag, who);
    if (status != 0) {
      tcp::recv_all(link(0), &n, 4, deadline, kTag, who);
      std::string message(std::min<uint32_t>(n, 1 << 16), '\0');
      tcp::recv_all(link(0), message.data(), message.size(), deadline, kTag, who);
      throw_error(ErrorCode::InvalidArgument, str_cat("[", kTag, "] rank ", rank(), ": ", message));
    }
    if (static_cast<Kind>(h.kind) == Kind::Barrier) return;
    tcp::recv_all(link(0), out.data(), out.nbytes(), deadline, kTag, who);
    out.bump_version();
  }

  void reply(int r, uint32_t status, const void* data, size_t n, tcp::Clock::time_point deadline) {
    const std::string who = str_cat("rank ", r);
    tcp::send_all(link(r), &status, 4, deadline, kTag, who);
    if (status != 0) {
      const uint32_t len = static_cast<uint32_t>(n);
      tcp::send_all(link(r), &len, 4, deadline, kTag, who);
    }
    tcp::send_all(link(r), data, n, deadline, kTag, who);
  }

  int link(int r) const { return star_.links[static_cast<size_t>(r)].fd; }

  std::chrono::milliseconds timeout_;
  tcp::Star star_;
  std::mutex mutex_;  // one collective at a time: they share the connections
  uint64_t seq_ = 0;
  std::string failed_;
};

}  // namespace

std::shared_ptr<ProcessGroup> make_tcp_group(const DistEnv& env, const ProcessGroupOptions& options) {
  tcp::Star star = tcp::connect_star(env, {}, tcp::Clock::now() + options.timeout);
  return std::make_shared<TcpGroup>(env, options, std::move(star));
}

}  // namespace ember::distributed

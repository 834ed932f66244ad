// Sweeps over model files (issue 10): every file truncated at every byte offset and with every
// byte flipped must load into a valid model or fail with a clean ember::Error, never crash
// (run under ASan and UBSan by tools/fuzz.sh; under a memory cap by tools/test.sh). Loads run
// with and without the checksum (without it, flips reach the FlatBuffers verifier and ember's
// own checks); a flipped file that loads is run once on the CPU. No load may fail with
// OutOfMemory: the loader allocates nothing the file's size does not justify.
// Usage: sweep_fixtures [--stride N] [--truncate-stride N] [--cap-mb M] model.ember...
//   --stride: flip every Nth byte past the first 16 KiB, where the flatbuffer is (weights there
//   only change values); --truncate-stride: truncate at every Nth offset past the first 16 KiB
//   and before the last 1 KiB (default 1: every offset; the ASan run in CI, 2-3 times slower,
//   takes a stride); --cap-mb: limit the address space to M MB beyond what the process holds
//   once started (its libraries mapped: CUDA's alone map hundreds of MB).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ember.h"

using namespace ember;

namespace {

struct Counts {
  int64_t loaded = 0, refused = 0, ran = 0, run_refused = 0, load_oom = 0;
};

bool small_graph(const graph::Graph& g) {
  for (const graph::Value& v : g.values) {
    int64_t n = 1;
    for (const graph::Dim& d : v.shape) {
      const int64_t s = d.is_symbolic() ? 2 : d.size;
      if (s < 0 || __builtin_mul_overflow(n, s, &n) || n > (1 << 20)) return false;
    }
  }
  return true;
}

void try_load(std::string bytes, bool checksum, bool run, Counts& c) {
  ModelFileOptions options;
  options.verify_checksum = checksum;
  ModelFile f;
  try {
    f = read_model(bytes_in_memory(std::move(bytes)), "sweep", options);
    ++c.loaded;
  } catch (const Error& e) {
    ++c.refused;
    if (e.code() == ErrorCode::OutOfMemory) {
      ++c.load_oom;
      std::fprintf(stderr, "load ran out of memory: %s\n", e.what());
    }
    return;
  }
  if (!run || !small_graph(f.graph)) return;
  try {
    TensorList in;
    for (uint32_t id : f.graph.inputs) {
      Shape shape;
      for (const graph::Dim& d : f.graph.values.at(id).shape) shape.push_back(d.is_symbolic() ? 2 : d.size);
      in.push_back(zeros(shape, {f.graph.values.at(id).dtype, Device::cpu()}));
    }
    graph::Executor(f.graph).run(in, f.data, {false, Device::cpu()});
    ++c.ran;
  } catch (const Error&) {
    ++c.run_refused;
  }
}

}  // namespace

// The process's address space now, in bytes (VmSize in /proc/self/status), or 0.
int64_t address_space_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmSize:") {
      int64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

int main(int argc, char** argv) {
  int64_t stride = 1, truncate_stride = 1, cap_mb = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--stride" && i + 1 < argc) stride = std::max<int64_t>(1, std::atoll(argv[++i]));
    else if (a == "--truncate-stride" && i + 1 < argc) truncate_stride = std::max<int64_t>(1, std::atoll(argv[++i]));
    else if (a == "--cap-mb" && i + 1 < argc) cap_mb = std::atoll(argv[++i]);
    else files.push_back(a);
  }
  if (cap_mb > 0) {
    // Start the CPU thread pool, and each thread's malloc arena, before the cap: their stacks and
    // arenas (64 MB of address space each) grow with the machine's cores, not with the file, and
    // on a 16-core machine took the whole 256 MB before a model was read.
    parallel_for(0, int64_t{get_num_threads()} * 4, 1, [](int64_t, int64_t) { std::free(std::malloc(64)); });
    const int64_t base = address_space_bytes();
    const rlim_t limit = static_cast<rlim_t>(base + cap_mb * (int64_t{1} << 20));
    const rlimit r{limit, limit};
    if (base == 0 || setrlimit(RLIMIT_AS, &r) != 0) {
      std::fprintf(stderr, "sweep_fixtures: cannot set the address-space cap\n");
      return 2;
    }
    std::printf("address space capped at %lld MB (%lld MB in use at start)\n",
                static_cast<long long>(limit >> 20), static_cast<long long>(base >> 20));
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: sweep_fixtures [--stride N] model.ember...\n");
    return 2;
  }
  int64_t load_oom = 0;
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const int64_t size = static_cast<int64_t>(file.size());
    Counts truncated, flipped_checked, flipped;
    // Every offset in the first 16 KiB and the last 1 KiB, every truncate_stride-th between.
    const int64_t tail = std::max<int64_t>(0, size - 1024);
    auto next_truncation = [&](int64_t n) {
      return n < 16384 || n >= tail ? n + 1 : std::min(n + truncate_stride, tail);
    };
    int64_t truncations = 0;
    for (int64_t n = 0; n < size; n = next_truncation(n)) {
      try_load(file.substr(0, static_cast<size_t>(n)), true, false, truncated);
      try_load(file.substr(0, static_cast<size_t>(n)), false, false, truncated);
      ++truncations;
    }
    int64_t offsets = 0;
    for (int64_t at = 0; at < size; at += at < 16384 ? 1 : stride) {
      std::string bad = file;
      bad[static_cast<size_t>(at)] = static_cast<char>(bad[static_cast<size_t>(at)] ^ 0xff);
      try_load(bad, true, false, flipped_checked);
      try_load(std::move(bad), false, true, flipped);
      ++offsets;
    }
    std::printf("%s (%lld bytes): %lld truncations (with and without the checksum) %lld refused, %lld loaded; "
                "%lld flipped bytes: with the checksum %lld refused, %lld loaded; without it %lld refused, %lld "
                "loaded (%lld ran, %lld refused to run)\n",
                path.c_str(), static_cast<long long>(size), static_cast<long long>(truncations),
                static_cast<long long>(truncated.refused), static_cast<long long>(truncated.loaded),
                static_cast<long long>(offsets),
                static_cast<long long>(flipped_checked.refused), static_cast<long long>(flipped_checked.loaded),
                static_cast<long long>(flipped.refused), static_cast<long long>(flipped.loaded),
                static_cast<long long>(flipped.ran), static_cast<long long>(flipped.run_refused));
    load_oom += truncated.load_oom + flipped_checked.load_oom + flipped.load_oom;
  }
  if (load_oom != 0) {
    std::fprintf(stderr, "%lld loads ran out of memory\n", static_cast<long long>(load_oom));
    return 1;
  }
  return 0;
}

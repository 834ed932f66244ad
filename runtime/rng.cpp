#include "runtime/rng.h"

#include <map>
#include <memory>

namespace ember {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  offset_ = 0;
}

uint64_t Generator::seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seed_;
}

uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return offset_;
}

void Generator::set_offset(uint64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  offset_ = offset;
}

std::pair<uint64_t, uint64_t> Generator::reserve(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t first = offset_;
  offset_ += blocks;
  return {seed_, first};
}

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::pair<int, int>, std::unique_ptr<Generator>> generators;
  uint64_t seed = Generator::kDefaultSeed;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

Generator& default_generator(Device device) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto key = std::make_pair(static_cast<int>(device.type), device.is_cpu() ? 0 : device.index);
  auto& slot = r.generators[key];
  if (!slot) slot = std::make_unique<Generator>(r.seed);
  return *slot;
}

void manual_seed(uint64_t seed) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.seed = seed;  // generators created later start from it too
  for (auto& [key, gen] : r.generators) gen->manual_seed(seed);
}

}  // namespace ember

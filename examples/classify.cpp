// A complete inference app in one file, and ember's single-binary example: built against the
// static library (-Ddefault_library=static) it is one executable with ember inside, no
// libember.so to ship (tools/test.sh builds it that way and checks). It loads a .ember
// classifier, runs it on the images of a .npy file and prints the predicted classes, and the
// accuracy when labels are given.
// Usage: classify MODEL.ember IMAGES.npy [LABELS.npy] [--scale S] [--device cpu|cuda|best]
//   e.g. classify examples/data/digits_mlp.ember examples/data/digits_images.npy
//            examples/data/digits_labels.npy --scale 16
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ember.h"

using namespace ember;

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  double scale = 1;
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--scale" && i + 1 < argc) scale = std::atof(argv[++i]);
    else if (a == "--device" && i + 1 < argc) device_name = argv[++i];
    else paths.push_back(a);
  }
  if (paths.size() < 2 || paths.size() > 3 || scale == 0) {
    std::fprintf(stderr, "usage: classify MODEL.ember IMAGES.npy [LABELS.npy] [--scale S] [--device cpu|cuda|best]\n");
    return 2;
  }
  try {
    const Device device = parse_device(device_name);
    Model model = load(paths[0], device, {.trainable = false});
    // Each image flattened to the model's one input row; pixels divided by --scale.
    Tensor images = load_npy(paths[1]).to(kFloat32);
    const int64_t n = images.sizes()[0];
    Tensor x = div(images.reshape({n, -1}), scale).to(device);
    Tensor predicted;
    {
      NoGradGuard no_grad;
      predicted = argmax(model.forward({x})[0], 1).to(Device::cpu());
    }
    std::printf("%lld images, first predictions:", static_cast<long long>(n));
    for (int64_t i = 0; i < std::min<int64_t>(n, 10); ++i)
      std::printf(" %lld", static_cast<long long>(predicted.select(0, i).item<int64_t>()));
    std::printf("\n");
    if (paths.size() == 3) {
      Tensor labels = load_npy(paths[2]).to(kInt64);
      const double right = sum(eq(predicted, labels)).item<int64_t>();
      std::printf("accuracy: %.2f%%\n", 100 * right / static_cast<double>(n));
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
  return 0;
}

// Trains a small MLP (or, with --model cnn, a small convolutional network) on the 8×8
// handwritten digits (1,797 images, 10 classes) with autograd, nn modules and Adam, on the CPU
// or a GPU, and reports test accuracy. Exits 2 below the target: 97% (MLP), 98% (CNN).
// Usage: train_digits [--model mlp|cnn] [--device cpu|cuda|cuda:N|best] [--epochs N] [--seed S]
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "ember.h"
#include "nn/functional.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/vision_modules.h"
#include "serialization/npy.h"

using namespace ember;

namespace {

// Fraction of rows whose largest logit is the label.
// In evaluation mode (running batch-norm statistics, no dropout), then back to training.
double accuracy(nn::Module& model, const Tensor& x, const Tensor& y) {
  NoGradGuard no_grad;
  model.eval();
  Tensor predicted = argmax(model(x), 1);
  model.train();
  return mean(eq(predicted, y).to(kFloat32)).item<double>();
}

void progress(int epoch, int epochs, double loss, double train_acc, double test_acc) {
  const int width = 30, filled = width * epoch / epochs;
  std::printf("\r[%s%s] epoch %3d/%d  loss %.4f  train %.2f%%  test %.2f%%", std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), epoch, epochs, loss, 100 * train_acc, 100 * test_acc);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train an MLP on the 8x8 handwritten digits"};
  std::string device_name = "cpu", data_dir = EMBER_DIGITS_DIR, model_name = "mlp";
  int epochs = 40;
  uint64_t seed = 0;
  app.add_option("--device", device_name, "cpu, cuda, cuda:N or best (a GPU where one is present)");
  app.add_option("--model", model_name, "mlp (64-256-10) or cnn (two 3x3 convolutions with batch norm)")
      ->check(CLI::IsMember({"mlp", "cnn"}));
  app.add_option("--epochs", epochs, "passes over the training set")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the split, the initialisation and the batches");
  app.add_option("--data", data_dir, "folder holding digits_images.npy and digits_labels.npy");
  CLI11_PARSE(app, argc, argv);
  try {
    const Device device = parse_device(device_name);
    manual_seed(seed);
    // 1,797 images of 8×8 pixels in 0..16 -> [N, 64] floats in [0, 1].
    Tensor images = load_npy(data_dir + "/digits_images.npy").to(kFloat32);
    Tensor labels = load_npy(data_dir + "/digits_labels.npy");
    const int64_t n = images.sizes()[0];
    const bool cnn = model_name == "cnn";
    Tensor x = div(cnn ? reshape(images, {n, 1, 8, 8}) : reshape(images, {n, 64}), 16.0);
    // A fixed split: a seeded permutation, 20% held out for testing.
    Tensor order = randperm(n, {kInt64});
    const int64_t n_test = n / 5, n_train = n - n_test;
    Tensor train_idx = order.slice(0, 0, n_train), test_idx = order.slice(0, n_train);
    Tensor x_train = index_select(x, 0, train_idx).to(device), y_train = index_select(labels, 0, train_idx).to(device);
    Tensor x_test = index_select(x, 0, test_idx).to(device), y_test = index_select(labels, 0, test_idx).to(device);

    using std::make_shared;
    nn::Sequential model = cnn ? nn::Sequential({make_shared<nn::Conv2d>(1, 32, nn::Pair{3, 3}, nn::Conv2dOptions{.padding = {1, 1}}),
                                                 make_shared<nn::BatchNorm2d>(32), make_shared<nn::ReLU>(),
                                                 make_shared<nn::Conv2d>(32, 64, nn::Pair{3, 3}, nn::Conv2dOptions{.padding = {1, 1}}),
                                                 make_shared<nn::BatchNorm2d>(64), make_shared<nn::ReLU>(),
                                                 make_shared<nn::MaxPool2d>(nn::Pair{2, 2}), make_shared<nn::Flatten>(),
                                                 make_shared<nn::Dropout>(0.25), make_shared<nn::Linear>(64 * 4 * 4, 10)})
                               : nn::Sequential({make_shared<nn::Linear>(64, 256), make_shared<nn::ReLU>(),
                                                 make_shared<nn::Linear>(256, 10)});
    model.to(device);
    nn::AdamOptions options;
    options.lr = 3e-3;
    nn::Adam optimizer(model.parameters(), options);

    std::printf("ember %s: %s on %s, %lld training and %lld test images\n", version(),
                cnn ? "CNN conv3x3(32)-bn-relu-conv3x3(64)-bn-relu-maxpool-linear" : "MLP 64-256-10",
                device.str().c_str(), static_cast<long long>(n_train), static_cast<long long>(n_test));
    const int64_t batch = 64;
    double test_acc = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      // Cosine decay of the learning rate to zero over the run.
      optimizer.set_lr(options.lr * 0.5 * (1 + std::cos(3.141592653589793 * (epoch - 1) / epochs)));
      Tensor perm = randperm(n_train, {kInt64}).to(device);
      double loss_sum = 0;
      int batches = 0;
      for (int64_t start = 0; start < n_train; start += batch) {
        Tensor idx = perm.slice(0, start, std::min(start + batch, n_train));
        Tensor loss = nn::cross_entropy(model(index_select(x_train, 0, idx)), index_select(y_train, 0, idx));
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>();
        ++batches;
      }
      test_acc = accuracy(model, x_test, y_test);
      progress(epoch, epochs, loss_sum / batches, accuracy(model, x_train, y_train), test_acc);
    }
    std::printf("\ntest accuracy: %.2f%%\n", 100 * test_acc);
    return test_acc >= (cnn ? 0.98 : 0.97) ? 0 : 2;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

// The README's main job: loads a digits classifier exported from PyTorch
// (examples/data/digits_mlp.ember, made by tools/make_model_fixtures.py), runs it on the best
// device present, fine-tunes it for an epoch on the bundled 8×8 digits with a progress bar,
// reports test accuracy before and after, and saves the tuned model.
// Usage: finetune_digits [--model M.ember] [--device best|cpu|cuda] [--epochs N] [--output OUT.ember]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "ember.h"

using namespace ember;

namespace {

double accuracy(const Model& model, const Tensor& x, const Tensor& y) {
  NoGradGuard no_grad;
  Tensor predicted = argmax(model.forward({x})[0], 1);
  return mean(eq(predicted, y).to(kFloat32)).item<double>();
}

void progress(int64_t done, int64_t total, double loss) {
  const int width = 30;
  const int filled = static_cast<int>(width * done / total);
  std::printf("\r  [%s%s] %4lld/%lld images  loss %.4f", std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), static_cast<long long>(done), static_cast<long long>(total),
              loss);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fine-tune the bundled PyTorch digits classifier with ember"};
  std::string model_path = std::string(EMBER_DIGITS_DIR) + "/digits_mlp.ember", device_name = "best";
  std::string data_dir = EMBER_DIGITS_DIR, output = "digits_mlp_tuned.ember";
  int epochs = 1;
  double lr = 1e-2;
  app.add_option("--model", model_path, "the exported model")->capture_default_str();
  app.add_option("--device", device_name, "best (a GPU where present), cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training images")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", lr, "Adam's learning rate")->capture_default_str();
  app.add_option("--data", data_dir, "folder holding digits_images.npy and digits_labels.npy");
  app.add_option("--output", output, "where to save the fine-tuned model")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const Device device = parse_device(device_name);
    manual_seed(0);
    Model model = load(model_path, device);
    std::printf("ember %s: loaded %s (%lld parameters, exported by %s with torch %s) on %s\n", version(),
                model_path.c_str(), static_cast<long long>(model.parameter_count()), model.graph().producer.c_str(),
                model.graph().torch_version.c_str(), device.str().c_str());

    // [N, 64] pixels in [0, 1]; the same split as the PyTorch training: every fifth image is a test image.
    Tensor images = load_npy(data_dir + "/digits_images.npy").to(kFloat32);
    Tensor labels = load_npy(data_dir + "/digits_labels.npy");
    const int64_t n = images.sizes()[0];
    Tensor x = div(reshape(images, {n, 64}), 16.0);
    std::vector<int64_t> train_rows, test_rows;
    for (int64_t i = 0; i < n; ++i) (i % 5 == 0 ? test_rows : train_rows).push_back(i);
    Tensor train_idx = from_vector(train_rows, {static_cast<int64_t>(train_rows.size())});
    Tensor test_idx = from_vector(test_rows, {static_cast<int64_t>(test_rows.size())});
    Tensor x_train = index_select(x, 0, train_idx).to(device), y_train = index_select(labels, 0, train_idx).to(device);
    Tensor x_test = index_select(x, 0, test_idx).to(device), y_test = index_select(labels, 0, test_idx).to(device);
    const int64_t n_train = x_train.sizes()[0];

    const double before = accuracy(model, x_test, y_test);
    std::printf("test accuracy before fine-tuning: %.2f%% (%lld images)\n", 100 * before,
                static_cast<long long>(x_test.sizes()[0]));
    model.train();
    nn::AdamOptions options;
    options.lr = lr;
    nn::Adam optimizer(model.parameters(), options);
    const int64_t batch = 32;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      std::printf("epoch %d/%d\n", epoch, epochs);
      Tensor perm = randperm(n_train, {kInt64}).to(device);
      double loss_sum = 0;
      int batches = 0;
      for (int64_t start = 0; start < n_train; start += batch) {
        const int64_t end = std::min(start + batch, n_train);
        Tensor idx = perm.slice(0, start, end);
        Tensor loss = nn::cross_entropy(model.forward({index_select(x_train, 0, idx)})[0], index_select(y_train, 0, idx));
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>();
        ++batches;
        progress(end, n_train, loss_sum / batches);
      }
      std::printf("\n");
    }
    model.eval();
    const double after = accuracy(model, x_test, y_test);
    std::printf("test accuracy after fine-tuning:  %.2f%%\n", 100 * after);
    model.save(output);
    std::printf("saved %s\n", output.c_str());
    return after >= before ? 0 : 2;
  } catch (const Error& e) {
    std::cerr << "error (" << error_code_name(e.code()) << "): " << e.what() << "\n";
    return 1;
  }
}

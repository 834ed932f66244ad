// The atomic-save check's helper (issue 10; tools/test.sh drives it):
//   save_loop loop MODEL OUT.ember CKPT   saves MODEL to OUT.ember and a checkpoint of a small
//                                         network (weights and Adam state, ~1 MB) to CKPT, again
//                                         and again until killed;
//   save_loop model-once MODEL OUT.ember CKPT, save_loop ckpt-once MODEL OUT.ember CKPT
//                                         save the one file once; exit 3 with the error on failure;
//   save_loop check OUT.ember CKPT        loads both; exit 0 when both are whole.
// The test SIGKILLs `loop` at random points and checks each time that the files still load,
// and runs `once` with a file-size limit (a full disk) and checks the old files are untouched.
#include <cstdio>
#include <string>

#include "ember.h"

using namespace ember;

namespace {

struct Net {
  nn::Sequential net;
  nn::Adam opt;
  Net() : net(make()), opt(net.parameters(), {.lr = 1e-3}) {}
  static nn::Sequential make() {
    manual_seed(1);
    nn::Sequential s;
    s.push_back(std::make_shared<nn::Linear>(256, 512));
    s.push_back(std::make_shared<nn::ReLU>());
    s.push_back(std::make_shared<nn::Linear>(512, 64));
    return s;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "check" && argc == 4) {
      Model m = load(argv[2]);
      Net n;
      load_checkpoint(argv[3], n.net, n.opt);
      return 0;
    }
    if ((mode == "loop" || mode == "model-once" || mode == "ckpt-once") && argc == 5) {
      Model m = load(argv[2]);
      Net n;
      // One optimizer step, so the checkpoint holds Adam's moments too.
      nn::mse_loss(n.net.forward(ones({2, 256})), zeros({2, 64})).backward();
      n.opt.step();
      for (int64_t step = 0;; ++step) {
        if (mode != "ckpt-once") m.save(argv[3]);
        if (mode != "model-once") save_checkpoint(argv[4], n.net, n.opt, step);
        if (mode != "loop") return 0;
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "save_loop: %s\n", e.what());
    return 3;
  }
  std::fprintf(stderr, "usage: save_loop loop|model-once|ckpt-once MODEL OUT.ember CKPT | save_loop check OUT.ember CKPT\n");
  return 2;
}

// A program built against an installed ember (tools/check-install.sh builds it with meson and
// with CMake): a tensor op, a module and the C API's version.
#include <ember.h>           // pkg-config's cflags: -I<prefix>/include/ember
#include <capi/ember_c.h>

#include <cstdio>

int main() {
  ember::manual_seed(0);
  ember::nn::Linear layer(4, 2);
  ember::Tensor y = layer(ember::ones({3, 4}));
  std::printf("ember %s: output %s, C API %s\n", ember::version(), ember::shape_str(y.sizes()).c_str(), ember_version());
  return y.sizes() == ember::Shape{3, 2} ? 0 : 1;
}

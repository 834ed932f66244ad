// Grad mode: whether ops record the graph (per thread, on by default), and guards for it.
#pragma once

namespace ember {

bool grad_enabled();
void set_grad_enabled(bool enabled);

/// Turns recording off for its lifetime (inference, optimizer updates), like torch.no_grad().
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Turns recording on (or to `enabled`) for its lifetime, like torch.enable_grad().
class EnableGradGuard {
 public:
  explicit EnableGradGuard(bool enabled = true) : previous_(grad_enabled()) { set_grad_enabled(enabled); }
  ~EnableGradGuard() { set_grad_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace ember

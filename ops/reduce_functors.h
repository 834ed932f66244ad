// Reducers: how each reduction starts, steps and combines accumulators, written once for the
// CPU and CUDA loops (host/device code). A is the accumulator type (double on the CPU for
// every float type, float on CUDA for float32 and below, int64 for integers).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "runtime/philox.h"  // EMBER_HD

namespace ember::reduce {

template <typename A> EMBER_HD inline A lowest() {
  if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
  else return std::numeric_limits<A>::lowest();
}
template <typename A> EMBER_HD inline A highest() {
  if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
  else return std::numeric_limits<A>::max();
}
template <typename A> EMBER_HD inline bool is_nan(A x) { return x != x; }

template <typename A>
struct Sum {
  using Acc = A;
  EMBER_HD Acc identity() const { return A(0); }
  EMBER_HD Acc step(Acc a, A x, int64_t) const { return a + x; }
  EMBER_HD Acc combine(Acc a, Acc b) const { return a + b; }
};

template <typename A>
struct Prod {
  using Acc = A;
  EMBER_HD Acc identity() const { return A(1); }
  EMBER_HD Acc step(Acc a, A x, int64_t) const { return a * x; }
  EMBER_HD Acc combine(Acc a, Acc b) const { return a * b; }
};

/// Max (or min) of the values; NaN wins, as in PyTorch.
template <typename A, bool kMax>
struct Extreme {
  using Acc = A;
  EMBER_HD Acc identity() const { return kMax ? lowest<A>() : highest<A>(); }
  EMBER_HD Acc step(Acc a, A x, int64_t) const { return combine(a, x); }
  // One select: a NaN in a is kept (no comparison with it is true), a NaN in b is taken.
  EMBER_HD Acc combine(Acc a, Acc b) const { return ((kMax ? b > a : b < a) || is_nan(b)) ? b : a; }
};

/// The first index of the max (or min); NaN wins.
template <typename A, bool kMax>
struct ArgExtreme {
  struct Acc {
    A value;
    int64_t index;  // -1: nothing seen yet
  };
  EMBER_HD Acc identity() const { return {A(0), -1}; }
  EMBER_HD static bool better(A x, A best) {
    if (is_nan(best)) return false;
    if (is_nan(x)) return true;
    return kMax ? x > best : x < best;
  }
  EMBER_HD Acc step(Acc a, A x, int64_t i) const {
    return (a.index < 0 || better(x, a.value)) ? Acc{x, i} : a;
  }
  // Ties (and two NaNs) keep the smaller index, so the result does not depend on how the
  // elements were split among threads.
  EMBER_HD Acc combine(Acc a, Acc b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    if (better(b.value, a.value)) return b;
    if (better(a.value, b.value)) return a;
    return b.index < a.index ? b : a;
  }
};

/// Any (kAll = false) or all of the elements are nonzero.
template <bool kAll>
struct Truth {
  using Acc = bool;
  EMBER_HD Acc identity() const { return kAll; }
  template <typename X>
  EMBER_HD Acc step(Acc a, X x, int64_t) const { return kAll ? (a && x != X(0)) : (a || x != X(0)); }
  EMBER_HD Acc combine(Acc a, Acc b) const { return kAll ? (a && b) : (a || b); }
};

/// Welford's running mean and sum of squared deviations, combined with Chan's formula: stable
/// in one pass.
template <typename A>
struct Welford {
  struct Acc {
    A mean, m2;
    int64_t n;
  };
  double correction = 1;
  EMBER_HD Acc identity() const { return {A(0), A(0), 0}; }
  EMBER_HD Acc step(Acc a, A x, int64_t) const {
    a.n += 1;
    A d = x - a.mean;
    a.mean += d / A(a.n);
    a.m2 += d * (x - a.mean);
    return a;
  }
  EMBER_HD Acc combine(Acc a, Acc b) const {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    int64_t n = a.n + b.n;
    A d = b.mean - a.mean;
    A nb_over_n = A(b.n) / A(n);
    return {a.mean + d * nb_over_n, a.m2 + b.m2 + d * d * A(a.n) * nb_over_n, n};
  }
  /// m2 / max(0, n - correction): 0/0 gives NaN, x/0 gives inf, as in PyTorch.
  EMBER_HD A variance(Acc a) const {
    A denom = A(a.n) - A(correction);
    return a.m2 / (denom > A(0) ? denom : A(0));
  }
};

/// Vector p-norm: sum |x|^p then ^(1/p); p = inf / -inf take the max / min of |x|; p = 0 counts
/// nonzeros.
template <typename A>
struct Norm {
  using Acc = A;
  double p = 2;
  EMBER_HD Acc identity() const {
    return std::isinf(p) ? (p > 0 ? A(0) : highest<A>()) : A(0);
  }
  EMBER_HD Acc step(Acc a, A x, int64_t) const {
    A ax = x < A(0) ? -x : x;
    if (is_nan(x)) return x;
    if (p == 2) return a + ax * ax;
    if (p == 1) return a + ax;
    if (p == 0) return a + (ax != A(0) ? A(1) : A(0));
    if (std::isinf(p)) return combine(a, ax);
    return a + std::pow(ax, A(p));
  }
  EMBER_HD Acc combine(Acc a, Acc b) const {
    if (is_nan(a)) return a;
    if (is_nan(b)) return b;
    if (std::isinf(p)) return p > 0 ? (b > a ? b : a) : (b < a ? b : a);
    return a + b;
  }
  EMBER_HD A finish(Acc a) const {
    if (p == 2) return std::sqrt(a);
    if (p == 1 || p == 0 || std::isinf(p)) return a;
    return std::pow(a, A(1.0 / p));
  }
};

}  // namespace ember::reduce

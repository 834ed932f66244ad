// Vector forms of libm's expf, tanhf and erff for the CPU element-wise loops, from glibc's
// libmvec. glibc's <math.h> declares them as having SIMD forms only under -ffast-math; declared
// here again with GCC's simd attribute, a contiguous loop calling them (the unary functors,
// gelu's backward, softmax's exponentials) is vectorised into calls of their 4-wide SSE forms
// (_ZGVbN4v_expf, ...), chosen at load time for the CPU by glibc. Per element (one core of the
// CI-like machine, session 16): gelu 11.8 -> 1.0 ns, tanh 11.2 -> 1.2 ns, expf 3.5 -> 0.95 ns
// (softmax's double exp was 5.2 ns).
// Accuracy over dense float sweeps against double libm (tests/test_unary.cpp measures it):
// expf 2.8 ulps, erff 1.9, tanhf 1.0 (libm's scalar forms: 0.5, 1.0, 2.1), NaN, ±inf and
// subnormal results as libm's; PyTorch's CPU kernels (SLEEF) stay within about 1. libmvec's
// logf (3.9 ulps), sinf and cosf (2.1) are not declared: no model's time is in them, and their
// scalar forms are within 1 ulp.
// The loops are compiled with -fno-math-errno (meson.build): a function that may set errno
// (expf) cannot be vectorised, and ember never reads errno.
// Include this before the code whose loops should vectorise. Elsewhere (clang, which ignores
// the attribute; aarch64 and older glibc, whose libmvec lacks these forms) it declares nothing
// and the loops stay scalar.
#pragma once

#include <cmath>  // glibc's own declarations first, and __GLIBC_PREREQ

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)  // erff and tanhf came to libmvec in glibc 2.35
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float) noexcept;
__attribute__((simd("notinbranch"))) float tanhf(float) noexcept;
__attribute__((simd("notinbranch"))) float erff(float) noexcept;
}
#endif
#endif

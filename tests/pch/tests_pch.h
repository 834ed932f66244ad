// Precompiled header of the test suite (meson's cpp_pch): ember's public header, which every
// test includes. doctest stays out: test_main.cpp configures it before including it.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ember.h"

// ember: an embedded C++ tensor runtime. Include this one header.
#pragma once

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "ops/ops.h"
#include "runtime/allocator.h"
#include "runtime/cuda/cuda.h"
#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "runtime/parallel.h"
#include "runtime/rng.h"
#include "runtime/tensor.h"
#include "runtime/version.h"

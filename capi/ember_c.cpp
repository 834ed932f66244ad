// The C API (capi/ember_c.h) over ember::Model and ember::Tensor. Every entry point catches
// everything: a C caller gets a status and a message, never an exception across the boundary.
#include "capi/ember_c.h"

#include <cstring>
#include <new>
#include <string>

#include "ember.h"

struct ember_model {
  ember::Model model;
  ember::Device device;
};

struct ember_tensor {
  ember::Tensor tensor;
};

namespace {

thread_local std::string last_error;

ember_status fail(ember_status status, const std::string& message) {
  last_error = message;
  return status;
}

// Runs f, turning any exception into a status and this thread's message.
template <typename F>
ember_status guarded(F&& f) {
  try {
    f();
    return EMBER_OK;
  } catch (const ember::Error& e) {
    return fail(static_cast<ember_status>(static_cast<int>(e.code()) + 1), e.what());
  } catch (const std::bad_alloc&) {
    return fail(EMBER_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return fail(EMBER_INTERNAL, e.what());
  } catch (...) {
    return fail(EMBER_INTERNAL, "unknown error");
  }
}

ember::Device parse_device(const char* name) { return ember::parse_device(name ? name : "cpu"); }

}  // namespace

extern "C" {

const char* ember_last_error(void) { return last_error.c_str(); }

const char* ember_version(void) { return ember::version(); }

ember_status ember_model_load(const char* path, const char* device, ember_model** out) {
  if (!path || !out) return fail(EMBER_INVALID_ARGUMENT, "ember_model_load: path and out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    const ember::Device d = parse_device(device);
    *out = new ember_model{ember::load(path, d, {.trainable = false}), d};
  });
}

void ember_model_free(ember_model* model) { delete model; }

size_t ember_model_input_count(const ember_model* model) { return model ? model->model.graph().inputs.size() : 0; }

size_t ember_model_output_count(const ember_model* model) { return model ? model->model.graph().outputs.size() : 0; }

ember_status ember_model_run(ember_model* model, ember_tensor* const* inputs, size_t input_count,
                             ember_tensor** outputs, size_t output_count) {
  if (!model || (input_count && !inputs) || (output_count && !outputs))
    return fail(EMBER_INVALID_ARGUMENT, "ember_model_run: NULL model, inputs or outputs");
  if (output_count != ember_model_output_count(model))
    return fail(EMBER_INVALID_ARGUMENT, "ember_model_run: the model has " + std::to_string(ember_model_output_count(model)) +
                                            " outputs, output_count is " + std::to_string(output_count));
  for (size_t i = 0; i < output_count; ++i) outputs[i] = nullptr;
  return guarded([&] {
    ember::TensorList args;
    for (size_t i = 0; i < input_count; ++i) {
      if (!inputs[i]) throw ember::Error(ember::ErrorCode::InvalidArgument, "ember_model_run: input " + std::to_string(i) + " is NULL");
      args.push_back(inputs[i]->tensor.to(model->device));
    }
    ember::TensorList ys;
    {
      ember::NoGradGuard no_grad;
      ys = model->model.forward(args);
    }
    for (size_t i = 0; i < output_count; ++i) outputs[i] = new ember_tensor{ys[i]};
  });
}

ember_status ember_tensor_from_data(ember_dtype dtype, const int64_t* shape, size_t ndim, const void* data,
                                    ember_tensor** out) {
  if (!out || (ndim && !shape)) return fail(EMBER_INVALID_ARGUMENT, "ember_tensor_from_data: NULL shape or out");
  *out = nullptr;
  if (static_cast<int>(dtype) < 0 || static_cast<int>(dtype) > EMBER_FLOAT64)
    return fail(EMBER_INVALID_ARGUMENT, "ember_tensor_from_data: unknown dtype code " + std::to_string(dtype));
  return guarded([&] {
    ember::Shape s(shape, shape + ndim);
    ember::Tensor t = ember::empty(s, {static_cast<ember::DType>(dtype)});
    if (t.nbytes() > 0) {
      if (!data) throw ember::Error(ember::ErrorCode::InvalidArgument, "ember_tensor_from_data: data is NULL");
      std::memcpy(t.data(), data, t.nbytes());
    }
    *out = new ember_tensor{t};
  });
}

void ember_tensor_free(ember_tensor* tensor) { delete tensor; }

ember_dtype ember_tensor_dtype(const ember_tensor* t) { return static_cast<ember_dtype>(t->tensor.dtype()); }

size_t ember_tensor_ndim(const ember_tensor* t) { return static_cast<size_t>(t->tensor.dim()); }

int64_t ember_tensor_dim(const ember_tensor* t, size_t i) {
  return i < static_cast<size_t>(t->tensor.dim()) ? t->tensor.sizes()[i] : -1;
}

size_t ember_tensor_nbytes(const ember_tensor* t) { return t->tensor.nbytes(); }

ember_status ember_tensor_copy_to(const ember_tensor* tensor, void* buffer, size_t capacity) {
  if (!tensor || (!buffer && capacity)) return fail(EMBER_INVALID_ARGUMENT, "ember_tensor_copy_to: NULL tensor or buffer");
  return guarded([&] {
    ember::Tensor c = tensor->tensor.to(ember::Device::cpu()).contiguous();
    if (c.nbytes() > capacity)
      throw ember::Error(ember::ErrorCode::InvalidArgument,
                         "ember_tensor_copy_to: the tensor holds " + std::to_string(c.nbytes()) +
                             " bytes, the buffer " + std::to_string(capacity));
    if (c.nbytes() > 0) std::memcpy(buffer, c.data(), c.nbytes());
  });
}

}  // extern "C"

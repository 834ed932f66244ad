/* ember's C API: load a .ember model, run it, pass tensors in and out, read errors. For
 * embedding ember from C and from other languages' foreign-function interfaces.
 *
 *   ember_model* m = NULL;
 *   if (ember_model_load("m.ember", "cuda", &m) != EMBER_OK) puts(ember_last_error());
 *   int64_t shape[2] = {1, 64};
 *   ember_tensor* x = NULL;
 *   ember_tensor_from_data(EMBER_FLOAT32, shape, 2, pixels, &x);   // copies pixels
 *   ember_tensor* y = NULL;
 *   ember_model_run(m, &x, 1, &y, 1);
 *   ember_tensor_copy_to(y, buffer, sizeof buffer);
 *   ember_tensor_free(x); ember_tensor_free(y); ember_model_free(m);
 *
 * Every function returns an ember_status; on failure ember_last_error() gives the message
 * (per thread, valid until the thread's next failing call). No function throws or aborts. */
#ifndef EMBER_C_H
#define EMBER_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EMBER_OK = 0,
  EMBER_INVALID_ARGUMENT = 1,
  EMBER_SHAPE_MISMATCH = 2,
  EMBER_DTYPE_MISMATCH = 3,
  EMBER_DEVICE_MISMATCH = 4,
  EMBER_OUT_OF_MEMORY = 5,
  EMBER_INVALID_MODEL = 6,
  EMBER_UNSUPPORTED = 7,
  EMBER_IO = 8,
  EMBER_CUDA = 9,
  EMBER_NCCL = 10,
  EMBER_INTERNAL = 11
} ember_status;

/* The element types, in the .ember format's order. */
typedef enum {
  EMBER_BOOL = 0, EMBER_UINT8 = 1, EMBER_INT8 = 2, EMBER_INT32 = 3, EMBER_INT64 = 4,
  EMBER_FLOAT16 = 5, EMBER_BFLOAT16 = 6, EMBER_FLOAT32 = 7, EMBER_FLOAT64 = 8
} ember_dtype;

typedef struct ember_model ember_model;
typedef struct ember_tensor ember_tensor;

/* The message of this thread's last failure ("" if none). */
const char* ember_last_error(void);
/* The library's version, e.g. "0.1.0". */
const char* ember_version(void);

/* device: "cpu", "cuda", "cuda:N" or "best". The model starts in evaluation mode. */
ember_status ember_model_load(const char* path, const char* device, ember_model** out);
void ember_model_free(ember_model* model);
size_t ember_model_input_count(const ember_model* model);
size_t ember_model_output_count(const ember_model* model);
/* Runs the model without recording gradients; outputs[i] are new tensors the caller frees. */
ember_status ember_model_run(ember_model* model, ember_tensor* const* inputs, size_t input_count,
                             ember_tensor** outputs, size_t output_count);

/* A new CPU tensor holding a copy of `data` (C order, numel × element size bytes). */
ember_status ember_tensor_from_data(ember_dtype dtype, const int64_t* shape, size_t ndim, const void* data,
                                    ember_tensor** out);
void ember_tensor_free(ember_tensor* tensor);
ember_dtype ember_tensor_dtype(const ember_tensor* tensor);
size_t ember_tensor_ndim(const ember_tensor* tensor);
int64_t ember_tensor_dim(const ember_tensor* tensor, size_t i);
size_t ember_tensor_nbytes(const ember_tensor* tensor);
/* Copies the tensor's elements (from any device) into `buffer` in C order; capacity in bytes. */
ember_status ember_tensor_copy_to(const ember_tensor* tensor, void* buffer, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_C_H */

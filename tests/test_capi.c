/* The C API from C: load the bundled digits model, run it, read the output, and the errors a
 * C caller sees. Usage: test_capi MODEL.ember; exit status 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "capi/ember_c.h"

static int failures = 0;

#define EXPECT(cond)                                               \
  do {                                                             \
    if (!(cond)) {                                                 \
      fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                  \
    }                                                              \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_capi MODEL.ember\n");
    return 2;
  }
  EXPECT(strlen(ember_version()) > 0);

  ember_model* m = NULL;
  EXPECT(ember_model_load(argv[1], "cpu", &m) == EMBER_OK);
  if (!m) return 1;
  EXPECT(ember_model_input_count(m) == 1);
  EXPECT(ember_model_output_count(m) == 1);

  /* Two identical images: two identical rows of logits. */
  float pixels[2 * 64];
  for (int i = 0; i < 64; ++i) pixels[i] = pixels[64 + i] = (float)(i % 17) / 16.0f;
  int64_t shape[2] = {2, 64};
  ember_tensor* x = NULL;
  EXPECT(ember_tensor_from_data(EMBER_FLOAT32, shape, 2, pixels, &x) == EMBER_OK);
  ember_tensor* y = NULL;
  EXPECT(ember_model_run(m, &x, 1, &y, 1) == EMBER_OK);
  if (!y) return 1;
  EXPECT(ember_tensor_dtype(y) == EMBER_FLOAT32);
  EXPECT(ember_tensor_ndim(y) == 2 && ember_tensor_dim(y, 0) == 2 && ember_tensor_dim(y, 1) == 10);
  EXPECT(ember_tensor_nbytes(y) == 2 * 10 * sizeof(float));
  float logits[20];
  EXPECT(ember_tensor_copy_to(y, logits, sizeof logits) == EMBER_OK);
  for (int i = 0; i < 10; ++i) {
    EXPECT(isfinite(logits[i]));
    EXPECT(logits[i] == logits[10 + i]);
  }

  /* Errors: a status and a message naming what was wrong; nothing aborts. */
  float small[4];
  EXPECT(ember_tensor_copy_to(y, small, sizeof small) == EMBER_INVALID_ARGUMENT);
  EXPECT(strstr(ember_last_error(), "80 bytes") != NULL);
  int64_t bad_shape[2] = {2, 63};
  ember_tensor* bad = NULL;
  EXPECT(ember_tensor_from_data(EMBER_FLOAT32, bad_shape, 2, pixels, &bad) == EMBER_OK);
  ember_tensor* unused = NULL;
  EXPECT(ember_model_run(m, &bad, 1, &unused, 1) == EMBER_SHAPE_MISMATCH);
  EXPECT(strstr(ember_last_error(), "should have shape [batch, 64]") != NULL);
  EXPECT(unused == NULL);
  ember_model* missing = NULL;
  EXPECT(ember_model_load("/nonexistent/model.ember", "cpu", &missing) == EMBER_IO);
  EXPECT(missing == NULL && strstr(ember_last_error(), "/nonexistent/model.ember") != NULL);
  EXPECT(ember_model_load(argv[1], "tpu", &missing) == EMBER_INVALID_ARGUMENT);
  EXPECT(ember_tensor_from_data((ember_dtype)42, shape, 2, pixels, &bad) == EMBER_INVALID_ARGUMENT);

  ember_tensor_free(bad);
  ember_tensor_free(x);
  ember_tensor_free(y);
  ember_model_free(m);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  else printf("C API: all checks passed\n");
  return failures ? 1 : 0;
}

// Forwards on CUDA for a build without the CUDA backend: unreachable in practice (no tensor
// can live on a CUDA device), but each still fails with a clear error naming the op.
#include "nn/fused_step.h"
#include "ops/attention.h"
#include "ops/binary.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/layer_norm.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/random.h"
#include "ops/reduce.h"
#include "ops/scan.h"
#include "ops/softmax.h"
#include "ops/sort.h"
#include "ops/unary.h"
#include "runtime/cuda_hooks.h"

namespace ember {

std::string flash_attention_sm90_refusal(const Tensor&, const Tensor&, const Tensor&) {
  return "this build has no CUDA backend";
}

#define EMBER_NO_CUDA(Class) \
  void Class::forward_cuda(const TensorList&, const TensorList&) { check_cuda_device(Device::cuda(0), name()); }

EMBER_NO_CUDA(FillOp)
EMBER_NO_CUDA(ArangeOp)
EMBER_NO_CUDA(LinspaceOp)
EMBER_NO_CUDA(EyeOp)
EMBER_NO_CUDA(CopyOp)
EMBER_NO_CUDA(WhereOp)
EMBER_NO_CUDA(ReduceOp)
EMBER_NO_CUDA(ArgReduceOp)
EMBER_NO_CUDA(GemmOp)
EMBER_NO_CUDA(IndexSelectOp)
EMBER_NO_CUDA(IndexAddRowsOp)
EMBER_NO_CUDA(GatherOp)
EMBER_NO_CUDA(ScatterOp)
EMBER_NO_CUDA(RandomOp)
EMBER_NO_CUDA(CrossEntropyOp)
EMBER_NO_CUDA(Conv2dOp)
EMBER_NO_CUDA(ConvEpilogueOp)
EMBER_NO_CUDA(Conv2dBackwardDataOp)
EMBER_NO_CUDA(Conv2dBackwardFilterOp)
EMBER_NO_CUDA(BatchNormOp)
EMBER_NO_CUDA(FlashAttentionOp)
EMBER_NO_CUDA(FlashAttentionFloatOp)
EMBER_NO_CUDA(SoftmaxOp)
EMBER_NO_CUDA(SoftmaxBackwardOp)
EMBER_NO_CUDA(LayerNormOp)
EMBER_NO_CUDA(LayerNormBackwardOp)
EMBER_NO_CUDA(AddLayerNormOp)
EMBER_NO_CUDA(CumsumOp)
EMBER_NO_CUDA(SortOp)
EMBER_NO_CUDA(SearchCdfOp)
EMBER_NO_CUDA(FlashAttentionBackwardOp)
EMBER_NO_CUDA(BatchNormBackwardOp)
EMBER_NO_CUDA(MaxPool2dOp)
EMBER_NO_CUDA(MaxPool2dBackwardOp)
EMBER_NO_CUDA(CrossEntropyBackwardOp)

template <typename F>
void UnaryOp<F>::forward_cuda(const TensorList&, const TensorList&) { check_cuda_device(Device::cuda(0), name()); }
template <typename F>
void BinaryOp<F>::forward_cuda(const TensorList&, const TensorList&) { check_cuda_device(Device::cuda(0), name()); }

#define X(F) template void UnaryOp<unary::F>::forward_cuda(const TensorList&, const TensorList&);
EMBER_FOR_EACH_UNARY(X)
#undef X
#define X(F) template void BinaryOp<binary::F>::forward_cuda(const TensorList&, const TensorList&);
EMBER_FOR_EACH_BINARY(X)
#undef X

}  // namespace ember

// ---- fused optimizer steps (CUDA only) ---------------------------------------------------------

namespace ember::nn::fused {

bool applies(const std::vector<Tensor>&) { return false; }

void adam_step(const TensorList&, const TensorList&, const TensorList&, const TensorList&, const TensorList&,
               const std::vector<int64_t>&, const AdamConfig&) {
  throw_error(ErrorCode::Unsupported, "[adam] ember was built without CUDA");
}

void rmsprop_step(const TensorList&, const TensorList&, const TensorList&, const TensorList&, const TensorList&,
                  const RMSpropConfig&) {
  throw_error(ErrorCode::Unsupported, "[rmsprop] ember was built without CUDA");
}

void sgd_step(const TensorList&, const TensorList&, const TensorList&, const std::vector<bool>&, const SGDConfig&) {
  throw_error(ErrorCode::Unsupported, "[sgd] ember was built without CUDA");
}

}  // namespace ember::nn::fused

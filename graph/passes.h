// Graph rewrites for inference: a loaded model run in evaluation mode without autograd computes
// the same values with fewer nodes. Each pass keeps value ids stable (a rewritten graph only
// gains values) and leaves the graph in the executor's order; the model's own graph, used for
// training and saving, is never touched — passes run on a copy (model/inference.h).
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/ops.h"
#include "runtime/tensor.h"

namespace ember::graph {

struct PassStats {
  int nodes_before = 0, nodes_after = 0;
  int identities_removed = 0;   // dropout in evaluation, detach, clones, casts to the same dtype
  int constants_folded = 0;     // nodes computed once from weights and constants
  int batch_norms_folded = 0;   // batch norms merged into the convolution before them
  int dead_nodes_removed = 0;   // nodes no output depends on
  int attention_blocks_fused = 0;  // exported nn.MultiheadAttention blocks without their copies
  int activations_fused = 0;       // relu / tanh-gelu run in the linear layer before them
  int conv_epilogues_fused = 0;    // relu / clamp (and a residual add) run in the convolution before them
  int add_norms_fused = 0;         // residual adds run in the layer norm after them
  int tensors_converted = 0;    // weights stored in reduced precision (convert_precision)
  std::string summary() const;
};

/// Nodes that return their input unchanged in evaluation mode (dropout, detach, a clone that
/// is not a graph output, a cast to the same dtype) are dropped and their readers read the
/// input.
int remove_identities(Graph& g);

/// A node whose inputs are all stored tensors (weights, buffers, constants) or folded values is
/// run once now; its outputs become stored constants. Outputs larger than `max_bytes` that are
/// not views of a stored tensor stay computed at run time (folding must not grow memory much).
int fold_constants(Graph& g, std::vector<Tensor>& stored, const RunContext& ctx, size_t max_bytes = 64u << 20);

/// A batch norm in evaluation mode reading only a convolution's output is folded into that
/// convolution: w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β, computed in float64 and stored in
/// the weight's dtype as new constants (the original weights stay, for training).
int fold_conv_batch_norm(Graph& g, std::vector<Tensor>& stored);

/// An exported nn.MultiheadAttention block (packed projection, as torch.export writes
/// F.multi_head_attention_forward: three head-splitting reshapes that must copy, then one on the
/// way out) is rewritten to read q, k and v as strided views of the projection, which the
/// attention kernels take in place: one copy per block instead of four. The old nodes are left
/// dead (remove_dead_nodes). Returns how many blocks were rewritten (graph/fuse_attention.cpp).
int fuse_exported_attention(Graph& g);

/// A relu, or a gelu with approximate="tanh", that alone reads a linear layer's output becomes
/// that linear's "activation" attribute: one GEMM with the bias and activation in its epilogue
/// (cuBLASLt on CUDA) instead of a GEMM, a bias copy and an activation pass. PyTorch's default
/// gelu (the error function) is not among cuBLASLt's epilogues and stays separate. Returns how
/// many activations moved.
int fuse_linear_activation(Graph& g);

/// A relu or clamp that alone reads a 2-d convolution's output, or that alone reads an add of
/// such an output and another value of the same shape (a ResNet block's skip connection),
/// becomes part of that convolution, and so does such an add with no activation after it: its "activation_min" / "activation_max" attributes and a
/// residual 4th input, run as one pass over the product's output after it (ConvEpilogueOp; on
/// CUDA the bias joins it), instead of a bias pass, an add and an activation pass. The fused
/// convolution takes the add's place in the graph. Returns how many activations moved.
int fuse_conv_activation(Graph& g);

/// A layer norm reading an add of two values of one shape (a transformer's residual stream)
/// becomes one "add_layer_norm" node in the add's place, giving the norm and the sum (which
/// the next residual add reads): one pass over the row instead of two kernels. Returns how many
/// pairs were fused.
int fuse_add_layer_norm(Graph& g);

/// Drops nodes none of the graph's outputs depend on.
int remove_dead_nodes(Graph& g);

/// Reduced precision: every float32 weight, buffer and constant becomes `dtype` (float16 or
/// bfloat16), and nodes that make float32 values (casts, full, arange) make `dtype` ones, so
/// activations flow in `dtype`; ops accumulate in float32 as they do for any half input.
/// Batch norms' weights and statistics stay float32. Graph inputs and outputs keep their
/// declared dtypes: the caller casts at the boundary (model/inference.cpp). Returns how many
/// stored tensors were converted.
int convert_precision(Graph& g, std::vector<Tensor>& stored, DType dtype);

/// All of the above, in an order where each enables the next.
PassStats optimize_for_inference(Graph& g, std::vector<Tensor>& stored, const RunContext& ctx);

}  // namespace ember::graph

// Transformer building blocks with PyTorch's parameter names and layouts, so state dicts move
// between the two: LayerNorm, RMSNorm, MultiheadAttention, TransformerEncoderLayer, and a
// GPT-style decoder built from them.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "nn/module.h"

namespace ember::nn {

/// weight (ones) and bias (zeros) over normalized_shape, as torch.nn.LayerNorm.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true,
                     TensorOptions options = {});
  Tensor forward(const Tensor& x) override;

 private:
  Shape shape_;
  double eps_;
  bool affine_, bias_;
};

/// weight (ones) over normalized_shape; eps defaults to the dtype's epsilon (torch.nn.RMSNorm).
class RMSNorm : public Module {
 public:
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt, bool elementwise_affine = true,
                   TensorOptions options = {});
  Tensor forward(const Tensor& x) override;

 private:
  Shape shape_;
  std::optional<double> eps_;
  bool affine_;
};

/// torch.nn.MultiheadAttention: in_proj_weight [3E, E] and in_proj_bias [3E] (xavier-uniform
/// and zeros), out_proj (Linear, bias zeroed). Inputs [L, B, E], or [B, L, E] with batch_first.
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0, bool bias = true,
                     bool batch_first = false, TensorOptions options = {});
  /// Self-attention without masks.
  Tensor forward(const Tensor& x) override { return forward(x, x, x); }
  /// key_padding_mask [B, S]: bool, true where a key is padding (ignored), or float (added).
  /// attn_mask [L, S] or [B·heads, L, S]: bool, true where attending is NOT allowed (PyTorch's
  /// convention for this module), or float (added). is_causal without attn_mask: query i sees
  /// keys 0..i.
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& key_padding_mask = Tensor(),
                 const Tensor& attn_mask = Tensor(), bool is_causal = false);
  const Tensor& in_proj_weight() const { return param(0); }

 private:
  int64_t embed_dim_, heads_;
  double dropout_;
  bool bias_, batch_first_;
  std::shared_ptr<Linear> out_proj_;
};

struct TransformerLayerOptions {
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";  // or "gelu"
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;  // pre-norm (GPT-style) instead of post-norm
  bool bias = true;
};

/// torch.nn.TransformerEncoderLayer: self_attn, linear1, dropout, linear2, norm1, norm2,
/// dropout1, dropout2.
class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, TransformerLayerOptions options = {},
                          TensorOptions tensor_options = {});
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor(), false); }
  /// Masks as MultiheadAttention's (src_mask is its attn_mask).
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask, bool is_causal);

 private:
  Tensor self_attention_block(const Tensor& x, const Tensor& mask, const Tensor& padding, bool is_causal);
  Tensor feed_forward_block(const Tensor& x);
  TransformerLayerOptions o_;
  std::shared_ptr<MultiheadAttention> self_attn_;
  std::shared_ptr<Linear> linear1_, linear2_;
  std::shared_ptr<Dropout> dropout_, dropout1_, dropout2_;
  std::shared_ptr<LayerNorm> norm1_, norm2_;
};

/// torch.nn.TransformerDecoderLayer: self_attn, multihead_attn (over the encoder's memory),
/// linear1, dropout, linear2, norm1, norm2, norm3, dropout1, dropout2, dropout3.
class TransformerDecoderLayer : public Module {
 public:
  TransformerDecoderLayer(int64_t d_model, int64_t nhead, TransformerLayerOptions options = {},
                          TensorOptions tensor_options = {});
  /// A decoder layer needs the encoder's output: use the overload with memory.
  Tensor forward(const Tensor& tgt) override;
  /// Masks as MultiheadAttention's; tgt_is_causal lets position i see targets 0..i.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                 const Tensor& memory_mask = Tensor(), const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor(), bool tgt_is_causal = false);

 private:
  Tensor feed_forward_block(const Tensor& x);
  TransformerLayerOptions o_;
  std::shared_ptr<MultiheadAttention> self_attn_, multihead_attn_;
  std::shared_ptr<Linear> linear1_, linear2_;
  std::shared_ptr<Dropout> dropout_, dropout1_, dropout2_, dropout3_;
  std::shared_ptr<LayerNorm> norm1_, norm2_, norm3_;
};

struct GPTConfig {
  int64_t vocab_size = 50257;
  int64_t block_size = 256;  // the longest sequence (learned positions)
  int64_t layers = 6, heads = 6, width = 384;
  double dropout = 0.1;
};

/// A GPT-2-style decoder: token and learned position embeddings (wte, wpe), pre-norm causal
/// TransformerEncoderLayers with GELU (h.0 ... h.N-1), a final LayerNorm (ln_f), and the
/// output head tied to wte; embeddings initialised N(0, 0.02) as GPT-2's. forward(tokens
/// [B, T] int64) gives logits [B, T, vocab].
class GPT : public Module {
 public:
  explicit GPT(GPTConfig config, TensorOptions options = {});
  Tensor forward(const Tensor& tokens) override;
  const GPTConfig& config() const { return config_; }

 private:
  GPTConfig config_;
  std::shared_ptr<Embedding> wte_, wpe_;
  std::shared_ptr<Dropout> drop_;
  std::shared_ptr<ModuleList> h_;
  std::shared_ptr<LayerNorm> ln_f_;
};

}  // namespace ember::nn

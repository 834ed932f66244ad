#include "nn/transformer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "ops/ops.h"
#include "runtime/error.h"

namespace ember::nn {

namespace {

TensorOptions float_options(TensorOptions o) {
  if (!o.dtype) o.dtype = kFloat32;
  return o;
}

}  // namespace

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine, bool bias, TensorOptions options)
    : shape_(std::move(normalized_shape)), eps_(eps), affine_(elementwise_affine), bias_(bias && elementwise_affine) {
  options = float_options(options);
  if (affine_) register_parameter("weight", ones(shape_, options));
  if (bias_) register_parameter("bias", zeros(shape_, options));
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, shape_, affine_ ? param(0) : Tensor(), bias_ ? param(1) : Tensor(), eps_);
}

RMSNorm::RMSNorm(Shape normalized_shape, std::optional<double> eps, bool elementwise_affine, TensorOptions options)
    : shape_(std::move(normalized_shape)), eps_(eps), affine_(elementwise_affine) {
  if (affine_) register_parameter("weight", ones(shape_, float_options(options)));
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, shape_, affine_ ? param(0) : Tensor(), eps_); }

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout, bool bias,
                                       bool batch_first, TensorOptions options)
    : embed_dim_(embed_dim), heads_(num_heads), dropout_(dropout), bias_(bias), batch_first_(batch_first) {
  EMBER_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, InvalidArgument,
              "[MultiheadAttention] embed_dim (", embed_dim, ") must be a positive multiple of num_heads (", num_heads,
              ")");
  options = float_options(options);
  Tensor w = empty({3 * embed_dim, embed_dim}, options);
  init::xavier_uniform_(w);
  register_parameter("in_proj_weight", w);
  if (bias) register_parameter("in_proj_bias", zeros({3 * embed_dim}, options));
  out_proj_ = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias, options));
  if (bias) {
    NoGradGuard no_grad;
    zero_(out_proj_->bias());
  }
}

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask, const Tensor& attn_mask, bool is_causal) {
  EMBER_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3, InvalidArgument,
              "[MultiheadAttention] expected 3-d query, key and value (", batch_first_ ? "[B, L, E]" : "[L, B, E]",
              "), got ", shape_str(query.sizes()), ", ", shape_str(key.sizes()), ", ", shape_str(value.sizes()));
  EMBER_CHECK(query.size(-1) == embed_dim_, ShapeMismatch, "[MultiheadAttention] expected embed_dim ", embed_dim_,
              ", got query of shape ", shape_str(query.sizes()));
  // Batch first from here on: [B, L, E].
  const Tensor q_in = batch_first_ ? query : transpose(query, 0, 1);
  const Tensor k_in = batch_first_ ? key : transpose(key, 0, 1);
  const Tensor v_in = batch_first_ ? value : transpose(value, 0, 1);
  const int64_t B = q_in.size(0), L = q_in.size(1), S = k_in.size(1), E = embed_dim_, H = heads_, D = E / H;
  const Tensor& w = param(0);
  const Tensor b = bias_ ? param(1) : Tensor();
  auto part = [&](const Tensor& t, int64_t i) { return t.defined() ? t.slice(0, i * E, (i + 1) * E) : Tensor(); };
  auto project = [&](const Tensor& x, int64_t i) {
    Tensor bi = part(b, i);
    return linear(x, part(w, i), bi.defined() ? std::optional<Tensor>(bi) : std::nullopt);
  };
  Tensor q, k, v;
  if (query.is_same(key) && key.is_same(value)) {
    // Self-attention: one product for q, k and v.
    Tensor qkv = linear(q_in, w, b.defined() ? std::optional<Tensor>(b) : std::nullopt);
    q = qkv.slice(-1, 0, E);
    k = qkv.slice(-1, E, 2 * E);
    v = qkv.slice(-1, 2 * E, 3 * E);
  } else {
    q = project(q_in, 0);
    k = project(k_in, 1);
    v = project(v_in, 2);
  }
  auto heads = [&](const Tensor& t, int64_t n) { return transpose(reshape(t, {B, n, H, D}), 1, 2); };
  q = heads(q, L);
  k = heads(k, S);
  v = heads(v, S);

  // One additive (or boolean "may attend") mask for SDPA, from PyTorch's two masks.
  Tensor mask;
  auto merge = [&](Tensor m, const char* what) {
    if (m.dtype() == kBool) m = masked_fill(zeros(m.sizes(), {q.dtype(), q.device()}), m, -INFINITY);
    else EMBER_CHECK(is_floating(m.dtype()), DTypeMismatch, "[MultiheadAttention] ", what,
                     " must be bool or floating-point, got ", m.dtype());
    mask = mask.defined() ? add(mask, m.to(q.dtype())) : m.to(q.dtype());
  };
  if (attn_mask.defined()) {
    EMBER_CHECK((attn_mask.dim() == 2 && attn_mask.size(0) == L && attn_mask.size(1) == S) ||
                    (attn_mask.dim() == 3 && attn_mask.size(0) == B * H && attn_mask.size(1) == L &&
                     attn_mask.size(2) == S),
                ShapeMismatch, "[MultiheadAttention] attn_mask must be [", L, ", ", S, "] or [", B * H, ", ", L, ", ",
                S, "], got ", shape_str(attn_mask.sizes()));
    merge(attn_mask.dim() == 3 ? reshape(attn_mask, {B, H, L, S}) : attn_mask, "attn_mask");
  }
  if (key_padding_mask.defined()) {
    EMBER_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == B && key_padding_mask.size(1) == S,
                ShapeMismatch, "[MultiheadAttention] key_padding_mask must be [", B, ", ", S, "], got ",
                shape_str(key_padding_mask.sizes()));
    merge(reshape(key_padding_mask, {B, 1, 1, S}), "key_padding_mask");
  }
  const bool causal = is_causal && !mask.defined();
  Tensor out = scaled_dot_product_attention(q, k, v, mask, is_training() ? dropout_ : 0.0, causal);
  out = reshape(transpose(out, 1, 2), {B, L, E});
  out = (*out_proj_)(out);
  return batch_first_ ? out : transpose(out, 0, 1);
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead, TransformerLayerOptions options,
                                                 TensorOptions t)
    : o_(std::move(options)) {
  EMBER_CHECK(o_.activation == "relu" || o_.activation == "gelu", InvalidArgument,
              "[TransformerEncoderLayer] activation must be \"relu\" or \"gelu\", got \"", o_.activation, "\"");
  self_attn_ = register_module("self_attn", std::make_shared<MultiheadAttention>(d_model, nhead, o_.dropout, o_.bias,
                                                                                 o_.batch_first, t));
  linear1_ = register_module("linear1", std::make_shared<Linear>(d_model, o_.dim_feedforward, o_.bias, t));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(o_.dropout));
  linear2_ = register_module("linear2", std::make_shared<Linear>(o_.dim_feedforward, d_model, o_.bias, t));
  norm1_ = register_module("norm1", std::make_shared<LayerNorm>(Shape{d_model}, o_.layer_norm_eps, true, o_.bias, t));
  norm2_ = register_module("norm2", std::make_shared<LayerNorm>(Shape{d_model}, o_.layer_norm_eps, true, o_.bias, t));
  dropout1_ = register_module("dropout1", std::make_shared<Dropout>(o_.dropout));
  dropout2_ = register_module("dropout2", std::make_shared<Dropout>(o_.dropout));
}

Tensor TransformerEncoderLayer::self_attention_block(const Tensor& x, const Tensor& mask, const Tensor& padding,
                                                     bool is_causal) {
  return (*dropout1_)(self_attn_->forward(x, x, x, padding, mask, is_causal));
}

Tensor TransformerEncoderLayer::feed_forward_block(const Tensor& x) {
  Tensor h = (*linear1_)(x);
  h = o_.activation == "gelu" ? gelu(h) : relu(h);
  return (*dropout2_)((*linear2_)((*dropout_)(h)));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask,
                                        bool is_causal) {
  Tensor x = src;
  if (o_.norm_first) {
    x = add(x, self_attention_block((*norm1_)(x), src_mask, src_key_padding_mask, is_causal));
    return add(x, feed_forward_block((*norm2_)(x)));
  }
  x = (*norm1_)(add(x, self_attention_block(x, src_mask, src_key_padding_mask, is_causal)));
  return (*norm2_)(add(x, feed_forward_block(x)));
}

TransformerDecoderLayer::TransformerDecoderLayer(int64_t d_model, int64_t nhead, TransformerLayerOptions options,
                                                 TensorOptions t)
    : o_(std::move(options)) {
  EMBER_CHECK(o_.activation == "relu" || o_.activation == "gelu", InvalidArgument,
              "[TransformerDecoderLayer] activation must be \"relu\" or \"gelu\", got \"", o_.activation, "\"");
  auto attention = [&] {
    return std::make_shared<MultiheadAttention>(d_model, nhead, o_.dropout, o_.bias, o_.batch_first, t);
  };
  auto norm = [&] { return std::make_shared<LayerNorm>(Shape{d_model}, o_.layer_norm_eps, true, o_.bias, t); };
  self_attn_ = register_module("self_attn", attention());
  multihead_attn_ = register_module("multihead_attn", attention());
  linear1_ = register_module("linear1", std::make_shared<Linear>(d_model, o_.dim_feedforward, o_.bias, t));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(o_.dropout));
  linear2_ = register_module("linear2", std::make_shared<Linear>(o_.dim_feedforward, d_model, o_.bias, t));
  norm1_ = register_module("norm1", norm());
  norm2_ = register_module("norm2", norm());
  norm3_ = register_module("norm3", norm());
  dropout1_ = register_module("dropout1", std::make_shared<Dropout>(o_.dropout));
  dropout2_ = register_module("dropout2", std::make_shared<Dropout>(o_.dropout));
  dropout3_ = register_module("dropout3", std::make_shared<Dropout>(o_.dropout));
}

Tensor TransformerDecoderLayer::forward(const Tensor&) {
  throw_error(ErrorCode::InvalidArgument,
              "[TransformerDecoderLayer] needs the encoder's output: call forward(tgt, memory, ...)");
}

Tensor TransformerDecoderLayer::feed_forward_block(const Tensor& x) {
  Tensor h = (*linear1_)(x);
  h = o_.activation == "gelu" ? gelu(h) : relu(h);
  return (*dropout3_)((*linear2_)((*dropout_)(h)));
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                                        const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                                        const Tensor& memory_key_padding_mask, bool tgt_is_causal) {
  auto self_block = [&](const Tensor& x) {
    return (*dropout1_)(self_attn_->forward(x, x, x, tgt_key_padding_mask, tgt_mask, tgt_is_causal));
  };
  auto memory_block = [&](const Tensor& x) {
    return (*dropout2_)(multihead_attn_->forward(x, memory, memory, memory_key_padding_mask, memory_mask));
  };
  Tensor x = tgt;
  if (o_.norm_first) {
    x = add(x, self_block((*norm1_)(x)));
    x = add(x, memory_block((*norm2_)(x)));
    return add(x, feed_forward_block((*norm3_)(x)));
  }
  x = (*norm1_)(add(x, self_block(x)));
  x = (*norm2_)(add(x, memory_block(x)));
  return (*norm3_)(add(x, feed_forward_block(x)));
}

GPT::GPT(GPTConfig config, TensorOptions options) : config_(config) {
  EMBER_CHECK(config.vocab_size > 0 && config.block_size > 0 && config.layers > 0, InvalidArgument,
              "[GPT] expected positive vocab_size, block_size and layers");
  wte_ = register_module("wte", std::make_shared<Embedding>(config.vocab_size, config.width, std::nullopt, options));
  wpe_ = register_module("wpe", std::make_shared<Embedding>(config.block_size, config.width, std::nullopt, options));
  drop_ = register_module("drop", std::make_shared<Dropout>(config.dropout));
  h_ = register_module("h", std::make_shared<ModuleList>());
  TransformerLayerOptions layer;
  layer.dim_feedforward = 4 * config.width;
  layer.dropout = config.dropout;
  layer.activation = "gelu";
  layer.batch_first = true;
  layer.norm_first = true;
  for (int64_t i = 0; i < config.layers; ++i)
    h_->push_back(std::make_shared<TransformerEncoderLayer>(config.width, config.heads, layer, options));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(Shape{config.width}, 1e-5, true, true, options));
  // GPT-2's initialisation of the embeddings, N(0, 0.02): with nn::Embedding's N(0, 1) the
  // tied head's first logits would be about √width times too large.
  NoGradGuard no_grad;
  init::normal_(wte_->weight(), 0, 0.02);
  init::normal_(wpe_->weight(), 0, 0.02);
}

Tensor GPT::forward(const Tensor& tokens) {
  EMBER_CHECK(tokens.dim() == 2, InvalidArgument, "[GPT] expected tokens [B, T], got shape ",
              shape_str(tokens.sizes()));
  const int64_t T = tokens.size(1);
  EMBER_CHECK(T <= config_.block_size, InvalidArgument, "[GPT] a sequence of ", T, " tokens is longer than block_size ",
              config_.block_size);
  Tensor positions = arange(T, {kInt64, tokens.device()});
  Tensor x = (*drop_)(add((*wte_)(tokens), (*wpe_)(positions)));
  for (size_t i = 0; i < h_->size(); ++i)
    x = static_cast<TransformerEncoderLayer&>((*h_)[i]).forward(x, Tensor(), Tensor(), /*is_causal=*/true);
  return matmul((*ln_f_)(x), transpose(wte_->weight(), 0, 1));  // the head shares wte's weight
}

}  // namespace ember::nn

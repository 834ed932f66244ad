"""Small transformers for the exporter's tests and the golden fixture: a GPT-2-style decoder
(learned positions, tied embeddings, causal attention through nn.TransformerEncoderLayer), a
BERT-style encoder (nn.TransformerEncoder with a padding mask from an attention-mask input) and
a Llama-style model (RMSNorm, SwiGLU, rotary embeddings, grouped-query causal attention)."""
import math

import torch
from torch import nn
from torch.nn import functional as F


class TinyGPT(nn.Module):
    def __init__(self, vocab=50, block=16, layers=2, heads=2, width=32):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(block, width)
        self.h = nn.ModuleList(
            nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t, device=tokens.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device)
        for layer in self.h:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.ln_f(x) @ self.wte.weight.T


class TinyBERT(nn.Module):
    """tokens [B, T] and attention_mask [B, T] (1 = token, 0 = padding) → logits of the first token."""

    def __init__(self, vocab=60, block=16, layers=2, heads=4, width=32, classes=3):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(block, width)
        self.norm = nn.LayerNorm(width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, 0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, tokens, attention_mask):
        x = self.norm(self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device)))
        x = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        return self.head(x[:, 0])


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, width=32, heads=4, kv_heads=2, hidden=64, block=16):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, width // heads
        self.attention_norm = nn.RMSNorm(width, eps=1e-6)
        self.wq = nn.Linear(width, width, bias=False)
        self.wk = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(width, width, bias=False)
        self.ffn_norm = nn.RMSNorm(width, eps=1e-6)
        self.w1 = nn.Linear(width, hidden, bias=False)
        self.w2 = nn.Linear(hidden, width, bias=False)
        self.w3 = nn.Linear(width, hidden, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        angles = torch.outer(torch.arange(block).float(), inv)
        angles = torch.cat([angles, angles], dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # [B, T, width]
        b, t, _ = x.shape
        h = self.attention_norm(x)
        q = self.wq(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.wk(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = self.cos[:t], self.sin[:t]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.wo(a.transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


def inputs(name, batch=2, t=12):
    g = torch.Generator().manual_seed(0)
    if name == "gpt":
        return (torch.randint(0, 50, (batch, t), generator=g),)
    if name == "bert":
        mask = torch.ones(batch, t, dtype=torch.int64)
        mask[1, t // 2:] = 0
        return torch.randint(0, 60, (batch, t), generator=g), mask
    return (torch.randn(batch, t, 32, generator=g),)


def make(name):
    torch.manual_seed(0)
    return {"gpt": TinyGPT, "bert": TinyBERT, "llama": LlamaBlock}[name]()

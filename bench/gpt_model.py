"""The GPT of ember's benchmarks in PyTorch: the same architecture as ember's nn::GPT (token
and learned position embeddings, pre-norm causal nn.TransformerEncoderLayers with GELU, a final
LayerNorm, the head tied to the token embedding). 6 layers, width 384, 6 heads, T 256, GPT-2's
vocabulary, no dropout."""
import torch
from torch import nn

CONFIG = dict(vocab=50257, block=256, layers=6, heads=6, width=384)


class GPT(nn.Module):
    def __init__(self, vocab, block, layers, heads, width):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(block, width)
        self.h = nn.ModuleList(
            nn.TransformerEncoderLayer(width, heads, 4 * width, 0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        nn.init.normal_(self.wte.weight, std=0.02)  # as GPT-2 and ember's nn::GPT
        nn.init.normal_(self.wpe.weight, std=0.02)

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t, device=tokens.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device)
        for layer in self.h:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.ln_f(x) @ self.wte.weight.T


def make(device="cuda"):
    torch.manual_seed(0)
    return GPT(**CONFIG).to(device)


def batch(size, device="cuda"):
    g = torch.Generator(device="cpu").manual_seed(1)
    tokens = torch.randint(0, CONFIG["vocab"], (size, CONFIG["block"] + 1), generator=g).to(device)
    return tokens[:, :-1].contiguous(), tokens[:, 1:].reshape(-1).contiguous()

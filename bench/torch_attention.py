"""PyTorch's side of bench_attention.cpp: F.scaled_dot_product_attention in bfloat16, batch 4,
16 heads, head dim 64, T 1024 and 4096, forward alone and forward + backward, without and with
is_causal, with PyTorch's default kernel choice (FlashAttention-2 on an H100); then float32
inference at the GPT's and vit_b_16's shapes. Medians of
event-timed batches after warm-up (torch_cuda.gpu_ms). Rows as bench_attention's.
Usage: python3 bench/torch_attention.py OUT.csv"""
import sys

import torch
import torch.nn.functional as F
from torch_cuda import gpu_ms


def main():
    B, H, D = 4, 16, 64
    rows = []
    for T in [1024, 4096]:
        for causal in [False, True]:
            torch.manual_seed(0)
            q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                       for _ in range(3))
            dout = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)
            flops = 4.0 * B * H * T * T * D * (0.5 if causal else 1.0)
            tag = f"attn_T{T}" + ("_causal" if causal else "")
            with torch.no_grad():
                fwd = gpu_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), inner=10, reps=11)

            def both():
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                torch.autograd.grad(out, (q, k, v), dout)

            rows.append((tag + "_fwd", fwd, flops))
            rows.append((tag + "_fwd_bwd", gpu_ms(both, inner=5, reps=11), 3.5 * flops))
    # Float32 inference at the GPT's and vit_b_16's shapes (PyTorch picks its memory-efficient
    # kernel for float32).
    with torch.no_grad():
        for tag, batch, heads, T, causal in [("attn_f32_gpt_b16", 16, 6, 256, True),
                                             ("attn_f32_vit_b32", 32, 12, 197, False)]:
            torch.manual_seed(0)
            q, k, v = (torch.randn(batch, heads, T, D, device="cuda") for _ in range(3))
            flops = 4.0 * batch * heads * T * T * D * (0.5 if causal else 1.0)
            rows.append((tag + "_fwd", gpu_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                              inner=10, reps=11), flops))
    with open(sys.argv[1], "a") as f:
        for case, ms, flops in rows:
            print(f"torch {case:26s} {ms:9.3f} ms {flops / ms / 1e9:7.1f} TFLOP/s")
            f.write(f"{case},{ms:.6f},0,{flops:.0f}\n")


if __name__ == "__main__":
    main()

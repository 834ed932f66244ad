"""PyTorch's side of bench_gpt.cpp: the GPT of gpt_model.py in eager mode on one GPU, fp32
with TF32 off: inference (no_grad, eval) at batch 1 and 16, and a training step at batch 16
(forward, cross-entropy over the vocabulary, backward, AdamW). Medians of event-timed batches
after warm-up (torch_cuda.gpu_ms). Writes CSV rows gpt_infer_b1, gpt_infer_b16, gpt_train_b16.
Usage: python3 bench/torch_gpt.py OUT.csv [--only ROW]   (one row alone, e.g. to profile it)"""
import sys

import torch
import gpt_model
from torch_cuda import gpu_ms


def wanted(row):
    return "--only" not in sys.argv or sys.argv[sys.argv.index("--only") + 1] == row


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = gpt_model.make()
    rows = []
    model.eval()
    with torch.no_grad():
        for b in [1, 16]:
            if not wanted(f"gpt_infer_b{b}"):
                continue
            x, _ = gpt_model.batch(b)
            rows.append((f"gpt_infer_b{b}", gpu_ms(lambda: model(x), inner=5, reps=11)))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    x, y = gpt_model.batch(16)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x).view(-1, gpt_model.CONFIG["vocab"]), y).backward()
        opt.step()

    if wanted("gpt_train_b16"):
        rows.append(("gpt_train_b16", gpu_ms(step, inner=3, reps=11)))
    with open(sys.argv[1], "a") as f:
        for case, ms in rows:
            print(f"torch {case:16s} {ms:9.3f} ms")
            f.write(f"{case},{ms:.6f},0,0\n")


if __name__ == "__main__":
    main()

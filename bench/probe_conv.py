"""Diagnostic: which cuDNN kernels PyTorch runs for a 3×3 convolution's forward and backward
(64 channels, 56×56, batch 64, fp32, TF32 off; the layer of bench_cnn --layers), their times
from torch.profiler, and the gradients' error against float64.
Usage: python3 bench/probe_conv.py"""
import torch
import torch.nn.functional as F

torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
x = torch.randn(64, 64, 56, 56, device="cuda", requires_grad=True)
w = torch.randn(64, 64, 3, 3, device="cuda", requires_grad=True)
g = torch.randn(64, 64, 56, 56, device="cuda")
for _ in range(3):
    torch.autograd.grad(F.conv2d(x, w, padding=1), (x, w), g)
torch.cuda.synchronize()
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        torch.autograd.grad(F.conv2d(x, w, padding=1), (x, w), g)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=90))
dx, dw = torch.autograd.grad(F.conv2d(x, w, padding=1), (x, w), g)
x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
dx64, dw64 = torch.autograd.grad(F.conv2d(x64, w64, padding=1), (x64, w64), g.double())
rel = lambda a, r: ((a.double() - r).abs().max() / r.abs().max()).item()  # noqa: E731
print(f"torch conv3x3 max error / max value: input grad {rel(dx, dx64):.2e}, weight grad {rel(dw, dw64):.2e}")

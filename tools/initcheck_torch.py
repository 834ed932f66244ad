"""The same question as initcheck_cublas.cu, asked of PyTorch (no ember code): under
compute-sanitizer's initcheck, does reading what a half-precision cuBLAS GEMM or a channels-last
half-precision cuDNN convolution wrote get reported as a read of uninitialised memory?
Run as: compute-sanitizer --tool initcheck python3 tools/initcheck_torch.py CASE
CASE: float_gemm (the control), half_gemm, conv_half and conv_half_channels_last (forward and
backward; NCHW half inputs make cuDNN transpose to and from NHWC around its tensor-core kernels)."""
import sys

import torch


def main(case):
    torch.manual_seed(0)
    cuda = torch.device("cuda")
    if case in ("float_gemm", "half_gemm"):
        dtype = torch.float32 if case == "float_gemm" else torch.float16
        a = torch.randn(512, 512, device=cuda, dtype=dtype)
        b = torch.randn(512, 512, device=cuda, dtype=dtype)
        print("sum of a @ b:", (a @ b).float().sum().item())
    elif case in ("conv_half", "conv_half_channels_last"):
        layout = torch.channels_last if case == "conv_half_channels_last" else torch.contiguous_format
        x = torch.randn(3, 16, 13, 11, device=cuda, dtype=torch.float16).to(memory_format=layout)
        x.requires_grad_()
        conv = torch.nn.Conv2d(16, 32, 3, padding=1).to(cuda, torch.float16).to(memory_format=layout)
        y = conv(x)
        y.float().sum().backward()
        print("sums:", y.float().sum().item(), x.grad.float().sum().item(), conv.weight.grad.float().sum().item())
    else:
        sys.exit("usage: initcheck_torch.py float_gemm|half_gemm|conv_half|conv_half_channels_last")
    torch.cuda.synchronize()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")

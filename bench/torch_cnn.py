"""PyTorch's side of bench_cnn.cpp: exports torchvision's resnet18 and resnet50 (random weights,
seed 0, symbolic batch) to DIR/<name>.ember for ember, then times the same cases in PyTorch
eager, fp32 with TF32 off (ember's default): evaluation-mode forward at batch 1 and 64 under
no_grad, and a training step at batch 64 (forward, cross-entropy, backward, SGD); each with
cuDNN's heuristics (PyTorch's default) and with torch.backends.cudnn.benchmark (rows *_tuned);
then single resnet50 layers at batch 64 (bench_cnn --layers). Writes CSV rows
case,milliseconds,0,0 to OUT.
Usage: python3 bench/torch_cnn.py DIR OUT.csv [resnet18,resnet50]"""
import copy
import os
import sys

import torch
import torchvision
from torch_cuda import gpu_ms as _gpu_ms

from ember_export import export


def gpu_ms(fn, inner):
    """Median of 11 event-timed batches of `inner` calls (bench_cnn.cpp times the same way)."""
    return _gpu_ms(fn, inner=inner, reps=11)


def main():
    folder, out = sys.argv[1], sys.argv[2]
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else ["resnet18", "resnet50"]
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for name in names:
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        export(model, (torch.randn(2, 3, 224, 224),), os.path.join(folder, f"{name}.ember"), dynamic_batch=True)
        for tuned in [False, True]:
            torch.backends.cudnn.benchmark = tuned
            rows += time_model(name, model, "_tuned" if tuned else "")
    torch.backends.cudnn.benchmark = False
    rows += time_layers()
    with open(out, "w") as f:
        for case, ms in rows:
            print(f"torch {case:26s} {ms:9.3f} ms")
            f.write(f"{case},{ms:.6f},0,0\n")


def time_model(name, model, suffix):
    rows = []
    model = copy.deepcopy(model).cuda().eval()
    for batch in [1, 64]:
        x = torch.randn(batch, 3, 224, 224, device="cuda")
        with torch.no_grad():
            ms = gpu_ms(lambda: model(x), 20 if batch == 1 else 5)
        rows.append((f"{name}_infer_b{batch}{suffix}", ms))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(64, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (64,), device="cuda")

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    rows.append((f"{name}_train_b64{suffix}", gpu_ms(step, 3)))
    del model, opt
    torch.cuda.empty_cache()
    return rows


def time_layers():
    def leaf(*shape):
        return torch.randn(*shape, device="cuda", requires_grad=True)

    torch.manual_seed(0)
    rows = []
    x, g = leaf(64, 256, 56, 56), torch.randn(64, 256, 56, 56, device="cuda")
    w, b = leaf(256), leaf(256)
    rm, rv = torch.zeros(256, device="cuda"), torch.ones(256, device="cuda")
    F = torch.nn.functional
    rows.append(("layer_bn_train_fwd_bwd", gpu_ms(
        lambda: torch.autograd.grad(F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5), (x, w, b), g), 5)))
    rows.append(("layer_relu_fwd_bwd", gpu_ms(lambda: torch.autograd.grad(F.relu(x), (x,), g), 5)))
    xp, gp = leaf(64, 64, 112, 112), torch.randn(64, 64, 56, 56, device="cuda")
    rows.append(("layer_maxpool_fwd_bwd", gpu_ms(
        lambda: torch.autograd.grad(F.max_pool2d(xp, 3, 2, 1), (xp,), gp), 5)))
    xc, wc, gc = leaf(64, 64, 56, 56), leaf(64, 64, 3, 3), torch.randn(64, 64, 56, 56, device="cuda")
    with torch.no_grad():
        rows.append(("layer_conv3x3_fwd", gpu_ms(lambda: F.conv2d(xc, wc, padding=1), 5)))
    rows.append(("layer_conv3x3_fwd_bwd", gpu_ms(
        lambda: torch.autograd.grad(F.conv2d(xc, wc, padding=1), (xc, wc), gc), 5)))
    x1, w1 = leaf(64, 256, 56, 56), leaf(64, 256, 1, 1)
    with torch.no_grad():
        rows.append(("layer_conv1x1_fwd", gpu_ms(lambda: F.conv2d(x1, w1), 5)))
    rows.append(("layer_conv1x1_fwd_bwd", gpu_ms(lambda: torch.autograd.grad(F.conv2d(x1, w1), (x1, w1), gc), 5)))
    return rows


if __name__ == "__main__":
    main()

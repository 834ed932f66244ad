"""PyTorch's side of bench_cnn.cpp: exports torchvision's resnet18 and resnet50 (random weights,
seed 0, symbolic batch) to DIR/<name>.ember for ember, then times the same cases in PyTorch
eager, fp32 with TF32 off (ember's default): evaluation-mode forward at batch 1 and 64 under
no_grad, and a training step at batch 64 (forward, cross-entropy, backward, SGD). Writes CSV
rows case,milliseconds,0,0 to OUT.
Usage: python3 bench/torch_cnn.py DIR OUT.csv"""
import os
import statistics
import sys

import torch
import torchvision

from ember_export import export


def gpu_ms(fn, inner):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(11):
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    return statistics.median(times)


def main():
    folder, out = sys.argv[1], sys.argv[2]
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for name in ["resnet18", "resnet50"]:
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        export(model, (torch.randn(2, 3, 224, 224),), os.path.join(folder, f"{name}.ember"), dynamic_batch=True)
        model = model.cuda()
        for batch in [1, 64]:
            x = torch.randn(batch, 3, 224, 224, device="cuda")
            with torch.no_grad():
                ms = gpu_ms(lambda: model(x), 20 if batch == 1 else 5)
            rows.append((f"{name}_infer_b{batch}", ms))
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(64, 3, 224, 224, device="cuda")
        y = torch.randint(0, 1000, (64,), device="cuda")

        def step():
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        rows.append((f"{name}_train_b64", gpu_ms(step, 3)))
        del model, opt
        torch.cuda.empty_cache()
    with open(out, "w") as f:
        for case, ms in rows:
            print(f"torch {case:20s} {ms:9.3f} ms")
            f.write(f"{case},{ms:.6f},0,0\n")


if __name__ == "__main__":
    main()

"""PyTorch's side of bench_load.cpp, and the ~100 MB model both load. Exports the model with
ember_export to MODEL.ember, saves its state_dict (torch.save and safetensors), then times in
this process: torch.load + module construction + load_state_dict + .cuda() + first output,
and the same from safetensors. Medians of 11 runs after a warm-up.
Usage: PYTHONPATH=tools/ember_export python3 bench/torch_load.py MODEL.ember [batch]"""
import os
import statistics
import sys
import time

import torch
from torch import nn


def make_model():
    # 25.2 M float32 parameters: about 100 MB.
    return nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1024))


def timed(fn, reps=11):
    fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    path = sys.argv[1]
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.manual_seed(0)
    model = make_model().eval()
    from ember_export import export
    export(model, (torch.randn(2, 1024),), path, dynamic_batch=True, trainable=False)
    pt, st = path + ".pt", path + ".safetensors"
    torch.save(model.state_dict(), pt)
    from safetensors.torch import load_file, save_file
    save_file(model.state_dict(), st)
    x = torch.ones(batch, 1024, device="cuda")

    def from_pt():
        m = make_model()
        m.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
        m = m.cuda().eval()
        with torch.no_grad():
            m(x)

    def from_st():
        m = make_model()
        m.load_state_dict(load_file(st))
        m = m.cuda().eval()
        with torch.no_grad():
            m(x)

    def torch_load_only():
        torch.load(pt, map_location="cpu", weights_only=True)

    print(f"model: {os.path.getsize(path) / 1e6:.1f} MB (.ember), {os.path.getsize(pt) / 1e6:.1f} MB (.pt)")
    print(f"torch.load alone: {timed(torch_load_only):.2f} ms")
    print(f"torch.load + construct + load_state_dict + cuda + first output: {timed(from_pt):.2f} ms")
    print(f"safetensors load_file + construct + load_state_dict + cuda + first output: {timed(from_st):.2f} ms")


if __name__ == "__main__":
    main()

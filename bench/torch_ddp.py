"""PyTorch's side of bench_ddp.cpp.
  python3 bench/torch_ddp.py export DIR            writes DIR/resnet50.ember (torchvision, seed 0)
  torchrun --nproc-per-node N bench/torch_ddp.py time OUT.csv [--model resnet50|gpt] [--batch B] [--steps S]
times a training step of torchvision's resnet50 (forward, cross-entropy, backward, SGD with
momentum) or of gpt_model.py's GPT (AdamW, random tokens) at a fixed batch per GPU — world 1 the plain model, larger worlds under
DistributedDataParallel with its defaults (25 MB buckets, broadcast_buffers) — and the NCCL
all-reduce of a 1 GiB float32 tensor; fp32 with TF32 off, cuDNN's heuristics (ember's default).
Medians over event-timed steps after warm-up; the slowest rank's median. Rows as bench_ddp's."""
import argparse
import os
import statistics
import sys

import torch
import torch.distributed as dist
import torchvision


def export(folder):
    from ember_export import export as to_ember
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    to_ember(model, (torch.randn(2, 3, 224, 224),), os.path.join(folder, "resnet50.ember"), dynamic_batch=True)


def timed(fn, steps):
    ms = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        ms.append(start.elapsed_time(end))
    return statistics.median(ms)


def slowest(value, world):
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def time_ddp(out, name, batch, steps):
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    if world > 1:
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    rank = dist.get_rank() if world > 1 else 0
    torch.manual_seed(0)
    if name == "gpt":
        import gpt_model
        model = gpt_model.make().train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        x, y = gpt_model.batch(batch)
        vocab = gpt_model.CONFIG["vocab"]
    else:
        model = torchvision.models.resnet50(weights=None).cuda().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        torch.manual_seed(1 + rank)
        x = torch.randn(batch, 3, 224, 224, device="cuda")
        y = torch.arange(batch, device="cuda") % 1000
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local]) if world > 1 else model

    def step():
        opt.zero_grad(set_to_none=True)
        out = net(x)
        if name == "gpt":
            out = out.view(-1, vocab)
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()

    for _ in range(5):
        step()
    if world > 1:
        dist.barrier()
    rows = [(f"ddp_{name}_w{world}_b{batch}", slowest(timed(step, steps), world))]
    if rank == 0:
        ms = rows[0][1]
        unit = "sequences" if name == "gpt" else "images"
        print(f"torch {name}: {world} GPU(s), batch {batch} per GPU: step {ms:.2f} ms, "
              f"{world * batch * 1000 / ms:.1f} {unit}/s")
    if world > 1 and name != "gpt":  # the bandwidth once per machine, beside the resnet50 rows
        n = (1 << 30) // 4
        t = torch.ones(n, device="cuda")
        for _ in range(3):
            dist.all_reduce(t)
        ms = slowest(timed(lambda: dist.all_reduce(t), 10), world)
        rows.append((f"allreduce_1gib_w{world}", ms))
        if rank == 0:
            busbw = n * 4 / (ms / 1000) * 2 * (world - 1) / world / 1e9
            print(f"torch all_reduce 1 GiB float32 on {world} GPUs: {ms:.3f} ms, bus bandwidth {busbw:.1f} GB/s")
    if world > 1:
        dist.destroy_process_group()
    if rank == 0:
        with open(out, "a") as f:
            for case, ms in rows:
                f.write(f"{case},{ms:.6f},0,0\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["export", "time"])
    p.add_argument("path")
    p.add_argument("--model", choices=["resnet50", "gpt"], default="resnet50")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    if a.mode == "export":
        export(a.path)
    else:
        time_ddp(a.path, a.model, a.batch, a.steps)


if __name__ == "__main__":
    sys.exit(main())

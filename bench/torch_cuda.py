"""PyTorch's side of bench_cuda: the same cases, timed the same way (device events around
repeated calls, median after warm-up), written as CSV rows case,milliseconds,bytes,flops.
Usage: python3 bench/torch_cuda.py out.csv"""
import statistics
import sys
import time

import torch

import torch_train


def gpu_ms(fn, inner=10, reps=25):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / inner)
    return statistics.median(times)


def host_ms(fn, inner=2000, reps=15):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner * 1e3)
    return statistics.median(times)


def enqueue_ms(fn, reps=25):
    """Host time per launch of 256 launches from an idle GPU (see bench_cuda.cpp)."""
    for _ in range(100):
        fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(256):
            fn()
        times.append((time.perf_counter() - t0) / 256 * 1e3)
    return statistics.median(times)


def main():
    rows = []

    def report(name, ms, nbytes=0, flops=0):
        rows.append(f"{name},{ms:.6f},{nbytes:.0f},{flops:.0f}")
        rate = f"{flops / ms / 1e9:8.1f} TFLOP/s" if flops else f"{nbytes / ms / 1e6:8.1f} GB/s"
        print(f"  {name:26s} {ms:9.4f} ms  {rate}")

    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    torch.manual_seed(0)
    n = 1 << 26
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    z = torch.empty(n, device="cuda")
    b4 = 4.0 * n
    report("copy_f32", gpu_ms(lambda: z.copy_(x)), 2 * b4)
    report("add_f32", gpu_ms(lambda: torch.add(x, y)), 3 * b4)
    report("mul_f32", gpu_ms(lambda: torch.mul(x, y)), 3 * b4)
    report("mul_scalar_f32", gpu_ms(lambda: torch.mul(x, 2.0)), 2 * b4)
    report("gelu_f32", gpu_ms(lambda: torch.nn.functional.gelu(x)), 2 * b4)
    report("exp_f32", gpu_ms(lambda: torch.exp(x)), 2 * b4)
    xh, yh = x.bfloat16(), y.bfloat16()
    report("add_bf16", gpu_ms(lambda: torch.add(xh, yh)), 3 * 2.0 * n)
    m, row = x.view(8192, 8192), y[:8192]
    report("add_broadcast_row_f32", gpu_ms(lambda: torch.add(m, row)), 2 * b4)
    report("add_transposed_f32", gpu_ms(lambda: torch.add(m.t(), m)), 3 * b4)
    report("sum_all_f32", gpu_ms(lambda: torch.sum(x)), b4)
    report("sum_lastdim_f32", gpu_ms(lambda: torch.sum(m, 1)), b4)
    report("sum_firstdim_f32", gpu_ms(lambda: torch.sum(m, 0)), b4)
    report("amax_all_f32", gpu_ms(lambda: torch.amax(x)), b4)
    del x, y, z, xh, yh, m, row

    s = 4096
    flops = 2.0 * s ** 3
    for name, dtype, tf32 in [("f32", torch.float32, False), ("tf32", torch.float32, True),
                              ("bf16", torch.bfloat16, False), ("f16", torch.float16, False)]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = torch.randn(s, s, device="cuda", dtype=dtype), torch.randn(s, s, device="cuda", dtype=dtype)
        report(f"matmul_{name}", gpu_ms(lambda: torch.matmul(a, b)), 0, flops)
    torch.backends.cuda.matmul.allow_tf32 = False
    a, b = torch.randn(64, 512, 512, device="cuda"), torch.randn(64, 512, 512, device="cuda")
    report("bmm_64x512_f32", gpu_ms(lambda: torch.matmul(a, b.transpose(1, 2))), 0, 2.0 * 64 * 512 ** 3)

    report("train_step_mlp_b256", torch_train.train_step_ms(gpu_ms))

    t1, t2 = torch.ones(1, device="cuda"), torch.ones(1, device="cuda")
    report("enqueue_add_1elem", enqueue_ms(lambda: torch.add(t1, t2)))
    report("enqueue_add__1elem", enqueue_ms(lambda: t1.add_(t2)))
    report("enqueue_mul_scalar_1elem", enqueue_ms(lambda: torch.mul(t1, 2.0)))
    report("alloc_free_4bytes", enqueue_ms(lambda: torch.empty(1, device="cuda")))
    report("sustained_add_1elem", host_ms(lambda: torch.add(t1, t2)))
    torch.cuda.synchronize()
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()

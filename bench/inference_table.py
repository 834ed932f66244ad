"""The side-by-side inference table of issue 9: the same exported models, the same inputs, on
one GPU in one run — PyTorch eager, PyTorch replaying a CUDA graph (and torch.compile with
--compile), and ember (`ember bench`, CUDA graphs on and off). Times are medians of device-event
timings per forward, queued back to back after warm-up; memory is the peak of tensors over one
eager forward beyond the weights and inputs (activations and outputs).
With --cpu THREADS,... the CPU table instead: PyTorch's CPU backend (torch.set_num_threads) and
`ember bench --device cpu` (OMP_NUM_THREADS) at each thread count, wall-clock medians of single
forwards after warm-up, batch 1 (and the MLP at 256); with --ablate, ember also with Eigen's own
GEMM threading (EMBER_GEMM_BLOCKS=0) instead of one output block per thread; with
--also-env NAME=VALUE,..., ember again with those variables (a before/after column: e.g.
LD_LIBRARY_PATH=an earlier build's folder runs the same CLI on that build's libember.so);
--cpu ... --export-only writes the CPU table's models to OUT_DIR and times nothing (for
tools/cpu-profile.sh).
ember runs with cuBLASLt's epilogues on (EMBER_GEMM_EPILOGUE=1; off by default in the library
until verified on a GPU). With --ablate, ember also runs (without CUDA graphs) with the load-time
fusions and cuBLASLt epilogues off (EMBER_FUSE_ATTENTION=0 EMBER_FUSE_ACTIVATIONS=0 EMBER_GEMM_EPILOGUE=0), printed
on each model's line: what those passes are worth.
With --libtorch BINARY (tools/build-libtorch-bench.sh), a libtorch column: the model traced to
TorchScript here and run from C++ by bench/libtorch_bench.cpp, timed the same way.
With --device-time TRACER (build-gpu/bench/libkernel_trace.so), a second table for the batch-1
rows: the device time of one forward's kernels and copies, PyTorch eager's (torch.profiler) and
ember's graph replay's (ember bench under the CUPTI tracer, run at two iteration counts so that
warm-up and set-up cancel out); both sides' kernel tables go to OUT_DIR/*_kernels.txt. It tells
a host-bound forward from a device-bound one: where ember's kernels alone take longer than half
of PyTorch's eager forward, "0.5x eager" needs faster kernels, not fewer launches.
Usage: python3 bench/inference_table.py EMBER_CLI OUT_DIR [--compile] [--ablate] [--libtorch BINARY]
                                        [--device-time TRACER] [--only NAME,...]
                                        [--cpu 16,2 [--also-env NAME=VALUE,...]]
(--only: names as in MODELS, with underscores for spaces: resnet50_fp16.)"""
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import gpt_model  # noqa: E402
from ember_export import UnsupportedOpsError, export  # noqa: E402
from torch_cuda import gpu_ms  # noqa: E402


def picked(name, only):
    """--only NAME,...: a model by its name, spaces written as underscores ("resnet50_fp16")."""
    return name in only or name.replace(" ", "_") in only


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def torchvision_model(name):
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    if name.startswith("vit"):
        # torchvision starts a ViT's head at zero, so every output would be 0 and the reduced-
        # precision error against fp32 would say nothing: a random head, as a trained one is.
        nn.init.normal_(model.heads.head.weight, std=0.02)
        nn.init.normal_(model.heads.head.bias, std=0.02)
    return model


def gpt():
    torch.manual_seed(0)
    return gpt_model.GPT(**gpt_model.CONFIG)


# name, constructor, input of batch b, batches
MODELS = [
    ("mlp", mlp, lambda b: torch.randn(b, 784), [1, 256]),
    ("resnet18", lambda: torchvision_model("resnet18"), lambda b: torch.randn(b, 3, 224, 224), [1, 64]),
    ("resnet50", lambda: torchvision_model("resnet50"), lambda b: torch.randn(b, 3, 224, 224), [1, 64]),
    ("resnet50 fp16", lambda: torchvision_model("resnet50"), lambda b: torch.randn(b, 3, 224, 224), [1, 64]),
    ("mobilenet_v2", lambda: torchvision_model("mobilenet_v2"), lambda b: torch.randn(b, 3, 224, 224), [1]),
    ("gpt", gpt, lambda b: gpt_model.batch(b, device="cpu")[0], [1, 16]),
    ("vit_b_16", lambda: torchvision_model("vit_b_16"), lambda b: torch.randn(b, 3, 224, 224), [1, 32]),
]


def torch_times(model, x, compile_too):
    """Eager, CUDA-graph replay (and torch.compile) ms per forward; activation peak MiB."""
    out = {}
    with torch.no_grad():
        model(x)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        model(x)
        torch.cuda.synchronize()
        out["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        out["eager"] = gpu_ms(lambda: model(x), inner=10, reps=15)
        static_x = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(static_x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = model(static_x)
        out["graph"] = gpu_ms(graph.replay, inner=10, reps=15)

        # What ember's replay does per forward: the input copied in, the output copied out to a
        # tensor the caller owns.
        def replay_with_copies():
            static_x.copy_(x)
            graph.replay()
            return static_y.clone()
        out["graph_io"] = gpu_ms(replay_with_copies, inner=10, reps=15)
        if compile_too:
            compiled = torch.compile(model)
            out["compile"] = gpu_ms(lambda: compiled(x), inner=10, reps=15)
    return out


UNFUSED = {"EMBER_FUSE_ATTENTION": "0", "EMBER_FUSE_ACTIVATIONS": "0", "EMBER_GEMM_EPILOGUE": "0"}
# cuBLASLt's epilogues are off by default until they have run on a GPU (cuda::set_gemm_epilogues):
# the table times ember with them on unless the environment says otherwise.
FUSED = {"EMBER_GEMM_EPILOGUE": os.environ.get("EMBER_GEMM_EPILOGUE", "1")}


def torch_device_ms(model, x, table_path, forwards=20):
    """Device time of one eager forward: its kernels, copies and sets, from torch.profiler (whose
    kernel table is written to table_path)."""
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad():
        model(x)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(forwards):
                model(x)
            torch.cuda.synchronize()
    busy_us = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    try:
        with open(table_path, "w") as f:
            f.write(f"{forwards} forwards\n")
            f.write(prof.key_averages().table(sort_by="self_device_time_total", row_limit=25))
    except Exception as err:  # the table is for reading; the time above is what is reported
        print(f"torch.profiler table not written: {err}", flush=True)
    return busy_us / forwards / 1e3


def ember_device_ms(cli, path, batch, half, tracer, table_path, counts=(20, 120)):
    """Device time of one replayed forward: `ember bench` (CUDA graphs on) under the CUPTI tracer at
    two iteration counts; the difference over the extra forwards leaves out warm-up, capture and
    the accuracy check. The longer run's kernel table is kept at table_path."""
    totals = []
    for iterations in counts:
        with tempfile.NamedTemporaryFile("r", suffix=".txt") as table:
            ember_times(cli, path, batch, True, half, {"LD_PRELOAD": tracer, "EMBER_TRACE_OUT": table.name,
                                                       "EMBER_TRACE_TOP": "25"}, iterations)
            text = table.read()
        if not text.startswith("device time"):
            raise RuntimeError(f"the tracer {tracer} wrote no table for {path} (was it preloaded?)")
        totals.append(float(text.split()[2]))  # "device time X ms in N kernel names"
    with open(table_path, "w") as f:
        f.write(f"ember bench, {counts[1]} forwards and its warm-up, capture and checks\n{text}")
    # ember bench runs its iterations twice: back to back, then one at a time for the latency.
    return (totals[1] - totals[0]) / (2 * (counts[1] - counts[0]))


def ember_times(cli, path, batch, graphs, half, env=None, iterations=100):
    cmd = [cli, "bench", path, "--device", "cuda", "--batch", str(batch), "--json", "--iterations", str(iterations)]
    if half:
        cmd += ["--dtype", "float16"]
    if not graphs:
        cmd.append("--no-cuda-graphs")
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **FUSED, **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def libtorch_ms(binary, model, x, path):
    """ms per forward of the traced model run from C++ (bench/libtorch_bench.cpp)."""
    with torch.no_grad():
        torch.jit.trace(model, (x,), check_trace=False).save(path)
    dtype = {torch.float32: "float32", torch.float16: "float16", torch.int64: "int64"}[x.dtype]
    cmd = [binary, path, dtype, ",".join(str(d) for d in x.shape)]
    if x.dtype == torch.int64:
        cmd.append(str(int(x.max()) + 1))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["median_ms"]


def torch_cpu_ms(model, x, reps):
    with torch.no_grad():
        for _ in range(3):
            model(x)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def ember_cpu(cli, path, batch, threads, reps, env=None):
    cmd = [cli, "bench", path, "--device", "cpu", "--batch", str(batch), "--json", "--warmup", "3",
           "--iterations", str(reps)]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main_cpu(cli, out_dir, thread_counts, only, ablate, also_env, export_only=False):
    """The CPU table: batch 1 of each float32 model (and the MLP at 256) at each thread count;
    with `ablate`, ember also with Eigen's own GEMM threading (EMBER_GEMM_BLOCKS=0) in the same run,
    with `also_env` (a dict), ember also with those environment variables."""
    rows = []
    for name, make, example, batches in MODELS:
        if name.endswith(" fp16") or (only and not picked(name, only)):
            continue
        model = make().eval()
        batches = [1, 256] if name == "mlp" else [1]
        for b in batches:
            path = os.path.join(out_dir, f"{name}_cpu_b{b}.ember")
            export(model, (example(b),), path)
            if export_only:
                print(f"exported {path}", flush=True)
                continue
            x = example(b)
            for threads in thread_counts:
                torch.set_num_threads(threads)
                reps = 20 if threads > 2 else 10
                t = torch_cpu_ms(model, x, reps)
                ej = ember_cpu(cli, path, b, threads, reps)
                e, mem = ej["median_ms"], ej["activation_peak_mib"]
                u = ember_cpu(cli, path, b, threads, reps, {"EMBER_GEMM_BLOCKS": "0"})["median_ms"] if ablate else None
                a = ember_cpu(cli, path, b, threads, reps, also_env)["median_ms"] if also_env else None
                rows.append((f"{name} b{b}", threads, t, e, u, a, mem))
                print(f"{name} b{b}, {threads} threads: torch {t:.3f} ms, ember {e:.3f} ms ({mem:.2f} MiB of activations)"
                      + (f", with Eigen's threading {u:.3f} ms" if ablate else "")
                      + (f", with {also_env} {a:.3f} ms" if also_env else ""), flush=True)
    if export_only:
        return
    print()
    extra = (" ember, Eigen's GEMM threading ms |" if ablate else "") + (
        f" ember with {' '.join(f'{k}={v}' for k, v in also_env.items())} ms | ember / that |" if also_env else "")
    print(f"| model | threads | torch CPU ms | ember CPU ms | ember / torch |{extra} ember activations MiB |")
    print("|---|---|---|---|---|" + ("---|" if ablate else "") + ("---|---|" if also_env else "") + "---|")
    for case, threads, t, e, u, a, mem in rows:
        print(f"| {case} | {threads} | {t:.3f} | {e:.3f} | {e / t:.2f} |" + (f" {u:.3f} |" if ablate else "")
              + (f" {a:.3f} | {e / a:.2f} |" if also_env else "") + f" {mem:.2f} |")


def main():
    cli, out_dir = sys.argv[1], sys.argv[2]
    compile_too = "--compile" in sys.argv
    ablate = "--ablate" in sys.argv
    libtorch = sys.argv[sys.argv.index("--libtorch") + 1] if "--libtorch" in sys.argv else None
    tracer = sys.argv[sys.argv.index("--device-time") + 1] if "--device-time" in sys.argv else None
    if tracer and not os.path.isfile(tracer):
        sys.exit(f"--device-time: no tracer at {tracer} (build it: ninja -C BUILD bench/libkernel_trace.so, "
                 "where CUPTI is installed)")
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    os.makedirs(out_dir, exist_ok=True)
    if "--cpu" in sys.argv:
        also_env = {}
        if "--also-env" in sys.argv:
            also_env = dict(kv.split("=", 1) for kv in sys.argv[sys.argv.index("--also-env") + 1].split(","))
        return main_cpu(cli, out_dir, [int(n) for n in sys.argv[sys.argv.index("--cpu") + 1].split(",")], only,
                        ablate, also_env, "--export-only" in sys.argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    device_rows = []  # (case, torch eager ms, torch device ms, ember graph ms, ember device ms)
    for name, make, example, batches in MODELS:
        if only and not picked(name, only):
            continue
        half = name.endswith(" fp16")  # the float32 export, run in float16 by both
        model = make().eval()
        path = os.path.join(out_dir, f"{name.split()[0]}.ember")
        try:
            export(model, (example(2),), path, dynamic_batch=True)
            static = False
        except UnsupportedOpsError as e:  # e.g. vit_b_16's class token expanded to the batch
            print(f"{name}: no dynamic batch ({e}); exported per batch size", flush=True)
            static = True
        model = model.cuda()
        if half:
            model = model.half()
        for b in batches:
            if static:
                path = os.path.join(out_dir, f"{name}_b{b}.ember")
                export(model.cpu(), (example(b),), path)
                model = model.cuda()
            x = example(b).cuda()
            if half:
                x = x.half()
            t = torch_times(model, x, compile_too)
            if libtorch:
                try:
                    t["libtorch"] = libtorch_ms(libtorch, model, x, os.path.join(out_dir, f"{name.split()[0]}_b{b}.pt"))
                except Exception as err:  # a model TorchScript cannot trace: the column says so
                    print(f"{name} b{b}: libtorch failed: {err}", flush=True)
                    t["libtorch"] = float("nan")
            e = ember_times(cli, path, b, True, half)
            e_eager = ember_times(cli, path, b, False, half)
            unfused = ""
            if ablate:
                u = ember_times(cli, path, b, False, half, UNFUSED)
                unfused = (f" | unfused (no graphs) {u['median_ms']:.3f} ms, nodes {u['nodes_after']}: fused / unfused "
                           f"{e_eager['median_ms'] / u['median_ms']:.3f}")
            rows.append((f"{name} b{b}", t, e, e_eager))
            if tracer and b == 1:
                tag = os.path.join(out_dir, f"{name.replace(' ', '_')}_b{b}")
                device_rows.append((f"{name} b{b}", t["eager"], torch_device_ms(model, x, tag + "_torch_kernels.txt"),
                                    e["median_ms"],
                                    ember_device_ms(cli, path, b, half, tracer, tag + "_ember_kernels.txt")))
                print(f"{name} b{b}: device time per forward, torch eager {device_rows[-1][2]:.3f} ms, "
                      f"ember replay {device_rows[-1][4]:.3f} ms", flush=True)
            print(f"{name} b{b}: torch eager {t['eager']:.3f} graph {t['graph']:.3f} (with input and output copies "
                  f"{t['graph_io']:.3f})" + (f" compile {t['compile']:.3f}" if compile_too else "") + " | ember graphs "
                  f"{e['median_ms']:.3f} (host {e['host_ms']:.3f} per call) eager {e_eager['median_ms']:.3f} "
                  f"(host {e_eager['host_ms']:.3f}) | peak MiB torch {t['peak_mib']:.1f} "
                  f"ember {e['activation_peak_mib']:.1f} (graphs {e['graph_memory_mib']:.1f}) | "
                  f"nodes {e['nodes_before']}->{e['nodes_after']} | {e['graph_replays']} replays, "
                  f"{e['graphs_dropped']} dropped | error vs fp32 {e['relative_error']:.2g}{unfused}", flush=True)
            print(f"{name} b{b}: ember eager memory {e_eager['activation_peak_mib']:.2f} MiB after warm-up (arena "
                  f"{e_eager['arena_mib']:.2f}, recorded peak {e_eager['planned_peak_mib']:.2f}, "
                  f"{e_eager['planned_recordings']} recorded, {e_eager['planned_fallbacks']} fallbacks), second call "
                  f"{e_eager['activation_second_call_mib']:.2f} MiB; at the recorded peak: "
                  + ", ".join(f"{mib:.2f} {node}" for mib, node in e_eager["peak_blocks"]), flush=True)
        del model
        torch.cuda.empty_cache()
    header = ("| model | torch eager ms | torch graph ms (with input/output copies) |" + (" torch.compile ms |" if compile_too else "") +
              (" libtorch ms |" if libtorch else "") +
              " ember ms (graphs) | ember ms (no graphs) | ember / eager | ember / torch graph |"
              " activations MiB torch / ember eager / ember graph memory |")
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for case, t, e, ee in rows:
        cols = [case, f"{t['eager']:.3f}", f"{t['graph']:.3f} ({t['graph_io']:.3f})"]
        if compile_too:
            cols.append(f"{t['compile']:.3f}")
        if libtorch:
            cols.append(f"{t['libtorch']:.3f}")
        cols += [f"{e['median_ms']:.3f}", f"{ee['median_ms']:.3f}", f"{e['median_ms'] / t['eager']:.2f}",
                 f"{e['median_ms'] / t['graph']:.2f}",
                 f"{t['peak_mib']:.1f} / {ee['activation_peak_mib']:.1f} / {e['graph_memory_mib']:.1f}"
                 + (" (graph dropped: slower)" if e.get("graphs_dropped") else "")]
        print("| " + " | ".join(cols) + " |")
    if device_rows:
        print()
        print("| model | torch eager ms | torch eager device ms | half of eager ms | ember graph ms | ember device ms |"
              " ember device / half of eager | ember graph - device ms |")
        print("|---|---|---|---|---|---|---|---|")
        for case, eager, torch_dev, graph, ember_dev in device_rows:
            print(f"| {case} | {eager:.3f} | {torch_dev:.3f} | {eager / 2:.3f} | {graph:.3f} | {ember_dev:.3f} | "
                  f"{ember_dev / (eager / 2):.2f} | {graph - ember_dev:.3f} |")


if __name__ == "__main__":
    main()

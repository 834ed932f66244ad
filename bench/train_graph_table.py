"""Training steps replayed as CUDA graphs (issue 9), side by side in one run on one GPU: PyTorch
eager, PyTorch with the whole step captured (torch.cuda.graph, as its CUDA-graphs guide does,
Adam with capturable=True), ember eager and ember's nn::GraphStep (`bench_train --graph-table`).
Each case is an MLP with cross-entropy, SGD with momentum or Adam, fp32; medians of 15
event-timed runs of 20 steps after warm-up.
Usage: python3 bench/train_graph_table.py BENCH_TRAIN"""
import subprocess
import sys

import torch

from torch_cuda import gpu_ms

CASES = [((784, 1024, 1024, 10), 256), ((64, 256, 256, 10), 64)]


def torch_case(widths, batch, adam):
    """(eager ms, CUDA-graph ms) per training step."""
    out = []
    for graphs in (False, True):
        torch.manual_seed(0)
        layers = []
        for i in range(len(widths) - 1):
            layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
            if i + 2 < len(widths):
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).cuda()
        if adam:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=graphs)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, widths[0], device="cuda")
        y = torch.randint(0, widths[-1], (batch,), device="cuda")

        def eager_step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        if not graphs:
            out.append(gpu_ms(eager_step, inner=20, reps=15))
            continue
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                eager_step()
        torch.cuda.current_stream().wait_stream(side)
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            loss = torch.nn.functional.cross_entropy(model(static_x), static_y)
            loss.backward()
            opt.step()

        def replay():
            static_x.copy_(x)
            static_y.copy_(y)
            graph.replay()

        out.append(gpu_ms(replay, inner=20, reps=15))
    return out


def main():
    r = subprocess.run([sys.argv[1], "--graph-table"], capture_output=True, text=True, check=True)
    ember = {line.split(",")[0]: line.split(",") for line in r.stdout.strip().splitlines()}
    print("| case | torch eager ms | torch graph ms | ember eager ms | ember graph ms | ember graph / torch graph "
          "| ember graph / torch eager | ember graph / ember eager |")
    print("|---|---|---|---|---|---|---|---|")
    for adam in (False, True):
        for widths, batch in CASES:
            name = "mlp_" + "_".join(map(str, widths)) + f"_b{batch}_" + ("adam" if adam else "sgd")
            t_eager, t_graph = torch_case(widths, batch, adam)
            e = ember[name]
            e_eager, e_graph = float(e[1]), float(e[2])
            note = f" (captures {e[3]}, replays {e[4]}{', ' + e[5] if len(e) > 5 else ''})"
            print(f"| {name}{note} | {t_eager:.4f} | {t_graph:.4f} | {e_eager:.4f} | {e_graph:.4f} | "
                  f"{e_graph / t_graph:.2f} | {e_graph / t_eager:.2f} | {e_graph / e_eager:.2f} |", flush=True)


if __name__ == "__main__":
    main()

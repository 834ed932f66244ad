"""PyTorch's side of bench_train.cpp: one training step of an MLP 784-1024-1024-10 at batch 256
(fp32, SGD), timed by the caller's timer. Run alone, prints the median of three timings.
Usage: python3 bench/torch_train.py"""
import statistics

import torch


def train_step_ms(timer):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                                torch.nn.ReLU(), torch.nn.Linear(1024, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    xb, yb = torch.randn(256, 784, device="cuda"), torch.randint(0, 10, (256,), device="cuda")

    def step():
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(7):
        step()
    return timer(step, inner=20, reps=15)


if __name__ == "__main__":
    import torch_cuda
    print(f"torch train step: {statistics.median(train_step_ms(torch_cuda.gpu_ms) for _ in range(3)):.4f} ms")

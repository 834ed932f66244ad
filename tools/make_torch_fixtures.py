"""Writes tests/fixtures/torch_reference.txt: optimizer trajectories, learning-rate schedules and
loss values computed by PyTorch (float64), which tests/test_nn.cpp compares ember against.
Run where PyTorch is installed (the GPU machine has it):  python3 tools/make_torch_fixtures.py OUT
Each line: a key, then values written with 17 significant digits."""
import sys

import torch

torch.set_default_dtype(torch.float64)
lines = []


def emit(key, values):
    flat = torch.as_tensor(values).flatten().tolist()
    lines.append(key + " " + " ".join(f"{v:.17g}" for v in flat))


def trajectory(name, make, steps=5):
    p = torch.tensor([0.5, -1.25, 2.0], requires_grad=True)
    opt = make([p])
    for s in range(steps):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        emit(f"optim.{name}.{s}", p.detach())


trajectory("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1))
trajectory("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01))
trajectory("sgd_nesterov", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True))
trajectory("adam", lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.1))
trajectory("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.1))
trajectory("adam_amsgrad", lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.1, amsgrad=True))
trajectory("rmsprop", lambda ps: torch.optim.RMSprop(ps, lr=0.01, weight_decay=0.1))
trajectory("rmsprop_centered_momentum",
           lambda ps: torch.optim.RMSprop(ps, lr=0.01, weight_decay=0.1, centered=True, momentum=0.9))


def schedule(name, make, steps=10):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps - 1):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    emit(f"lr.{name}", lrs)


S = torch.optim.lr_scheduler
schedule("step", lambda o: S.StepLR(o, 3, 0.5))
schedule("multistep", lambda o: S.MultiStepLR(o, [2, 5], 0.1))
schedule("exponential", lambda o: S.ExponentialLR(o, 0.9))
schedule("cosine", lambda o: S.CosineAnnealingLR(o, 10))
schedule("linear", lambda o: S.LinearLR(o, 0.5, 1.0, 4))
schedule("onecycle", lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10))

F = torch.nn.functional
logits = torch.tensor([[0.3, -1.2, 2.0, 0.7, -0.4], [1.5, 0.2, -0.9, 0.0, 0.8], [-0.6, 2.2, 0.4, -1.1, 0.9],
                       [0.05, -0.3, 1.1, 1.9, -2.0]], requires_grad=True)
target = torch.tensor([2, 0, 1, 3])
weight = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.7])
probs = torch.softmax(torch.tensor([[1.0, 0.0, 2.0, -1.0, 0.5]] * 4) * torch.arange(1.0, 5.0)[:, None], 1)
emit("logits", logits.detach())
emit("probs", probs)
emit("weight", weight)
for name, value in [
        ("ce", F.cross_entropy(logits, target)),
        ("ce_sum", F.cross_entropy(logits, target, reduction="sum")),
        ("ce_weight", F.cross_entropy(logits, target, weight=weight)),
        ("ce_smooth", F.cross_entropy(logits, target, label_smoothing=0.1)),
        ("ce_weight_smooth", F.cross_entropy(logits, target, weight=weight, label_smoothing=0.1)),
        ("ce_ignore", F.cross_entropy(logits, torch.tensor([2, -100, 1, 3]))),
        ("ce_probs", F.cross_entropy(logits, probs)),
        ("ce_probs_weight_smooth", F.cross_entropy(logits, probs, weight=weight, label_smoothing=0.2)),
        ("nll_weight", F.nll_loss(F.log_softmax(logits, 1), target, weight=weight)),
]:
    emit(f"loss.{name}", value.detach())
    (grad,) = torch.autograd.grad(value, logits)
    emit(f"grad.{name}", grad)

with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"{len(lines)} lines")

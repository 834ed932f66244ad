"""Makes the golden model fixtures (tests/fixtures/models/) and the bundled digits classifier
(examples/data/digits_mlp.ember) with PyTorch and ember_export. Run where torch is installed
(the GPU machine):  PYTHONPATH=tools/ember_export python3 tools/make_model_fixtures.py ROOT

Each fixture folder holds model.ember, input_K.npy, output_K.npy, and grad.NAME.npy: PyTorch's
gradient of each parameter for the loss sum_k mean(output_k ** 2), which tests/test_golden.cpp
checks ember against on every device.
"""
import os
import sys

import numpy as np
import torch
from torch import nn

from ember_export import export

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ember_export", "tests"))
import transformer_models  # noqa: E402  (the exporter tests' small transformers)


class Shapes(nn.Module):
    """Reshapes, permutes, reductions, broadcasting against a parameter and a buffer, two outputs."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 12)
        self.scale = nn.Parameter(torch.randn(3, 1))
        self.register_buffer("offset", torch.randn(4))

    def forward(self, x):  # x [B, 3, 8]
        h = torch.tanh(self.proj(x))                       # [B, 3, 12]
        h = h.reshape(h.shape[0], 3, 3, 4)                 # [B, 3, 3, 4]
        h = h.permute(0, 3, 1, 2) * self.scale             # [B, 4, 3, 3]
        m = h.mean(dim=(2, 3), keepdim=True)               # [B, 4, 1, 1]
        v = (h - m).pow(2).sum(dim=-1)                     # [B, 4, 3]
        z = torch.cat([v, m.squeeze(-1)], dim=-1)          # [B, 4, 4]
        z = z + self.offset
        z = torch.softmax(z, dim=-1) * 2.0 - 1 / (1 + z.abs())
        return z.flatten(1), z.amax(dim=1)


class SmallCNN(nn.Module):
    """Convolution (grouped, with and without bias), batch norm, relu, a residual add, max and
    average pooling (ceil_mode), adaptive pooling and a linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)) + h)
        h = self.pool(h)
        h = nn.functional.avg_pool2d(h, 2, ceil_mode=True)
        return self.head(nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


def small_cnn():
    model = SmallCNN()
    with torch.no_grad():  # statistics and affine parameters away from their identity defaults
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


def mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.GELU(),
                         nn.Linear(16, 10))


def write_fixture(folder, model, inputs, dynamic_batch=True, train_mode_check=False):
    os.makedirs(folder, exist_ok=True)
    model.eval()
    export(model, inputs, os.path.join(folder, "model.ember"), dynamic_batch=dynamic_batch)
    outputs = model(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    loss = sum((o.double() ** 2).mean() for o in outputs)
    loss.backward()
    for k, x in enumerate(inputs):
        np.save(os.path.join(folder, f"input_{k}.npy"), x.numpy())
    for k, y in enumerate(outputs):
        np.save(os.path.join(folder, f"output_{k}.npy"), y.detach().numpy())
    for name, p in model.named_parameters():
        np.save(os.path.join(folder, f"grad.{name}.npy"), p.grad.numpy())
    if train_mode_check:
        # Training mode: batch statistics, and the running statistics updated as PyTorch does.
        model.train()
        with torch.no_grad():
            y = model(*inputs)
        np.save(os.path.join(folder, "train_output_0.npy"), y.numpy())
        for name, buf in model.named_buffers():
            if buf.is_floating_point():
                np.save(os.path.join(folder, f"train_buffer.{name}.npy"), buf.numpy())


def digits_model(root):
    """A digits classifier trained briefly in PyTorch (two epochs of SGD), so that the main job's
    fine-tuning in ember has something to improve. Test split: every fifth image."""
    images = np.load(os.path.join(root, "examples/data/digits_images.npy"))
    labels = np.load(os.path.join(root, "examples/data/digits_labels.npy"))
    x = torch.from_numpy(images.reshape(len(images), 64).astype(np.float32) / 16)
    y = torch.from_numpy(labels)
    train = torch.arange(len(x)) % 5 != 0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    xt, yt = x[train], y[train]
    for epoch in range(2):
        for idx in torch.randperm(len(xt)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[~train]).argmax(1) == y[~train]).float().mean().item()
    export(model, (x[:4],), os.path.join(root, "examples/data/digits_mlp.ember"), dynamic_batch=True,
           metadata={"task": "8x8 digits, test split: every fifth image", "torch_test_accuracy": f"{acc:.4f}"})
    print(f"digits_mlp.ember: PyTorch test accuracy {acc:.4f}")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    torch.manual_seed(0)
    models = os.path.join(root, "tests/fixtures/models")
    write_fixture(os.path.join(models, "mlp"), mlp(), (torch.randn(5, 64),))
    torch.manual_seed(1)
    write_fixture(os.path.join(models, "shapes"), Shapes(), (torch.randn(4, 3, 8),))
    torch.manual_seed(2)
    write_fixture(os.path.join(models, "cnn"), small_cnn(), (torch.randn(3, 3, 10, 10),), train_mode_check=True)
    # A tiny GPT: embeddings, causal pre-norm attention, layer norm, tied head.
    write_fixture(os.path.join(models, "transformer"), transformer_models.make("gpt"), transformer_models.inputs("gpt"))
    digits_model(root)
    print("fixtures written under", root)


if __name__ == "__main__":
    main()

"""PyTorch's CUDA kernels for the benchmark GPT (gpt_model.py) at batch 16, inference, fp32
with TF32 off: a table of kernel times over 5 forwards after warm-up, to set beside a profile of
ember's forward. Usage (GPU machine): python3 bench/profile_torch_gpt.py"""
import sys, torch
sys.path.insert(0, "bench")
import gpt_model
torch.backends.cuda.matmul.allow_tf32 = False
m = gpt_model.make().eval()
x, _ = gpt_model.batch(16)
from torch.profiler import profile, ProfilerActivity
with torch.no_grad():
    for _ in range(3): m(x)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        for _ in range(5): m(x)
        torch.cuda.synchronize()
print(p.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=70))

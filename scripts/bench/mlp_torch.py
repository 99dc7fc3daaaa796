#!/usr/bin/env python3
"""PyTorch side of `amalgam-bench mlp`: relu(x·W1 + b1)·W2 + b2 for a batch, best time in seconds (JSON)."""
import argparse, json, time
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, required=True)
ap.add_argument("--sizes", type=int, nargs=3, required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--repeats", type=int, default=50)
a = ap.parse_args()
torch.set_num_threads(a.threads)
i, h, o = a.sizes
x, w1, b1, w2, b2 = (torch.randn(a.rows, i), torch.randn(i, h), torch.randn(h), torch.randn(h, o), torch.randn(o))
best = float("inf")
with torch.inference_mode():
    for _ in range(a.repeats):
        t = time.perf_counter()
        torch.addmm(b2, torch.relu(torch.addmm(b1, x, w1)), w2)
        best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best, "threads": torch.get_num_threads()}))

#!/usr/bin/env python3
"""PyTorch (transformers) side of `amalgam-bench train-step`: one forward + backward + AdamW step of the
whole model in f32 on the same token ids, same thread count, best of `repeats` after one warm-up step.

Prints one JSON object: seconds per step (wall and CPU), loss of the first step, peak_rss_bytes.
"""
import argparse, json, resource, time
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--ids", required=True, help="JSON file: {ids: [[...]...] (equal lengths), repeats: r, lr: x}")
args = ap.parse_args()
torch.set_num_threads(args.threads)
spec = json.load(open(args.ids))
model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa")
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=0.0)
ids = torch.tensor(spec["ids"])


def step():
    opt.zero_grad(set_to_none=False)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


first_loss = step()  # warm-up (also allocates the optimizer state)
best, best_cpu = float("inf"), float("inf")
for _ in range(spec["repeats"]):
    t, c = time.perf_counter(), time.process_time()
    step()
    best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
print(json.dumps({"seconds_per_step": best, "cpu_seconds_per_step": best_cpu, "first_loss": first_loss,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))

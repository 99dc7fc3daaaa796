#!/usr/bin/env python3
"""PyTorch (transformers) side of `amalgam-bench inference`: the same measurements on the same ids.

Prints one JSON object: tokens per second (wall clock) and per CPU-second for scoring and generation,
peak_rss_bytes. Computes in f32 with
the given thread count, like the engine.
"""
import argparse, json, resource, time
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--ids", required=True, help="JSON file: {score: [[ids]...], prompt: [ids], new_tokens: n, repeats: r}")
args = ap.parse_args()
torch.set_num_threads(args.threads)
spec = json.load(open(args.ids))
model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()

with torch.inference_mode():
    batch = torch.tensor(spec["score"])
    mask = torch.ones_like(batch)
    model(input_ids=batch[:, :16], attention_mask=mask[:, :16])  # warm-up
    best, best_cpu = float("inf"), float("inf")
    for _ in range(spec["repeats"]):
        t, c = time.perf_counter(), time.process_time()
        logits = model(input_ids=batch, attention_mask=mask).logits
        torch.log_softmax(logits.float(), -1).gather(-1, batch[:, 1:, None])
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    score_tps, score_cpu = batch.numel() / best, batch.numel() / best_cpu

    best, best_cpu = float("inf"), float("inf")
    for _ in range(spec["repeats"]):
        prompt = torch.tensor([spec["prompt"]])
        out = model(input_ids=prompt, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(spec["new_tokens"]):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    gen_tps, gen_cpu = spec["new_tokens"] / best, spec["new_tokens"] / best_cpu

print(json.dumps({"score_tokens_per_s": score_tps, "generate_tokens_per_s": gen_tps,
                  "score_tokens_per_cpu_s": score_cpu, "generate_tokens_per_cpu_s": gen_cpu,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))

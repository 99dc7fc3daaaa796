#!/opt/refenv/bin/python
"""PyTorch (transformers) side of `amalgam-bench inference`: the same measurements on the same ids.

Prints one JSON object: score_tokens_per_s, generate_tokens_per_s, peak_rss_bytes. Computes in f32 with
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
    best = float("inf")
    for _ in range(spec["repeats"]):
        t = time.perf_counter()
        logits = model(input_ids=batch, attention_mask=mask).logits
        torch.log_softmax(logits.float(), -1).gather(-1, batch[:, 1:, None])
        best = min(best, time.perf_counter() - t)
    score_tps = batch.numel() / best

    best = float("inf")
    for _ in range(spec["repeats"]):
        prompt = torch.tensor([spec["prompt"]])
        out = model(input_ids=prompt, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        t = time.perf_counter()
        for _ in range(spec["new_tokens"]):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        best = min(best, time.perf_counter() - t)
    gen_tps = spec["new_tokens"] / best

print(json.dumps({"score_tokens_per_s": score_tps, "generate_tokens_per_s": gen_tps,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))

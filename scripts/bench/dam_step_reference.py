#!/usr/bin/env python3
"""PyTorch side of `amalgam-bench dam-step`: one DAM step on a digits-shaped MLP pair, best time (JSON).

With --llama A B: the same step on two Llama-family Hugging Face folders (transformers, f32, eager
attention): every linear layer's weight W = sum_i tanh(m_i)[None, :] * W_i (one coefficient per INPUT column
of the [out, in] weight; lm_head too when untied), embedding and norms the sources' mean; for each source k,
teacher logits on its batch of --batch random sequences of --seq-len tokens (no grad), the merged model's,
T^2 * KL at T = 2 over the full vocabulary averaged over tokens; plus 0.01 * cosine of the raw coefficients
per layer; backward; clip 1.0; AdamW. The batches are drawn from torch's generator (not Amalgam's): the
time of a step does not depend on which tokens it sees.

The step is what Amalgam's DAMTrainer.trainStep does: merge W = sum_i tanh(m_i)[:, None] * W_i per layer
(b = sum_i c_i b_i), for each source k: teacher logits on batch k (no grad), merged logits, T^2 * KL at
T = 2 (batchmean); plus 0.01 * cosine similarity of the raw coefficients per layer; backward; global
gradient-norm clip 1.0; AdamW (lr 1e-3, weight decay 0.01) on the coefficients. Weights are [in, out]
(row j = input column j), as in Amalgam's MLP. Also reports peak RSS (ru_maxrss).
"""
import argparse, json, resource, time
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--sizes", type=int, nargs=3, default=[64, 256, 10])
ap.add_argument("--sources", type=int, default=2)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--repeats", type=int, default=200)
ap.add_argument("--llama", nargs=2, metavar=("A", "B"))
ap.add_argument("--seq-len", type=int, default=128)
a = ap.parse_args()
torch.set_num_threads(a.threads)


def llama_step():
    from transformers import AutoModelForCausalLM
    models = [AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32, attn_implementation="eager").eval() for p in a.llama]
    for m in models:
        m.requires_grad_(False)
    state = [dict(m.named_parameters()) for m in models]
    for st, m in zip(state, models):
        st.update(dict(m.named_buffers()))
    linear = [k for k, v in state[0].items() if k.endswith(".weight") and v.dim() == 2 and "embed_tokens" not in k]
    n = len(models)
    coeffs = {k: [torch.full((state[0][k].shape[1],), 1.0 / n, requires_grad=True) for _ in range(n)] for k in linear}
    fixed = {k: sum(st[k] for st in state) / n for k in state[0] if k not in coeffs}
    params = [c for cs in coeffs.values() for c in cs]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    V = models[0].config.vocab_size
    batches = [torch.randint(0, V, (a.batch, a.seq_len), generator=g) for _ in range(n)]
    T = 2.0

    def one():
        opt.zero_grad(set_to_none=True)
        merged = dict(fixed)
        for k, cs in coeffs.items():
            merged[k] = sum(torch.tanh(cs[i])[None, :] * state[i][k] for i in range(n))
        if models[0].config.tie_word_embeddings:
            merged.pop("lm_head.weight", None)
        loss = 0.0
        for k in range(n):
            with torch.no_grad():
                teacher = torch.log_softmax(models[k](input_ids=batches[k]).logits / T, dim=-1)
            logits = torch.func.functional_call(models[0], merged, (batches[k],), tie_weights=True, strict=False).logits
            student = torch.log_softmax(logits / T, dim=-1)
            kl = torch.nn.functional.kl_div(student.flatten(0, 1), teacher.flatten(0, 1), log_target=True, reduction="batchmean")
            loss = loss + kl * T * T
        loss = loss + 0.01 * sum(cosine_mean(cs) for cs in coeffs.values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    one()
    best = float("inf")
    for _ in range(a.repeats):
        t = time.perf_counter()
        one()
        best = min(best, time.perf_counter() - t)
    return best


def cosine_mean(ms):
    n = len(ms)
    pairs = [torch.nn.functional.cosine_similarity(ms[p], ms[q], dim=0) for p in range(n) for q in range(p + 1, n)]
    return sum(pairs) / len(pairs)


if a.llama:
    seconds = llama_step()
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    raise SystemExit(0)
torch.manual_seed(0)
i, h, o = a.sizes
n = a.sources
sources = [(torch.randn(i, h) * 0.1, torch.randn(h) * 0.1, torch.randn(h, o) * 0.1, torch.randn(o) * 0.1) for _ in range(n)]
batches = [torch.randint(0, 17, (a.batch, i)).float() for _ in range(n)]
m1 = [torch.full((i,), 1.0 / n, requires_grad=True) for _ in range(n)]
m2 = [torch.full((h,), 1.0 / n, requires_grad=True) for _ in range(n)]
c1 = [torch.full((), 1.0 / n, requires_grad=True) for _ in range(n)]
c2 = [torch.full((), 1.0 / n, requires_grad=True) for _ in range(n)]
params = m1 + m2 + c1 + c2
opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
T = 2.0


def forward(w1, b1, w2, b2, x):
    return torch.relu(x @ w1 + b1) @ w2 + b2


def step():
    opt.zero_grad(set_to_none=True)
    w1 = sum(torch.tanh(m1[k])[:, None] * sources[k][0] for k in range(n))
    b1 = sum(c1[k] * sources[k][1] for k in range(n))
    w2 = sum(torch.tanh(m2[k])[:, None] * sources[k][2] for k in range(n))
    b2 = sum(c2[k] * sources[k][3] for k in range(n))
    loss = 0.0
    for k in range(n):
        with torch.no_grad():
            teacher = torch.log_softmax(forward(*sources[k], batches[k]) / T, dim=-1)
        student = torch.log_softmax(forward(w1, b1, w2, b2, batches[k]) / T, dim=-1)
        loss = loss + torch.nn.functional.kl_div(student, teacher, log_target=True, reduction="batchmean") * T * T
    loss = loss + 0.01 * (cosine_mean(m1) + cosine_mean(m2))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


for _ in range(10):
    step()
best = float("inf")
for _ in range(a.repeats):
    t = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best, "threads": torch.get_num_threads(),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))

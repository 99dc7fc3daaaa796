#!/opt/refenv/bin/python
"""PyTorch side of `amalgam-bench dam-step`: one DAM step on a digits-shaped MLP pair, best time (JSON).

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
a = ap.parse_args()
torch.set_num_threads(a.threads)
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


def cosine_mean(ms):
    pairs = [torch.nn.functional.cosine_similarity(ms[p], ms[q], dim=0) for p in range(n) for q in range(p + 1, n)]
    return sum(pairs) / len(pairs)


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

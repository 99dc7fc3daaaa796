#!/usr/bin/env python3
"""PyTorch reference for the digits pair of `amalgam experiment digits-comparison` (DigitsPair, divergent recipe).

Trains the same 64-256-10 ReLU MLP with PyTorch: every parameter from N(0, 0.01^2), full-batch Adam
(beta 0.9/0.999, eps 1e-8) on mean cross-entropy; the base BASE_STEPS steps at BASE_LR on the first 80 % of the
digits file, each specialist SPECIALIST_STEPS steps at SPECIALIST_LR from the base on digits 0-4 / 5-9 only;
then scores base, specialists and their average (0.5/0.5) on the last 20 %. Torch's generator differs from
ours, so runs match ours in distribution, not bit for bit: compare means and spreads over seeds.
Usage: "$(scripts/refenv.sh)" scripts/experiments/digits_pair_torch.py [--runs 5] [--json OUT]
"""
import argparse
import json
import time

import numpy as np
import torch


def accuracies(params, x, y):
    w1, b1, w2, b2 = params
    pred = (torch.relu(x @ w1 + b1) @ w2 + b2).argmax(1)
    ok = (pred == y).double()
    low = y < 5
    return [ok.mean().item(), ok[low].mean().item(), ok[~low].mean().item()]


def train(params, x, y, steps, lr):
    params = [p.clone().requires_grad_(True) for p in params]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(steps):
        opt.zero_grad()
        w1, b1, w2, b2 = params
        loss = torch.nn.functional.cross_entropy(torch.relu(x @ w1 + b1) @ w2 + b2, y)
        loss.backward()
        opt.step()
    return [p.detach() for p in params]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="fixtures/digits/digits.csv")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base-steps", type=int, default=10)
    ap.add_argument("--base-lr", type=float, default=3e-3)
    ap.add_argument("--specialist-steps", type=int, default=300)
    ap.add_argument("--specialist-lr", type=float, default=1e-2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    data = np.loadtxt(a.data, delimiter=",", dtype=np.float32)
    cut = int(len(data) * 0.8)
    x = torch.from_numpy(data[:, :64]); y = torch.from_numpy(data[:, 64]).long()
    xtr, ytr, xte, yte = x[:cut], y[:cut], x[cut:], y[cut:]
    halves = [ytr < 5, ytr >= 5]
    rows = {"base": [], "specialist 0-4": [], "specialist 5-9": [], "average": []}
    start = time.process_time()
    for seed in range(a.runs):
        torch.manual_seed(seed)
        init = [0.01 * torch.randn(64, 256), 0.01 * torch.randn(256), 0.01 * torch.randn(256, 10), 0.01 * torch.randn(10)]
        base = train(init, xtr, ytr, a.base_steps, a.base_lr)
        specialists = [train(base, xtr[h], ytr[h], a.specialist_steps, a.specialist_lr) for h in halves]
        average = [(p + q) / 2 for p, q in zip(*specialists)]
        for name, p in [("base", base), ("specialist 0-4", specialists[0]), ("specialist 5-9", specialists[1]),
                        ("average", average)]:
            rows[name].append(accuracies(p, xte, yte))
    cpu = time.process_time() - start
    print(f"PyTorch {torch.__version__}, {a.runs} runs (torch seeds 0..{a.runs - 1}); test accuracy %, mean ± std (ddof 0)")
    print(f"{'method':16} {'union':>13} {'0-4':>13} {'5-9':>13}")
    out = {}
    for name, r in rows.items():
        r = np.array(r) * 100
        m, s = r.mean(0), r.std(0)
        print(f"{name:16} " + " ".join(f"{m[i]:5.1f} ± {s[i]:4.1f}  " for i in range(3)))
        out[name] = {"test_union": r[:, 0].tolist(), "test_digits_0_4": r[:, 1].tolist(), "test_digits_5_9": r[:, 2].tolist()}
    print(f"CPU {cpu:.1f} s")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump({"torch": torch.__version__, "recipe": vars(a), "methods": out}, f, indent=1)
        import os
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()

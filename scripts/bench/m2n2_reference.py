#!/usr/bin/env python3
"""Timing reference for `amalgam-bench m2n2`: the released M2N2 digits loop re-implemented in JAX.

For timing only (our numbers are checked by the experiment table, not against this script). It does the
work the released code (SakanaAI/natural_niches, `natural_niches_fn.py`) does per forward pass, in the
same style: a Python loop over passes; parents drawn with `jax.random.choice` outside jit (competition
fitness, then attraction); jitted split-point slerp crossover, Gaussian mutation (σ = 0.01), MLP forward
on the 1437 training digits, arg-max scoring and steady-state replacement; then, as the released loop
logs every pass, the test accuracy of the best-on-train member.

    "$(scripts/refenv.sh)" scripts/bench/m2n2_reference.py --passes 2000 [--data fixtures/digits/digits.csv]

Prints one JSON line: {"passes", "seconds" (the loop, after compilation), "test_accuracy", "jax"}.
"""
import argparse
import json
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

INPUTS, HIDDEN, OUTPUTS = 64, 256, 10
PARAMS = (INPUTS + 1) * HIDDEN + (HIDDEN + 1) * OUTPUTS


def load(path):
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x, y = table[:, :INPUTS], table[:, INPUTS].astype(np.int32)
    cut = int(len(y) * 0.8)
    return (jnp.asarray(x[:cut]), jnp.asarray(y[:cut])), (jnp.asarray(x[cut:]), jnp.asarray(y[cut:]))


@jax.jit
def forward(theta, x):
    w1 = theta[: INPUTS * HIDDEN].reshape(INPUTS, HIDDEN)
    b1 = theta[INPUTS * HIDDEN: (INPUTS + 1) * HIDDEN]
    rest = theta[(INPUTS + 1) * HIDDEN:]
    w2 = rest[: HIDDEN * OUTPUTS].reshape(HIDDEN, OUTPUTS)
    b2 = rest[HIDDEN * OUTPUTS:]
    return jax.nn.relu(x @ w1 + b1) @ w2 + b2


@jax.jit
def correct(theta, x, y):
    return jnp.argmax(forward(theta, x), axis=1) == y


@jax.jit
def accuracy(theta, x, y):
    return jnp.mean(jnp.argmax(forward(theta, x), axis=1) == y)


@jax.jit
def split_slerp(key, a, b):
    k_split, k_ratio = jax.random.split(key)
    split = jax.random.randint(k_split, (), 0, a.shape[0])
    w = jax.random.uniform(k_ratio)
    t = jnp.where(jnp.arange(a.shape[0]) < split, w, 1 - w)
    cos = jnp.dot(a / jnp.linalg.norm(a), b / jnp.linalg.norm(b))
    omega = jnp.arccos(jnp.clip(cos, -1, 1))
    s = jnp.sin(omega)
    curved = jnp.sin((1 - t) * omega) / s * a + jnp.sin(t * omega) / s * b
    return jnp.where(s > 1e-6, curved, (1 - t) * a + t * b)


@jax.jit
def mutate(key, theta):
    return theta + 0.01 * jax.random.normal(key, theta.shape)


@jax.jit
def replace(score, child, archive, scores):
    rows = jnp.concatenate([scores, score[None]], axis=0).astype(jnp.float32)
    z = rows.sum(axis=0)
    z = jnp.where(z, z, 1)
    worst = jnp.argmin((rows / z).sum(axis=1))
    keep = worst < scores.shape[0]
    scores = scores.at[worst].set(jax.lax.select(keep, score, scores[worst]))
    archive = archive.at[worst].set(jax.lax.select(keep, child, archive[worst]))
    return archive, scores


def parents(key, archive, scores):
    k1, k2 = jax.random.split(key)
    s = scores.astype(jnp.float32)
    z = s.sum(axis=0)
    shared = s / jnp.where(z, z, 1)
    fitness = shared.sum(axis=1)
    first = jax.random.choice(k1, fitness.size, shape=(1,), p=fitness / fitness.sum())[0]
    attraction = jnp.maximum(0, shared - shared[first]).sum(axis=1)
    second = jax.random.choice(k2, attraction.size, shape=(1,), p=attraction / attraction.sum())[0]
    return archive[first], archive[second]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=50_000)
    parser.add_argument("--data", default="fixtures/digits/digits.csv")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    (x, y), (xt, yt) = load(args.data)
    key = jax.random.PRNGKey(args.seed)
    archive = jnp.zeros((20, PARAMS))
    scores = jnp.zeros((20, len(y)), dtype=jnp.bool_)
    key, k1, k2 = jax.random.split(key, 3)
    for seed_key in (k1, k2):
        theta = jax.random.normal(seed_key, (PARAMS,)) * 0.01
        archive, scores = replace(correct(theta, x, y), theta, archive, scores)

    def one_pass(key, archive, scores):
        k1, k2, k3, key = jax.random.split(key, 4)
        a, b = parents(k1, archive, scores)
        child = mutate(k3, split_slerp(k2, a, b))
        archive, scores = replace(correct(child, x, y), child, archive, scores)
        best = jnp.argmax(scores.mean(axis=1))
        return key, archive, scores, accuracy(archive[best], xt, yt)

    # Compile every function once outside the timed loop (the released run compiles inside it).
    one_pass(key, archive, scores)[3].block_until_ready()
    start = time.perf_counter()
    test = None
    for _ in range(args.passes):
        key, archive, scores, test = one_pass(key, archive, scores)
    test = float(test)
    seconds = time.perf_counter() - start
    print(json.dumps({"passes": args.passes, "seconds": seconds, "test_accuracy": test, "jax": jax.__version__}))


if __name__ == "__main__":
    main()

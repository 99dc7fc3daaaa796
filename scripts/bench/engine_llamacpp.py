#!/usr/bin/env python3
"""One llama.cpp measurement for scripts/bench/engine-vs-llamacpp.sh (run once per process, so that
GNU time's peak RSS is that of this case alone).

  engine_llamacpp.py MODEL.gguf pp N THREADS   -> prints "seconds" for evaluating N prompt tokens
  engine_llamacpp.py MODEL.gguf tg N THREADS   -> prints "seconds" for N greedy tokens after a 32-token prompt

Prompt tokens are the same deterministic ids the script gives amalgam: (i·7919) mod 40000 + 100.
"""
import sys
import time

import llama_cpp
import numpy as np


def ids(n):
    return [(i * 7919) % 40000 + 100 for i in range(n)]


def main():
    model, case, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, n_ubatch=512, verbose=False)
    if case == "pp":
        llm.eval(ids(16))  # warm-up (first-touch of the weights), not timed
        llm.reset()
        start = time.perf_counter()
        llm.eval(ids(n))
        print(f"{time.perf_counter() - start:.4f}")
    else:
        llm.eval(ids(32))
        start = time.perf_counter()
        for _ in range(n):
            logits = np.asarray(llm.scores[llm.n_tokens - 1])
            llm.eval([int(np.argmax(logits))])
        print(f"{time.perf_counter() - start:.4f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times lm-evaluation-harness (HFLM, transformers f32, CPU) on a multiple-choice task file of Amalgam's
format: the same examples and requests `amalgam-bench eval` times in Amalgam. Prints one JSON line.

"$(scripts/refenv.sh)" scripts/bench/eval_lmeval.py --model DIR --task tasks/x.jsonl --limit N --threads T --batch-size B
"""
import argparse
import json
import resource
import time

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--task", required=True)
parser.add_argument("--limit", type=int, required=True)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=16)
args = parser.parse_args()
torch.set_num_threads(args.threads)

with open(args.task, encoding="utf-8") as f:
    lines = [json.loads(l) for l in f if l.strip()]
header = lines[0]
assert header["kind"] == "multiple_choice" and header.get("num_fewshot", 0) == 0
split = header.get("eval_split", "test")
examples = [e for e in lines[1:] if e.get("split", "test") == split][: args.limit]
delimiter = header.get("target_delimiter", " ")
requests = [Instance("loglikelihood", e, (e["context"], delimiter + c), i)
            for e in examples for i, c in enumerate(e["choices"])]
lm = HFLM(pretrained=args.model, dtype="float32", batch_size=args.batch_size, device="cpu")
lm.loglikelihood(requests[:4], disable_tqdm=True)  # warm-up
start = time.perf_counter()
lm.loglikelihood(requests, disable_tqdm=True)
seconds = time.perf_counter() - start
print(json.dumps({"examples": len(examples), "requests": len(requests), "seconds": seconds,
                  "examples_per_s": len(examples) / seconds, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))

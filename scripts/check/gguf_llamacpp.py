#!/usr/bin/env python3
"""Acceptance check of the GGUF files Amalgam writes, with llama.cpp itself (llama-cpp-python, pinned in the
refenv). Run through scripts/check/gguf-llamacpp.sh.

1. Writes every GGUF that examples/, the main job (scripts/main-job.sh) and the test fixtures make, into a
   temporary folder, with the amalgam binary; loads each in llama.cpp (2 threads), greedy-decodes 32 tokens
   from a fixed prompt of token ids (argmax of llama.cpp's logits, no sampler) and compares them token by
   token with `amalgam generate FILE --ids [...] --max-tokens 32` on the same file.
2. Quantizes SmolLM2 (Amalgam's f32 GGUF of it) with llama.cpp's quantizer into every file type it offers
   that needs no importance matrix, and checks that `amalgam inspect` reads each and `amalgam convert`
   either converts it or refuses it with an error naming a type it cannot decode, the tensor and the file.

Prints a table per part; exits 1 on any failure.
"""
import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import llama_cpp

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
AMALGAM = os.path.join(ROOT, ".build", "release", "amalgam")
SMOLLM2 = os.path.join(ROOT, "data", "SmolLM2-135M-Instruct.Q4_1.gguf")
FIXTURES = os.path.join(ROOT, "fixtures")
N_TOKENS = 32
# Prompts as token ids. SmolLM2: "The three most important things in life are" under its own tokenizer;
# the tiny fixture models (272 tokens): "Hello world, the world" under theirs.
SMOLLM2_PROMPT = [504, 1296, 768, 1070, 1495, 281, 1029, 359]
TINY_PROMPT = [75, 104, 111, 111, 114, 268, 47, 261, 268]
# Types Amalgam decodes (GGUFDequantize.swift); a file with any other is refused.
DECODED = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}


def amalgam(*args, check=True):
    run = subprocess.run([AMALGAM, *args], capture_output=True, text=True, cwd=ROOT)
    if check and run.returncode != 0:
        sys.exit(f"amalgam {' '.join(args)} failed ({run.returncode}):\n{run.stderr}")
    return run


def yaml_copy(example, tmp, replacements):
    """examples/NAME with data paths the check makes itself pointed into tmp (data/ is left untouched)."""
    text = open(os.path.join(ROOT, "examples", example), encoding="utf-8").read()
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = os.path.join(tmp, example)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def tiny_merge_config(tmp, base):
    """The merge Tests/AmalgamCheckpointTests (MergeCommandTests, GGUFOutputCommandTests) write as GGUF."""
    g = os.path.join(FIXTURES, "gguf")
    path = os.path.join(tmp, f"tiny-merge-{os.path.basename(base)}.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""slices:
  - sources:
      - model: {g}/tiny-llama.gguf
        layer_range: [0, 2]
      - model: {g}/tiny-llama-hf
        layer_range: [0, 2]
merge_method: slerp
base_model: {base}
parameters:
  t: [0, 1]
dtype: float32
""")
    return path


def make_files(tmp):
    """(label, path, prompt) of every GGUF Amalgam writes for the examples, the main job and the tests."""
    files = []
    smol_hf = os.path.join(tmp, "smollm2-135m-instruct")
    amalgam("convert", SMOLLM2, smol_hf, "--dtype", "bf16")  # main job: the folder the examples use
    for t in ["f32", "f16", "bf16", "q8_0"]:
        out = os.path.join(tmp, f"smollm2.{t}.gguf")
        amalgam("convert", smol_hf, out, "--type", t)
        files.append((f"convert smollm2 folder --type {t}", out, SMOLLM2_PROMPT))
    subst = {"data/smollm2-135m-instruct": smol_hf}
    out = os.path.join(tmp, "smollm2-slerp.Q8_0.gguf")
    amalgam("merge", "--quiet", yaml_copy("smollm2-slerp.yml", tmp, subst), out, "--out-format", "gguf", "--out-type", "q8_0")
    files.append(("merge examples/smollm2-slerp.yml (main job)", out, SMOLLM2_PROMPT))
    out = os.path.join(tmp, "smollm2-40-layers.Q8_0.gguf")
    amalgam("merge", "--quiet", "examples/smollm2-frankenmerge.yml", out, "--out-format", "gguf", "--out-type", "q8_0")
    files.append(("merge examples/smollm2-frankenmerge.yml", out, SMOLLM2_PROMPT))
    out = os.path.join(tmp, "ties-fixtures.f16.gguf")
    run = amalgam("merge", "--quiet", "examples/ties-fixtures.yml", out, "--out-format", "gguf", "--out-type", "f16", check=False)
    files.append(("merge examples/ties-fixtures.yml", out if run.returncode == 0 else None, TINY_PROMPT, run.stderr.strip()))
    tiny_hf = os.path.join(FIXTURES, "gguf", "tiny-llama-hf")
    for t in ["q8_0", "f32"]:
        out = os.path.join(tmp, f"tiny-llama.{t}.gguf")
        amalgam("convert", tiny_hf, out, "--type", t)
        files.append((f"convert fixtures/gguf/tiny-llama-hf --type {t}", out, TINY_PROMPT))
    for base in [tiny_hf, os.path.join(FIXTURES, "gguf", "tiny-llama.gguf")]:
        out = os.path.join(tmp, f"tiny-merge-{os.path.basename(base)}.gguf")
        amalgam("merge", "--quiet", tiny_merge_config(tmp, base), out, "--out-format", "gguf", "--out-type", "f32")
        files.append((f"merge tiny fixtures, base {os.path.basename(base)}", out, TINY_PROMPT))
    return [f if len(f) == 4 else (*f, "") for f in files]


def llamacpp_greedy(path, prompt):
    """32 greedy tokens from llama.cpp (argmax of its logits), stopping after its EOS as Amalgam does; the
    prompt ids are taken modulo the model's vocabulary. Returns the prompt used, the tokens and the logits
    of each step."""
    llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=2, n_threads_batch=2, logits_all=True, verbose=False)
    prompt = [t % llm.n_vocab() for t in prompt]
    eos = llm.token_eos()
    llm.reset()
    llm.eval(prompt)
    out, steps = [], []
    for _ in range(N_TOKENS):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        token = int(np.argmax(logits))
        out.append(token)
        steps.append(logits)
        if token == eos:
            break
        llm.eval([token])
    return prompt, out, steps


def amalgam_greedy(path, prompt):
    run = amalgam("generate", path, "--ids", json.dumps(prompt), "--max-tokens", str(N_TOKENS), check=False)
    if run.returncode != 0:
        return None, run.stderr.strip()
    return json.loads(run.stdout.strip().splitlines()[-1]), ""


# A divergence counts as a near-tie, not a failure, when Amalgam's token is the runner-up in llama.cpp's own
# logits at that step, within this many logit units of llama.cpp's choice: llama.cpp multiplies BF16 and
# Q8_0 weights with activations rounded to BF16 / Q8_0, Amalgam in f32, so exact ties can break either way.
NEAR_TIE = 0.05


def compare(path, prompt):
    """(loads, equal, first divergence text, failure?)"""
    try:
        prompt, theirs, steps = llamacpp_greedy(path, prompt)
    except Exception as e:  # llama.cpp refused the file
        return "no: " + str(e).splitlines()[0][:60], "-", "-", True
    ours, err = amalgam_greedy(path, prompt)
    if ours is None:
        return "yes", "amalgam failed", err[:80], True
    if ours == theirs:
        return "yes", f"yes ({len(ours)})", "-", False
    i = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    if i == min(len(ours), len(theirs)):
        return "yes", "no", f"#{i}: lengths {len(ours)} vs {len(theirs)}", True
    logits = steps[i]
    gap = float(logits[theirs[i]] - logits[ours[i]])
    runner_up = int(np.argsort(-logits, kind="stable")[1]) == ours[i]
    tie = runner_up and gap <= NEAR_TIE
    what = f"#{i}: amalgam {ours[i]}, llama.cpp {theirs[i]}; in llama.cpp's logits amalgam's is {'the runner-up' if runner_up else 'not the runner-up'}, {gap:.3g} below"
    return "yes", "near-tie at #%d" % i if tie else "no", what, not tie


def table(rows, header):
    widths = [max(len(str(r[k])) for r in rows + [header]) for k in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


QUANT_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
               "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ2_XXS", "IQ2_XS",
               "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "TQ1_0", "TQ2_0", "MXFP4_MOE", "NVFP4", "Q1_0", "Q2_0"]

QUANTIZE = """
import ctypes, sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3])
p.nthread = 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def check_quants(tmp, source):
    rows, failed = [], False
    for name in QUANT_TYPES:
        if not hasattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + name):
            rows.append((name, "not offered", "-", "-", "-"))
            continue
        out = os.path.join(tmp, f"smollm2.{name}.gguf")
        q = subprocess.run([sys.executable, "-c", QUANTIZE, source, out, name], capture_output=True, text=True)
        if q.returncode != 0 or not os.path.exists(out):
            reason = [l for l in (q.stderr or "").splitlines() if "error" in l.lower() or "imatrix" in l.lower() or "importance" in l.lower()]
            rows.append((name, f"llama.cpp refuses ({q.returncode}): {(reason[-1] if reason else '').strip()[:70]}", "-", "-", "-"))
            continue
        inspect = amalgam("inspect", out, "--json", check=False)
        if inspect.returncode != 0:
            rows.append((name, "made", "FAILS: " + inspect.stderr.strip()[:60], "-", "-"))
            failed = True
            os.remove(out)
            continue
        types = sorted({t["dtype"] for t in json.loads(inspect.stdout)["tensors"]})
        undecoded = [t for t in types if t.upper() not in DECODED]
        folder = os.path.join(tmp, "quant-hf")
        conv = amalgam("convert", out, folder, "--dtype", "f32", "--overwrite", check=False)
        shutil.rmtree(folder, ignore_errors=True)
        if not undecoded:
            ok = conv.returncode == 0
            tokens = compare(out, SMOLLM2_PROMPT)[1] if ok else "-"
            verdict = "converts" if ok else "FAILS: " + conv.stderr.strip()[:60]
        else:
            named = any(t.upper() in conv.stderr for t in undecoded)
            ok = conv.returncode != 0 and named and out in conv.stderr and ".weight" in conv.stderr
            tokens = "-"
            verdict = f"refused, names {'/'.join(undecoded)}" if ok else "FAILS: " + (conv.stderr.strip()[:60] or "converted a type Amalgam cannot decode")
        failed |= not ok
        rows.append((name, "made", "reads: " + ",".join(types), verdict, tokens))
        os.remove(out)
    print()
    table(rows, ("llama.cpp ftype", "quantize", "amalgam inspect", "amalgam convert", "tokens equal (info)"))
    return failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-quants", action="store_true")
    parser.add_argument("--keep", help="write the files here and keep them")
    args = parser.parse_args()
    for need in (AMALGAM, SMOLLM2):
        if not os.path.exists(need):
            sys.exit(f"missing {need}: run scripts/build.sh and scripts/fetch-data.sh")
    print(f"llama-cpp-python {llama_cpp.__version__}, {N_TOKENS} greedy tokens, n_threads 2")
    tmp = args.keep or tempfile.mkdtemp(prefix="amalgam-gguf-llamacpp-")
    os.makedirs(tmp, exist_ok=True)
    try:
        rows, failed = [], False
        for label, path, prompt, note in make_files(tmp):
            if path is None:
                rows.append((label, "-", "-", "amalgam refused: " + note.splitlines()[-1][:90]))
                continue
            loads, equal, divergence, bad = compare(path, prompt)
            failed |= bad
            rows.append((f"{label} → {os.path.basename(path)}", loads, equal, divergence))
        table(rows, ("file", "loads?", "tokens equal?", "first divergence"))
        if not args.skip_quants:
            failed |= check_quants(tmp, os.path.join(tmp, "smollm2.f32.gguf"))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nFAILED" if failed else "\nall checks passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

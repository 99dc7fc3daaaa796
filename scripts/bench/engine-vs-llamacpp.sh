#!/usr/bin/env bash
# Benchmark (not a test): the inference engine against llama.cpp (llama-cpp-python 0.3.36 from the
# reference environment) on the same GGUF files, in the same run, on 2 threads.
# Models: SmolLM2-135M-Instruct Q4_1 as shipped (data/, scripts/fetch-data.sh) and the same model written
# by Amalgam as Q8_0 (`amalgam convert` to an f32 folder, then to GGUF --type q8_0).
# Cases: prompt processing of 512 tokens; generation of 128 greedy tokens after a 32-token prompt.
# Amalgam: `amalgam generate --weights native --ids …`, whose stderr line gives seconds (prompt included):
#   pp = 512 / seconds(512-token prompt, 1 new token);
#   tg = (n − 1) / (seconds(32-token prompt, n = 128 new tokens) − seconds(32-token prompt, 1 new token))
#   (n is smaller if the model emits its EOS first; the row then says tgN).
# llama.cpp: scripts/bench/engine_llamacpp.py times llm.eval of the prompt, and 128 argmax+eval steps.
# Each case runs in its own process under GNU time for its peak RSS (llama.cpp's includes Python's ≈ 30 MB).
# Prints tokens/s for both, our ratio (≥ 1 means faster than llama.cpp), and both peak RSS values.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=$(scripts/refenv.sh)
WORK=${BENCH_DIR:-bench-data}
THREADS=${THREADS:-2}
scripts/setup-system.sh
dpkg -s time >/dev/null 2>&1 || apt-get install -y -qq time >/dev/null
scripts/fetch-data.sh >/dev/null
scripts/build.sh >/dev/null
AMALGAM=.build/release/amalgam
mkdir -p "$WORK"
Q4_1=data/SmolLM2-135M-Instruct.Q4_1.gguf
Q8_0=$WORK/SmolLM2-135M-Instruct.amalgam-Q8_0.gguf
if [ ! -s "$Q8_0" ]; then
    rm -rf "$WORK/smollm2-f32"
    $AMALGAM convert "$Q4_1" "$WORK/smollm2-f32" --dtype f32 >/dev/null
    $AMALGAM convert "$WORK/smollm2-f32" "$Q8_0" --type q8_0 >/dev/null
fi
ids() { "$PY" -c "import sys; n=int(sys.argv[1]); print('[' + ','.join(str((i*7919)%40000+100) for i in range(n)) + ']')" "$1"; }
P512=$(ids 512); P32=$(ids 32)
export AMALGAM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

# amalgam_run MODEL PROMPT NEW: "tokens seconds" from generate's stderr line (it stops early at an EOS);
# peak RSS (kB) into $WORK/rss
amalgam_run() {
    /usr/bin/time -v -o "$WORK/time.txt" $AMALGAM generate "$1" --weights native --ids "$2" --max-tokens "$3" \
        >/dev/null 2>"$WORK/err.txt"
    grep -o 'Maximum resident set size (kbytes): [0-9]*' "$WORK/time.txt" | grep -o '[0-9]*$' > "$WORK/rss"
    grep -o '^[0-9]* tokens in [0-9.]* s' "$WORK/err.txt" | awk '{print $1, $4}'
}
llama_seconds() {
    /usr/bin/time -v -o "$WORK/time.txt" "$PY" scripts/bench/engine_llamacpp.py "$1" "$2" "$3" "$THREADS" 2>/dev/null
    grep -o 'Maximum resident set size (kbytes): [0-9]*' "$WORK/time.txt" | grep -o '[0-9]*$' > "$WORK/rss"
}
mb() { echo "$(( $(cat "$WORK/rss") / 1024 ))"; }

echo "engine vs llama.cpp, $THREADS threads, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %-5s %12s %12s %7s %10s %10s\n' model case amalgam_tok/s llama_tok/s ratio amalgam_MB llama_MB
for model in "$Q4_1" "$Q8_0"; do
    name=$(basename "$model" .gguf)
    # prompt processing, 512 tokens
    a=$(amalgam_run "$model" "$P512" 1 | cut -d' ' -f2); a_rss=$(mb)
    l=$(llama_seconds "$model" pp 512); l_rss=$(mb)
    "$PY" -c "import sys; a,l=512/float(sys.argv[1]),512/float(sys.argv[2]); print('%-28s %-5s %12.1f %12.1f %7.2f %10s %10s' % (sys.argv[3][:28],'pp512',a,l,a/l,sys.argv[4],sys.argv[5]))" "$a" "$l" "$name" "$a_rss" "$l_rss"
    # generation, 128 tokens after a 32-token prompt
    a1=$(amalgam_run "$model" "$P32" 1 | cut -d' ' -f2)
    run=$(amalgam_run "$model" "$P32" 128); a_rss=$(mb)
    l=$(llama_seconds "$model" tg 128); l_rss=$(mb)
    "$PY" -c "import sys; n=int(sys.argv[2]); a=(n-1)/(float(sys.argv[3])-float(sys.argv[1])); l=128/float(sys.argv[4]); print('%-28s %-5s %12.1f %12.1f %7.2f %10s %10s' % (sys.argv[5][:28],'tg128' if n==128 else 'tg%d' % n,a,l,a/l,sys.argv[6],sys.argv[7]))" "$a1" $run "$l" "$name" "$a_rss" "$l_rss"
done

#!/usr/bin/env bash
# Installs the `amalgam-merge` wheel into a fresh venv, offline, and runs it as a user would: `amalgam --version`
# must name the version and this checkout's commit; every library beyond glibc, libstdc++ and zlib (on the
# manylinux policy's list) must load from the wheel itself; a merge of the quick-start config, a GGUF
# conversion and a greedy continuation must give the same bytes as the `amalgam` built from source for this
# machine (scripts/build.sh), when that binary exists ($AMALGAM names another). Prints what it checked; exit status 1 on any difference. Not part of CI
# (the wheel's own release build takes several minutes).
#
#   scripts/check/wheel.sh [WHEEL]     # default: builds one with scripts/wheel.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WHEEL=${1:-$(scripts/wheel.sh | tail -1)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --no-index "$WHEEL"
AMALGAM=$WORK/venv/bin/amalgam
echo "installed: $(basename "$WHEEL")"
echo "wheel size: $(du -h "$WHEEL" | cut -f1); bundled libraries: $(unzip -l "$WHEEL" | grep -c '\.libs/')"

FAILED=0
VERSION=$("$AMALGAM" --version)
COMMIT=$(git rev-parse HEAD)
echo "amalgam --version: $VERSION"
case "$VERSION" in
    *"$COMMIT"*) echo "ok: --version names this checkout's commit" ;;
    *) echo "FAILED: --version does not name $COMMIT"; FAILED=1 ;;
esac

# auditwheel's RPATH must win over the system's copies of the bundled libraries.
BIN=$(ls "$WORK"/venv/lib/python3*/site-packages/amalgam_merge/bin/amalgam)
OUTSIDE=$(ldd "$BIN" | awk '/=>/ {print $1, $3}' | grep -v -E '^(libc|libm|libz|libstdc\+\+|libgcc_s|libresolv|libpthread|libdl|librt)\.so' \
    | grep -v amalgam_merge.libs || true)
if [ -z "$OUTSIDE" ]; then echo "ok: every library beyond glibc, libstdc++ and zlib loads from the wheel"
else echo "FAILED: libraries load from outside the wheel:"; echo "$OUTSIDE"; FAILED=1; fi

# The installed command runs away from the repository, as a user's would: inputs by absolute path.
sed "s|fixtures/|$ROOT/fixtures/|g" examples/quickstart-slerp.yml > "$WORK/slerp.yml"
# Each build writes under its own folder with the same names (a GGUF records its folder's name).
run() { # BINARY FOLDER
    mkdir -p "$WORK/$2"
    (cd "$WORK" && "$1" merge slerp.yml "$WORK/$2/slerp" && "$1" convert "$WORK/$2/slerp" "$WORK/$2/slerp.gguf" --type q8_0) \
        >>"$WORK/$2.log" 2>&1 || { cat "$WORK/$2.log"; echo "FAILED: $1 could not merge or convert"; exit 1; }
}
run "$AMALGAM" wheel
echo "ok: merge and convert ran from the wheel"
# The engine (OpenBLAS among the bundled libraries): greedy continuation of the merged model.
generate() { "$1" generate "$WORK/$2/slerp" --prompt "To be, or not to be" --max-tokens 24 2>>"$WORK/$2.log"; }
generate "$AMALGAM" wheel > "$WORK/wheel.txt"
echo "ok: generate ran from the wheel"

NATIVE=${AMALGAM:-$ROOT/.build/release/amalgam}
if [ -x "$NATIVE" ]; then
    run "$NATIVE" native
    for f in slerp/model.safetensors slerp/config.json slerp/tokenizer.json; do
        if cmp -s "$WORK/wheel/$f" "$WORK/native/$f"; then echo "ok: $f equals the source build's"
        else echo "FAILED: $f differs from the source build's"; FAILED=1; fi
    done
    generate "$NATIVE" native > "$WORK/native.txt"
    if cmp -s "$WORK/wheel.txt" "$WORK/native.txt"; then echo "ok: generate's continuation equals the source build's"
    else echo "FAILED: generate's continuation differs from the source build's"; FAILED=1; fi
    if cmp -s "$WORK/wheel/slerp.gguf" "$WORK/native/slerp.gguf"; then echo "ok: the Q8_0 GGUF equals the source build's"
    else echo "FAILED: the Q8_0 GGUF differs from the source build's"; FAILED=1; fi
else
    echo "note: no source build at $NATIVE to compare bytes with (scripts/build.sh makes one)"
fi
exit $FAILED

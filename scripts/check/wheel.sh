#!/usr/bin/env bash
# Installs the `amalgam-merge` wheel into a fresh venv, offline, and runs it as a user would: `amalgam --version`
# must name the version and this checkout's commit; a merge of the quick-start config and a GGUF conversion
# must give the same bytes as the `amalgam` built from source for this machine (scripts/build.sh), when that
# binary exists. Prints what it checked; exit status 1 on any difference. Not part of CI (the wheel's own
# release build takes several minutes).
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

# The installed command runs away from the repository, as a user's would: inputs by absolute path.
sed "s|fixtures/|$ROOT/fixtures/|g" examples/quickstart-slerp.yml > "$WORK/slerp.yml"
(cd "$WORK" && "$AMALGAM" merge slerp.yml "$WORK/wheel-slerp" >/dev/null)
(cd "$WORK" && "$AMALGAM" convert "$WORK/wheel-slerp" "$WORK/wheel-slerp.gguf" --type q8_0 >/dev/null)
echo "ok: merge and convert ran from the wheel"

NATIVE=$ROOT/.build/release/amalgam
if [ -x "$NATIVE" ]; then
    (cd "$WORK" && "$NATIVE" merge slerp.yml "$WORK/native-slerp" >/dev/null)
    (cd "$WORK" && "$NATIVE" convert "$WORK/native-slerp" "$WORK/native-slerp.gguf" --type q8_0 >/dev/null)
    for f in model.safetensors; do
        if cmp -s "$WORK/wheel-slerp/$f" "$WORK/native-slerp/$f"; then echo "ok: $f equals the source build's"
        else echo "FAILED: $f differs from the source build's"; FAILED=1; fi
    done
    if cmp -s "$WORK/wheel-slerp.gguf" "$WORK/native-slerp.gguf"; then echo "ok: the Q8_0 GGUF equals the source build's"
    else echo "FAILED: the Q8_0 GGUF differs from the source build's"; FAILED=1; fi
else
    echo "note: no source build at $NATIVE to compare bytes with (scripts/build.sh makes one)"
fi
exit $FAILED

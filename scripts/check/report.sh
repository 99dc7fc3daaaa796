#!/usr/bin/env bash
# Opens an `amalgam report` page in headless Chromium (Debian's `chromium`, installed here when missing: it
# is too large to install for every test run), takes a full-page screenshot, and fails on console errors,
# script exceptions, any request outside the page, or a plot that draws nothing (scripts/check/report_check.py).
#   scripts/check/report.sh [PAGE.html [SCREENSHOT.png]]
# PAGE defaults to the main job's work-data/report.html; SCREENSHOT to PAGE with .png.
set -euo pipefail
cd "$(dirname "$0")/../.."
page="${1:-work-data/report.html}"
shot="${2:-${page%.html}.png}"
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian's package, for the headless check)" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
exec python3 scripts/check/report_check.py "$page" "$shot" "$(command -v chromium)"

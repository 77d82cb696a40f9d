#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`) for tests/demo/test_report_html.py,
# only when it is missing. Meant for `make test`'s set-up; needs root (or sudo) and apt-get.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "installing chromium (Debian package) for the HTML report test..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null

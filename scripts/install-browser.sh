#!/bin/sh
# Install headless Chromium for the report's browser tests and screenshots (Debian/Ubuntu).
# Idempotent: does nothing when a chromium is already on PATH. Needs root (or sudo).
#   scripts/install-browser.sh            # then: python -m pytest -m browser
set -eu
for exe in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$exe" >/dev/null 2>&1; then
        echo "browser present: $(command -v "$exe")"
        exit 0
    fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install Chromium with your package manager, or set SHARPSET_CHROMIUM=/path/to/chrome" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium fonts-liberation
command -v chromium

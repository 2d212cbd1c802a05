#!/usr/bin/env bash
# The README's test command: system packages, Python packages, then pytest. Works as root (a fresh
# Debian container has no sudo) and as a user with sudo. Arguments go to pytest, e.g.
#   scripts/test.sh -m fast          # the fast tier only (see pytest.ini)
# ZIMU_SKIP_SETUP=1 skips the two installs (an already set-up machine).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ZIMU_SKIP_SETUP:-}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # ffmpeg (yt-dlp's test media), Debian's Chromium for the browser tests, a CJK font so it renders hanzi.
  if command -v apt-get >/dev/null; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends ffmpeg chromium fonts-noto-cjk >/dev/null
  fi
  # torch is pinned in requirements-train.txt (the CPU build); the app alone needs requirements.txt.
  python3 -m pip install -q --root-user-action=ignore -r requirements-train.txt
fi

exec python3 -m pytest -q "$@"

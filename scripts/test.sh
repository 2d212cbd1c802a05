#!/usr/bin/env bash
# The README's test command: system packages, Python packages, then pytest. Works as root (a fresh
# Debian container has no sudo) and as a user with sudo. Arguments go to pytest, e.g.
#   scripts/test.sh -m fast          # the fast tier only (see pytest.ini)
# ZIMU_SKIP_SETUP=1 skips the two installs (an already set-up machine).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's own python3 is "externally managed" (PEP 668): pip refuses to install into it, for root
# too. There the Python packages go into a virtual environment, .venv; a python3 of one's own
# (pyenv, conda, a container's) takes them directly.
externally_managed() {
  python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'
}
python=python3
if externally_managed; then
  python=.venv/bin/python
fi

if [ -z "${ZIMU_SKIP_SETUP:-}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # ffmpeg (yt-dlp's test media), Debian's Chromium for the browser tests, a CJK font so it renders hanzi;
  # python3-venv where the environment is needed.
  packages=(ffmpeg chromium fonts-noto-cjk)
  [ "$python" = python3 ] || packages+=(python3-venv)
  # npm fetches the synthesised voices (the npm package kokoro-js) where the machine has no Node.js yet.
  command -v npm >/dev/null || packages+=(npm)
  if command -v apt-get >/dev/null; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
  [ "$python" = python3 ] || [ -x "$python" ] || python3 -m venv .venv
  # torch is pinned in requirements-train.txt (the CPU build); the app alone needs requirements.txt.
  "$python" -m pip install -q --root-user-action=ignore -r requirements-train.txt
fi

exec "$python" -m pytest -q "$@"

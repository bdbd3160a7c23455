#!/usr/bin/env bash
# Create the project's virtual environment .venv and install ascent into it (idempotent: a second
# run with an unchanged pyproject.toml does nothing). PyTorch is pinned to the local CPU wheel
# first, so that no CUDA build is downloaded; the package itself accepts a range.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${ASCENT_EXTRAS:-test,mujoco,box2d,video,atari,tune,track,docs}
stamp=".venv/.ascent-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import ascent, torch" 2>/dev/null; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" numpy 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch" || { echo "setup: torch failed to install" >&2; exit 1; }
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import ascent, gymnasium" || { echo "setup: ascent failed to install" >&2; exit 1; }
echo "$want" > "$stamp"

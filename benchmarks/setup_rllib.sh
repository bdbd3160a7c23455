#!/usr/bin/env bash
# A separate virtual environment with RLlib at ascent's Ray version, for the side-by-side IMPALA run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv-rllib/bin/python ] && .venv-rllib/bin/python -c "import ray.rllib" 2>/dev/null; then exit 0; fi
python3 -m venv .venv-rllib
.venv-rllib/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv-rllib/bin/python -m pip install -q --disable-pip-version-check "ray[rllib]==2.60.0" "gymnasium[classic-control]" 2>&1 | grep -v "^WARNING: Location" || true
.venv-rllib/bin/python -c "import ray, ray.rllib; print('ray[rllib]', ray.__version__)"

#!/usr/bin/env bash
# A separate virtual environment with Stable-Baselines3 from the registry, for side-by-side runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv-bench/bin/python ] && .venv-bench/bin/python -c "import stable_baselines3, Box2D" 2>/dev/null; then exit 0; fi
python3 -m venv .venv-bench
.venv-bench/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv-bench/bin/python -m pip install -q --disable-pip-version-check stable-baselines3 "gymnasium[classic-control,mujoco,box2d]" 2>&1 | grep -v "^WARNING: Location" || true
.venv-bench/bin/python -c "import stable_baselines3; print('stable-baselines3', stable_baselines3.__version__)"

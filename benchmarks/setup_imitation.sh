#!/usr/bin/env bash
# A separate virtual environment with HumanCompatibleAI's `imitation` 1.0.1 from the registry, for the
# side-by-side BC / GAIL runs (benchmarks/imitation_peer.py). imitation 1.0.1 pins gymnasium~=0.29 and
# stable-baselines3~=2.2.1, which clash with ascent's own gymnasium, hence its own venv.
# torch==2.13.0 goes in first (the local CPU wheel); imitation's `torch>=1.4.0` and SB3's `torch>=1.13`
# then accept it, and pip does not fetch another torch. The peer reads ascent's Minari datasets with
# h5py directly (Minari 0.5 wants gymnasium>=1.0, which imitation 1.0.1 refuses).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv-imitation/bin/python ] && .venv-imitation/bin/python -c "import imitation" 2>/dev/null; then exit 0; fi
python3 -m venv .venv-imitation
.venv-imitation/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv-imitation/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" "imitation==1.0.1" "gymnasium[classic-control]~=0.29" h5py 2>&1 | grep -v "^WARNING: Location" || true
.venv-imitation/bin/python -c "
import imitation, stable_baselines3, gymnasium, torch, numpy, h5py
print('imitation', imitation.__version__, '| stable-baselines3', stable_baselines3.__version__,
      '| gymnasium', gymnasium.__version__, '| torch', torch.__version__, '| numpy', numpy.__version__,
      '| h5py', h5py.__version__)"

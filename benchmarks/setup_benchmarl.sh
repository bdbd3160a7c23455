#!/usr/bin/env bash
# A separate virtual environment with BenchMARL 1.5.2 from the registry, for the side-by-side MAPPO run
# on MPE simple_spread (benchmarks/benchmarl_peer.py).
#
# Why these versions:
# - benchmarl 1.5.2 requires torchrl>=0.10,<0.12; torchrl 0.11.1 accepts any torch>=2.1 and pins
#   tensordict>=0.11,<0.12, so it runs on the local CPU torch 2.13.0. (torchrl 0.14.x would also take
#   torch 2.13, but BenchMARL 1.5.2 refuses it, and its 0.12+ API is not the one BenchMARL was written for.)
# - BenchMARL's pettingzoo tasks build envs through torchrl's PettingZooEnv, which looks the task up in
#   `pettingzoo.utils.all_modules` → `pettingzoo.mpe`; pettingzoo 1.25 removed `pettingzoo.mpe` (moved to
#   the `mpe2` package), so this venv pins pettingzoo 1.24.3, the last release with it. Its `mpe` extra
#   brings pygame 2.3.0 (the MPE module imports pygame at import time). BenchMARL's own extra asks for
#   pettingzoo[all], i.e. atari/box2d/chess too: not needed for MPE.
# - torch==2.13.0 (the local CPU wheel) goes in first and is then a constraint for every later install,
#   so no resolver step can swap in another (CUDA, multi-GB) torch; torchvision (a BenchMARL requirement)
#   then resolves to the release built for torch 2.13.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-benchmarl
check='import benchmarl, torchrl, tensordict, pettingzoo.mpe, torch; assert torch.__version__.startswith("2.13.0")'
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
    echo "$VENV already set up"
    exit 0
fi
python3 -m venv "$VENV"
pip_install() {  # pip's own failure fails the script (pipefail); only the noisy index warning is dropped
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
        | { grep -v "^WARNING: Location" || true; }
}
pip_install "torch==2.13.0"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" > "$constraints"
pip_install -c "$constraints" "benchmarl==1.5.2" "torchrl==0.11.1" "pettingzoo[mpe]==1.24.3"
"$VENV/bin/python" -c "$check"
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
print(" | ".join(f"{p} {version(p)}" for p in
      ("benchmarl", "torchrl", "tensordict", "torch", "torchvision", "pettingzoo", "pygame",
       "gymnasium", "numpy", "hydra-core")))
EOF

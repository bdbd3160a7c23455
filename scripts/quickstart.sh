#!/usr/bin/env bash
# The main job: set up .venv, train PPO on CartPole-v1 (100k steps, live progress bar), evaluate it
# over 10 episodes, and write the learning curve to runs/quickstart/learning_curve.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
RUN_DIR=${RUN_DIR:-runs/quickstart}
rm -rf "$RUN_DIR"
.venv/bin/ascent train ppo --env CartPole-v1 --steps 100000 --seed 0 --run-dir "$RUN_DIR"
.venv/bin/ascent eval "$RUN_DIR" --episodes 10
echo "learning curve: $RUN_DIR/learning_curve.png"

"""A small hyperparameter comparison: each configuration over several seeds, final evaluation or
training time to an evaluation threshold. The figures in RESULTS.md that compare presets come from it.

  python benchmarks/sweep.py ppo Pendulum-v1 150000 --seeds 3 --config "" --config "log_std_init=-0.5"
  python benchmarks/sweep.py ppo CartPole-v1 200000 --seeds 5 --threshold 475 \
      --config "n_envs=32 n_steps=16 batch_size=512 n_epochs=5 learning_rate=2e-3"

Each --config is a space-separated list of key=value (SB3 names) applied over the env's preset.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workers import run_ascent  # noqa: E402

from ascent.core.config import parse_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("algo")
    ap.add_argument("env")
    ap.add_argument("steps", type=int)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--config", action="append", default=[], help="key=value ... (repeatable; '' = the preset)")
    ap.add_argument("--threshold", type=float, default=None, help="report train seconds to this eval return")
    ap.add_argument("--eval-every", type=int, default=2048)
    args = ap.parse_args()
    print("| config | per seed | median | mean |")
    print("|---|---|---|---|")
    for spec in args.config or [""]:
        hp = parse_set(spec.split())
        values = []
        for seed in range(args.seeds):
            r = run_ascent(args.algo, args.env, args.steps, dict(hp, seed=seed), args.threshold, args.eval_every)
            if args.threshold is None:
                values.append(r["eval_return"])
            else:
                values.append(r["train_s_to_threshold"] if r["train_s_to_threshold"] is not None else float("inf"))
        shown = ", ".join(f"{v:.2f}" for v in values)
        finite = [v for v in values if v != float("inf")]
        mean = statistics.mean(finite) if finite else float("nan")
        print(f"| {spec or '(preset)'} | {shown} | {statistics.median(values):.2f} | {mean:.2f} |", flush=True)


if __name__ == "__main__":
    main()

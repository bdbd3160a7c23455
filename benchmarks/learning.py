"""Learning benchmark: final deterministic evaluation (10 episodes) over seeds, with each env's
default preset, plus learning-curve figures.

  python benchmarks/learning.py --tasks cartpole,pendulum --seeds 3 [--out runs/bench] [--resume]

With --resume, a seed whose run directory holds a checkpoint continues from it (`Agent.resume`)
instead of starting again; its wall time is then the training time its metrics CSV records
over all the processes that ran it. Long runs: add `--set checkpoint_every=25000 --set save_replay_buffer=true`.

Prints a markdown table; figures go to benchmarks/figures/ppo-ENV.png.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import ascent
from ascent.core.config import parse_set
from ascent.core.plotting import plot_runs
from ascent.core.run import RunDirectory

ROOT = Path(__file__).resolve().parent.parent
# name: (algo, env id, steps, target return or None, what the target means[, hyperparameter overrides])
TASKS = {
    "cartpole": ("ppo", "CartPole-v1", 100_000, 475.0, ">= 475 within 100k (RL-Zoo: 500)"),
    "pendulum": ("ppo", "Pendulum-v1", 150_000, -200.0, ">= -200 within 150k (RL-Zoo: -172 @100k)"),
    "acrobot": ("ppo", "Acrobot-v1", 200_000, -100.0, "no preset (defaults): learns (random: -500)"),
    "lunarlander": ("ppo", "LunarLander-v3", 500_000, 100.0, "no preset (defaults): learns (random: about -200)"),
    "a2c-cartpole": ("a2c", "CartPole-v1", 200_000, 475.0, ">= 475 within 200k (RL-Zoo: 500 @500k)"),
    "trpo-cartpole": ("trpo", "CartPole-v1", 100_000, 475.0, ">= 475 within 100k (issue 3; RL-Zoo: 500)"),
    "trpo-pendulum": ("trpo", "Pendulum-v1", 150_000, -200.0, ">= -200 within 150k (issue 3; RL-Zoo: -175 @100k)"),
    "npg-cartpole": ("npg", "CartPole-v1", 300_000, 400.0, ">= 400 within 300k (issue 3)"),
    "reinforce-cartpole": ("reinforce", "CartPole-v1", 300_000, 450.0, ">= 450 within 300k (issue 3): reward-to-go + learned baseline"),
    "reinforce-rtg-mean": ("reinforce", "CartPole-v1", 300_000, None, "reward-to-go, batch-mean baseline",
                           {"baseline": "mean"}),
    "reinforce-rtg-none": ("reinforce", "CartPole-v1", 300_000, None, "reward-to-go, no baseline", {"baseline": "none"}),
    "reinforce-full-optimal": ("reinforce", "CartPole-v1", 300_000, None, "full return, variance-optimal baseline",
                               {"baseline": "optimal", "return_type": "full"}),
    "reinforce-full-none": ("reinforce", "CartPole-v1", 300_000, None, "full return, no baseline (vanilla)",
                            {"baseline": "none", "return_type": "full"}),
    "halfcheetah": ("ppo", "HalfCheetah-v5", 1_000_000, None, "learning clearly within 1M (RL-Zoo v3: 5819 @1M)"),
    "ac-cartpole": ("ac", "CartPole-v1", 100_000, 475.0, "one-step actor-critic, V critic (TD(0))"),
    "ac-q-cartpole": ("ac", "CartPole-v1", 100_000, 475.0, "one-step actor-critic, Q critic (expected SARSA)",
                      {"critic": "q"}),
    "offpg-per-decision": ("offpg", "CartPole-v1", 200_000, None, "per-decision importance weights (default)"),
    "offpg-trajectory": ("offpg", "CartPole-v1", 200_000, None, "full-trajectory importance weight",
                         {"estimator": "trajectory"}),
    "offpg-first-order": ("offpg", "CartPole-v1", 200_000, None, "first-order approximation (per-step ratio)",
                          {"estimator": "first_order"}),
    "sac-pendulum": ("sac", "Pendulum-v1", 20_000, -200.0, ">= -200 within 20k (issue 4; RL-Zoo: -157)"),
    "sac-pendulum-fp32": ("sac", "Pendulum-v1", 20_000, -200.0, "fp32 matmuls (the precision check)", {"precision": "fp32"}),
    "td3-pendulum": ("td3", "Pendulum-v1", 20_000, -200.0, ">= -200 within 20k (issue 4; RL-Zoo: -152)"),
    "td3-pendulum-fp32": ("td3", "Pendulum-v1", 20_000, -200.0, "fp32 matmuls (the precision check)", {"precision": "fp32"}),
    "ddpg-pendulum": ("ddpg", "Pendulum-v1", 20_000, -200.0, ">= -200 within 20k (issue 4; RL-Zoo: -152)"),
    "ddpg-pendulum-fp32": ("ddpg", "Pendulum-v1", 20_000, -200.0, "fp32 matmuls (the precision check)", {"precision": "fp32"}),
    "sac-halfcheetah": ("sac", "HalfCheetah-v5", 300_000, None, "curve to 300k (RL-Zoo/CleanRL curves for comparison)"),
    "td3-halfcheetah": ("td3", "HalfCheetah-v5", 300_000, None, "curve to 300k"),
    "sac-hopper": ("sac", "Hopper-v5", 300_000, None, "curve to 300k"),
    "td3-hopper": ("td3", "Hopper-v5", 300_000, None, "curve to 300k"),
}


def recorded_wall(run_dir: Path) -> float:
    """A resumed run's training time over all its processes, from the metrics CSV. Since the clock is
    carried in the checkpoint, wall_time runs on across resumes and its last value is the total;
    run directories written before restart it at zero in every process (and resuming drops the rows
    after the checkpoint), so each drop of wall_time ends a segment and the segments' last values add
    up. Counting from the CSV also holds when --resume finds a run already finished."""
    import csv

    with open(run_dir / "metrics.csv", newline="") as f:
        walls = [float(r["wall_time"]) for r in csv.DictReader(f) if r.get("wall_time")]
    return sum(prev for prev, cur in zip(walls, walls[1:]) if cur < prev) + (walls[-1] if walls else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="cartpole,pendulum")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra hyperparameters for every task")
    ap.add_argument("--resume", action="store_true", help="continue seeds whose run directory has a checkpoint")
    args = ap.parse_args()
    figures = ROOT / "benchmarks" / "figures"
    print("| algo | env | steps | preset | eval return per seed | mean +- std | target | wall s per seed |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.tasks.split(","):
        algo, env_id, steps, target, what, *rest = TASKS[name]
        overrides = rest[0] if rest else {}
        extra = parse_set(args.set)
        returns, walls, dirs, preset = [], [], [], None
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run_dir = Path(args.out) / f"{name}-{env_id}-s{seed}"
            start = time.perf_counter()
            if args.resume and (run_dir / "checkpoints" / "last.pt").exists():
                agent = ascent.get_algorithm(algo).resume(run_dir, progress_bar=False, verbose=0)
                walls.append(recorded_wall(run_dir))
            else:  # a fresh run: what an earlier invocation left in its directory is cleared
                RunDirectory(run_dir).clear()
                agent = ascent.get_algorithm(algo)(env_id, seed=seed, run_dir=run_dir, verbose=0, **overrides, **extra)
                agent.learn(steps, progress_bar=False)
                walls.append(time.perf_counter() - start)
            preset = agent.preset
            returns.append(agent.evaluate(10)["mean_return"])
            dirs.append(run_dir)
        figure = f"{algo}-{env_id}.png" if not overrides else f"{name}-{env_id}.png"
        seeds = f"{args.seeds} seed{'s' if args.seeds > 1 else ''}"
        plot_runs(dirs, figures / figure, title=f"{algo} {env_id} ({what.split(':')[-1].strip() if overrides else seeds})")
        mean = statistics.mean(returns)
        std = statistics.pstdev(returns)
        met = "" if target is None else (" (met)" if mean >= target else " (NOT met)")
        label = algo if not overrides else f"{algo} ({what})"
        print(f"| {label} | {env_id} | {steps // 1000}k | {preset or 'defaults'} | {', '.join(f'{r:.1f}' for r in returns)} | "
              f"{mean:.1f} +- {std:.1f} | {what}{met} | {', '.join(f'{w:.0f}' for w in walls)} |", flush=True)


if __name__ == "__main__":
    main()

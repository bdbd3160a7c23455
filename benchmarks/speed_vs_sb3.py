"""Side-by-side speed against Stable-Baselines3, on this machine, in one run.

  python benchmarks/speed_vs_sb3.py [--repeats 2] [--skip-threshold]

(a) steps/s with identical hyperparameters (RL-Zoo's; for PPO Pendulum without gSDE, which ascent
    does not implement, so both libraries run the same plain Gaussian policy). SB3 runs at 1 and at 2
    torch threads and its faster setting is used; ascent runs on-policy algorithms at 1 thread and the
    off-policy ones (SAC, TD3, DDPG: 256-400 wide nets, batch 256) at 2, plus an fp32 row next to
    its default (bf16 matmuls where the CPU has them natively).
(b) wall-clock training time (evaluations excluded) until a 10-episode deterministic evaluation,
    run every 2,048 steps, first reaches 475 on CartPole-v1: each library with its best preset
    (SB3: RL-Zoo's tuned one; ascent: its `cartpole-fast` preset), median over --seeds seeds.
Each configuration runs in a fresh process; runs alternate between the libraries so that machine
load drifts affect both alike. Prints a markdown table.

  --before PATH  also runs the ascent of another checkout (e.g. `git worktree add /tmp/before COMMIT`),
                 in the same alternation, as variant "before:..." (a refactor's speed, before and after)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SB3_PY = ROOT / ".venv-bench" / "bin" / "python"
WORKER = str(ROOT / "benchmarks" / "workers.py")

ZOO_CARTPOLE = {"n_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
                "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2"}
ZOO_PENDULUM = {"n_envs": 4, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10, "ent_coef": 0.0,
                "learning_rate": 1e-3, "clip_range": 0.2}
ZOO_A2C_CARTPOLE = {"n_envs": 8, "ent_coef": 0.0}
# RL-Zoo's Pendulum-v1 settings for the off-policy algorithms (SB3's defaults elsewhere: buffer 1M,
# batch 256, tau 0.005, train_freq 1, gradient_steps 1; SAC 256x256 nets and learning_starts 100).
ZOO_SAC_PENDULUM = {"learning_rate": 1e-3}
ZOO_TD3_PENDULUM = {"gamma": 0.98, "buffer_size": 200_000, "learning_starts": 10_000, "action_noise": "normal",
                    "action_noise_std": 0.1, "learning_rate": 1e-3, "net_arch": [400, 300]}
ZOO_DQN_CARTPOLE = {"learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
                    "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
                    "exploration_fraction": 0.16, "exploration_final_eps": 0.04, "net_arch": [256, 256]}
SPEED_TASKS = [("ppo", "CartPole-v1", 100_000, ZOO_CARTPOLE), ("ppo", "Pendulum-v1", 100_000, ZOO_PENDULUM),
               ("a2c", "CartPole-v1", 100_000, ZOO_A2C_CARTPOLE), ("sac", "Pendulum-v1", 20_000, ZOO_SAC_PENDULUM),
               ("td3", "Pendulum-v1", 20_000, ZOO_TD3_PENDULUM), ("ddpg", "Pendulum-v1", 20_000, ZOO_TD3_PENDULUM),
               ("dqn", "CartPole-v1", 50_000, ZOO_DQN_CARTPOLE)]
OFF_POLICY = ("sac", "td3", "ddpg")


def run(lib: str, algo: str, env: str, steps: int, threads: int, hp: dict, *extra, checkout: str | None = None) -> dict:
    python = str(SB3_PY) if lib == "sb3" else sys.executable
    env_vars = dict(os.environ, PYTHONPATH=checkout) if checkout else None  # that checkout's ascent first on the path
    out = subprocess.run([python, WORKER, lib, algo, env, str(steps), str(threads), json.dumps(hp), *map(str, extra)],
                         capture_output=True, text=True, cwd=ROOT, env=env_vars)
    if out.returncode != 0:
        raise RuntimeError(f"{lib} {algo} {env} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-threshold", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--tasks", default=None, help="comma-separated subset of the speed tasks, e.g. a2c:CartPole-v1")
    ap.add_argument("--seeds", type=int, default=5, help="seeds of the time-to-threshold comparison")
    ap.add_argument("--before", default=None, help="another checkout of ascent to run alongside (see the docstring)")
    args = ap.parse_args()
    subprocess.run(["bash", str(ROOT / "benchmarks" / "setup_sb3.sh")], check=True)

    if not args.skip_speed:
        print("| task | SB3 threads | SB3 steps/s | ascent steps/s (variant) | ratio | SB3 eval | ascent eval | every run's steps/s |")
        print("|---|---|---|---|---|---|---|---|")
        tasks = [t for t in SPEED_TASKS if args.tasks is None or f"{t[0]}:{t[1]}" in args.tasks.split(",")]
        for algo, env, steps, hp in tasks:
            sb3 = {1: [], 2: []}
            variants = {"auto": {"vectorization": "auto"}}
            if env == "CartPole-v1" and algo == "ppo":
                variants["sync"] = {"vectorization": "sync"}
            if algo in OFF_POLICY:
                variants = {"bf16": {"precision": "auto"}, "fp32": {"precision": "fp32"}}
            if algo == "dqn":
                variants = {"fp32": {"precision": "fp32"}}
            if args.before:
                variants.update({f"before:{name}": extra for name, extra in list(variants.items())})
            ours = {name: [] for name in variants}
            our_threads = 2 if algo in OFF_POLICY or algo == "dqn" else 1
            for _ in range(args.repeats):
                for threads in (1, 2):
                    sb3[threads].append(run("sb3", algo, env, steps, threads, hp))
                for name, extra in variants.items():
                    checkout = args.before if name.startswith("before:") else None
                    ours[name].append(run("ascent", algo, env, steps, our_threads, dict(hp, **extra), checkout=checkout))
            med = lambda rs: statistics.median(r["steps_per_s"] for r in rs)  # noqa: E731
            best_threads = max(sb3, key=lambda t: med(sb3[t]))
            sb3_sps = med(sb3[best_threads])
            for vec, rs in ours.items():
                evals_sb3 = "/".join(f"{r['eval_return']:.0f}" for r in sb3[best_threads])
                evals_ours = "/".join(f"{r['eval_return']:.0f}" for r in rs)
                runs = lambda rs: ", ".join(f"{r['steps_per_s']:,.0f}" for r in rs)  # noqa: E731
                every = f"SB3 1 thread: {runs(sb3[1])}; SB3 2 threads: {runs(sb3[2])}; ascent: {runs(rs)}"
                print(f"| {algo} {env} {steps // 1000}k | {best_threads} | {sb3_sps:,.0f} | {med(rs):,.0f} ({vec}) | "
                      f"{med(rs) / sb3_sps:.2f}x | {evals_sb3} | {evals_ours} | {every} |", flush=True)

    if not args.skip_threshold:
        from ascent.core.config import PRESET_META_KEYS, load_presets

        fast = {k: v for k, v in load_presets("ppo")["cartpole-fast"].items() if k not in PRESET_META_KEYS}
        rows = []
        for seed in range(args.seeds):
            s = run("sb3", "ppo", "CartPole-v1", 200_000, 1, dict(ZOO_CARTPOLE, seed=seed), 475, 2048)
            o = run("ascent", "ppo", "CartPole-v1", 200_000, 1, dict(fast, seed=seed), 475, 2048)
            rows.append((seed, s, o))
        print()
        print("| CartPole-v1, train time to eval >= 475 | SB3, RL-Zoo preset: s (steps) | ascent, cartpole-fast: s (steps) |")
        print("|---|---|---|")
        fmt = lambda r: "not reached" if r["train_s_to_threshold"] is None else f"{r['train_s_to_threshold']:.2f} ({r['steps_to_threshold']})"  # noqa: E731
        for seed, s, o in rows:
            print(f"| seed {seed} | {fmt(s)} | {fmt(o)} |")
        big = float("inf")
        med_s = statistics.median(r["train_s_to_threshold"] or big for _, r, _ in rows)
        med_o = statistics.median(r["train_s_to_threshold"] or big for _, _, r in rows)
        print(f"| median | {med_s:.2f} | {med_o:.2f} (ratio {med_o / med_s:.2f}) |")


if __name__ == "__main__":
    main()

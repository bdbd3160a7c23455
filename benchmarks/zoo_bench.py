"""RL-Zoo's own hyperparameter files through `ascent train ALGO --env ENV --preset zoo:FILE`, at RL-Zoo's
budgets (each entry's n_timesteps), against RL-Zoo's published scores.

  python benchmarks/zoo_bench.py [--only ppo-cartpole,dqn-cartpole] [--seeds 3] [--out runs/zoo-bench]

The files are the `rl_zoo3` package's (hyperparams/ppo.yml, sac.yml, dqn.yml), read from the SB3
benchmark venv (.venv-bench, made by benchmarks/setup_sb3.sh; rl_zoo3 is installed there on first use),
or from --zoo-dir. Each run is the CLI's: its final deterministic evaluation (--eval-episodes) is the
return reported, and its wall time is the whole `ascent train` command's. The keys that ascent does
not convert are printed once per task, as `ascent train` names them.

RL-Zoo's scores are from rl-baselines3-zoo's benchmark.md (one run; the final agent evaluated
deterministically over about 150k steps). Its LunarLander rows were trained on LunarLander-v2 and
LunarLanderContinuous-v2 with the hyperparameters that rl_zoo3 2.x files under the -v3 ids.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"  # benchmarks/setup_sb3.sh's venv (Stable-Baselines3 2.9.2)
RL_ZOO = "rl_zoo3==2.9.2"  # the release that matches that venv's SB3

# name: (algo, file in rl_zoo3's hyperparams/, env id, RL-Zoo's score from benchmark.md)
TASKS = {
    "ppo-cartpole": ("ppo", "ppo.yml", "CartPole-v1", 500.0),
    "ppo-pendulum": ("ppo", "ppo.yml", "Pendulum-v1", -172.2),
    "ppo-lunarlander": ("ppo", "ppo.yml", "LunarLander-v3", 242.1),
    "sac-pendulum": ("sac", "sac.yml", "Pendulum-v1", -157.0),
    "sac-lunarlandercontinuous": ("sac", "sac.yml", "LunarLanderContinuous-v3", 260.4),
    "dqn-cartpole": ("dqn", "dqn.yml", "CartPole-v1", 500.0),
    "dqn-lunarlander": ("dqn", "dqn.yml", "LunarLander-v3", 154.4),
}


def zoo_hyperparams_dir() -> Path:
    """rl_zoo3's hyperparams/ in the SB3 benchmark venv: the venv made and rl_zoo3 installed there
    the first time. The package is found, not imported (importing it loads SB3)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "setup_sb3.sh")], check=True)
    find = [str(python), "-c", "import importlib.util; spec = importlib.util.find_spec('rl_zoo3'); "
            "print(spec.submodule_search_locations[0] if spec else '')"]
    where = subprocess.run(find, capture_output=True, text=True, check=True).stdout.strip()
    if not where:
        subprocess.run([str(python), "-m", "pip", "install", "-q", RL_ZOO], check=True)
        where = subprocess.run(find, capture_output=True, text=True, check=True).stdout.strip()
    return Path(where) / "hyperparams"


def entry_budget(file: Path, env_id: str) -> int:
    import yaml

    return int(float(yaml.safe_load(file.read_text())[env_id]["n_timesteps"]))


def train(algo: str, file: Path, env_id: str, seed: int, run_dir: Path, eval_episodes: int,
          steps: int | None) -> tuple[float, float, list[str]]:
    """(evaluation return, wall seconds, the lines naming unconverted keys) of one `ascent train`."""
    command = [sys.executable, "-m", "ascent.cli", "train", algo, "--env", env_id, "--preset", f"zoo:{file}",
               "--seed", str(seed), "--run-dir", str(run_dir), "--no-progress", "--overwrite",
               "--eval-episodes", str(eval_episodes)]
    if steps is not None:
        command += ["--steps", str(steps)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    notes = [line for line in result.stderr.splitlines() if line.startswith(f"ascent: {file.name} [")]
    return json.loads((run_dir / "eval.json").read_text())["mean_return"], wall, notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(TASKS), help=f"comma list of tasks: {', '.join(TASKS)}")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 per task")
    p.add_argument("--out", default="runs/zoo-bench", help="where the run directories go")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes of each run's final evaluation")
    p.add_argument("--steps", type=int, default=None, help="train this many steps instead of RL-Zoo's budget "
                   "(a quick check; the table then says so)")
    p.add_argument("--zoo-dir", default=None, help="an RL-Zoo hyperparams/ directory (default: rl_zoo3's, in "
                   ".venv-bench)")
    args = p.parse_args()
    tasks = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown tasks {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    zoo_dir = Path(args.zoo_dir) if args.zoo_dir else zoo_hyperparams_dir()
    print(f"RL-Zoo files: {zoo_dir}")

    rows = []
    for task in tasks:
        algo, name, env_id, zoo_score = TASKS[task]
        file = zoo_dir / name
        budget = args.steps or entry_budget(file, env_id)
        returns, walls = [], []
        for seed in range(args.seeds):
            run_dir = Path(args.out).resolve() / f"{task}-s{seed}"
            ret, wall, notes = train(algo, file, env_id, seed, run_dir, args.eval_episodes, args.steps)
            if seed == 0:
                for line in notes:
                    print(f"  {line}")
            returns.append(ret)
            walls.append(wall)
            print(f"{task} seed {seed}: {ret:.1f} in {wall:.0f} s", flush=True)
        spread = f" ± {statistics.stdev(returns):.1f}" if len(returns) > 1 else ""
        rows.append((env_id, algo, f"{budget:,}" + ("" if args.steps is None else " (--steps)"),
                     f"{statistics.mean(returns):.1f}{spread} ({', '.join(f'{r:.0f}' for r in returns)})",
                     f"{zoo_score:g}", f"{statistics.mean(walls):.0f}"))

    print(f"\n| env | algo | budget | ascent eval return (mean{' ± std' if args.seeds > 1 else ''}; per seed) "
          "| RL-Zoo benchmark.md | wall s (per seed) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

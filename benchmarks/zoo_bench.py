"""RL-Zoo's own hyperparameter files through `ascent train ALGO --env ENV --preset zoo:FILE`, at RL-Zoo's
budgets (each entry's n_timesteps), against RL-Zoo's published scores.

  python benchmarks/zoo_bench.py [--only ppo-cartpole,dqn-cartpole] [--seeds 3] [--first-seed 0] [--peer]
                                 [--out runs/zoo-bench]

The files are the `rl_zoo3` package's (hyperparams/ppo.yml, sac.yml, dqn.yml), read from the SB3
benchmark venv (.venv-bench, made by benchmarks/setup_sb3.sh; rl_zoo3 is installed there on first use),
or from --zoo-dir. Each run is the CLI's: its final deterministic evaluation (--eval-episodes) is the
return reported, and its wall time is the whole `ascent train` command's. The keys that ascent does
not convert are printed once per task, as `ascent train` names them.

With --peer, rl_zoo3 itself (`python -m rl_zoo3.train`, Stable-Baselines3, one torch thread as ascent's
runs) trains the same entry on the same seeds in that venv, and its final model is evaluated as
ascent's is (deterministic, --eval-episodes): the peer on this machine beside the published score.

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
    "sac-mountaincarcontinuous": ("sac", "sac.yml", "MountainCarContinuous-v0", 94.7),  # (gSDE)
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


PEER_EVAL = """
import json, sys
from pathlib import Path
import gymnasium as gym
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
algo, env_id, folder, episodes, seed = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
run = next(p for p in sorted((folder / algo).glob(env_id.replace('/', '-') + '_*')) if p.is_dir())
model = {"a2c": A2C, "dqn": DQN, "ppo": PPO, "sac": SAC, "td3": TD3}[algo].load(run / (env_id + ".zip"), device="cpu")
env = DummyVecEnv([lambda: gym.make(env_id)])
stats = run / env_id / "vecnormalize.pkl"
if stats.exists():
    env = VecNormalize.load(str(stats), env)
    env.training, env.norm_reward = False, False
env.seed(seed + 10_000)
mean, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)
print(json.dumps({"mean_return": float(mean)}))
"""


def train_peer(algo: str, file: Path, env_id: str, seed: int, folder: Path, eval_episodes: int,
               steps: int | None) -> tuple[float, float]:
    """(evaluation return, wall seconds) of rl_zoo3 training the same entry on the same seed, in the
    SB3 venv, and its final model evaluated deterministically over eval_episodes."""
    python = str(BENCH_VENV / "bin" / "python")
    command = [python, "-m", "rl_zoo3.train", "--algo", algo, "--env", env_id, "--seed", str(seed), "-f", str(folder),
               "--eval-freq", "-1", "--num-threads", "1", "--vec-env", "dummy", "--conf-file", str(file)]
    if steps is not None:
        command += ["-n", str(steps)]
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder.parent if folder.parent.exists() else ROOT)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    evaluate = [python, "-c", PEER_EVAL, algo, env_id, str(folder), str(eval_episodes), str(seed)]
    out = subprocess.run(evaluate, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["mean_return"], wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(TASKS), help=f"comma list of tasks: {', '.join(TASKS)}")
    p.add_argument("--seeds", type=int, default=1, help="N seeds per task, from --first-seed")
    p.add_argument("--first-seed", type=int, default=0, help="the first seed")
    p.add_argument("--peer", action="store_true", help="also train each entry with rl_zoo3 (SB3) on the same seeds")
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
        returns, walls, peer_returns, peer_walls = [], [], [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run_dir = Path(args.out).resolve() / f"{task}-s{seed}"
            ret, wall, notes = train(algo, file, env_id, seed, run_dir, args.eval_episodes, args.steps)
            if seed == args.first_seed:
                for line in notes:
                    print(f"  {line}")
            returns.append(ret)
            walls.append(wall)
            print(f"{task} seed {seed}: {ret:.1f} in {wall:.0f} s", flush=True)
            if args.peer:
                folder = Path(args.out).resolve() / f"{task}-s{seed}-rl_zoo3"
                ret, wall = train_peer(algo, file, env_id, seed, folder, args.eval_episodes, args.steps)
                peer_returns.append(ret)
                peer_walls.append(wall)
                print(f"{task} seed {seed}, rl_zoo3: {ret:.1f} in {wall:.0f} s", flush=True)
        row = [env_id, algo, f"{budget:,}" + ("" if args.steps is None else " (--steps)"), summary(returns)]
        row += [summary(peer_returns)] if args.peer else []
        row += [f"{zoo_score:g}", f"{statistics.mean(walls):.0f}"]
        row += [f"{statistics.mean(peer_walls):.0f}"] if args.peer else []
        rows.append(row)

    spread = " ± std" if args.seeds > 1 else ""
    peer = (f" | rl_zoo3 (SB3) on the same seeds (mean{spread}; per seed)", " | rl_zoo3 wall s") if args.peer else ("", "")
    print(f"\n| env | algo | budget | ascent eval return (mean{spread}; per seed){peer[0]} | RL-Zoo benchmark.md "
          f"| wall s (per seed){peer[1]} |")
    print("|---|---|---|---|---|---|" + ("---|---|" if args.peer else ""))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def summary(returns: list[float]) -> str:
    spread = f" ± {statistics.stdev(returns):.1f}" if len(returns) > 1 else ""
    return f"{statistics.mean(returns):.1f}{spread} ({', '.join(f'{r:.0f}' for r in returns)})"


if __name__ == "__main__":
    main()

"""DQfD against DQN: env steps until the greedy policy reaches a target, over seeds.

  python benchmarks/dqfd.py [--seeds 3] [--only cartpole|mountaincar] [--demos 5]

For each task an expert is trained first (CartPole: PPO, 60k steps; MountainCar: DQN with its
`mountaincar` preset, 120k steps) and `--demos` of its episodes are recorded (deterministic) into a
Minari dataset in a temporary directory. Then, for each seed, DQN (its preset for the env) and DQfD
(its preset for the env, given the dataset) train until the mean return of a 10-episode
deterministic evaluation, taken every `eval_every` env steps (and after the first iteration),
reaches the task's last target, or the step budget runs out (MountainCar: the steps to -130 and to
-110 are both reported). The criterion is the same for both; DQfD's pre-training takes no env
steps (its gradient steps are printed beside). Writes nothing into the repository; prints a
markdown table.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

# name: (env id, target returns (the run stops at the last), eval every, step budget,
#        expert (algo, steps, hyperparameters))
TASKS = {
    "cartpole": ("CartPole-v1", (475.0,), 1_000, 100_000, ("ppo", 60_000, {})),
    "mountaincar": ("MountainCar-v0", (-130.0, -110.0), 2_000, 150_000, ("dqn", 120_000, {})),
}
EVAL_EPISODES = 10


def train_expert(env_id: str, algo: str, steps: int, hyperparameters: dict, out: Path, episodes: int) -> list[float]:
    """Train the expert, record `episodes` deterministic episodes of it at `out`; their returns."""
    from ascent.imitation.datasets import record_episodes, write_dataset
    from ascent.registry import get_algorithm

    expert = get_algorithm(algo)(env_id, seed=0, verbose=0, **hyperparameters).learn(steps, progress_bar=False)
    env = gym.make(env_id)
    recorded = record_episodes(lambda obs: expert.act(obs, deterministic=True), env, episodes, seed=1000)
    write_dataset(out, recorded, env, f"{env_id.split('-')[0].lower()}/bench-{algo}-v0", algo)
    env.close()
    return [float(e["rewards"].sum()) for e in recorded]


def steps_to_targets(agent, targets: tuple[float, ...], eval_every: int,
                     budget: int) -> tuple[list[int | None], float, float]:
    """Train until the evaluation (every `eval_every` env steps, and after the first iteration) reaches
    the last target, or `budget` steps: (the env steps at which each target was first reached, None
    where never, the best evaluation, seconds)."""
    seen = {"next": 0, "best": -np.inf}
    hits: list[int | None] = [None] * len(targets)

    def check(a, metrics) -> bool:
        if a.num_steps < seen["next"]:
            return True
        seen["next"] = (a.num_steps // eval_every + 1) * eval_every
        score = a.evaluate(EVAL_EPISODES)["mean_return"]
        seen["best"] = max(seen["best"], score)
        for i, target in enumerate(targets):
            if hits[i] is None and score >= target:
                hits[i] = a.num_steps
        return hits[-1] is None

    start = time.perf_counter()
    agent.learn(budget, callbacks=check, progress_bar=False)
    return hits, seen["best"], time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", choices=sorted(TASKS), default=None)
    ap.add_argument("--demos", type=int, default=5, help="demonstration episodes recorded from the expert")
    args = ap.parse_args()
    from ascent.algorithms.dqn import DQN
    from ascent.imitation.dqfd import DQfD

    rows = []
    with tempfile.TemporaryDirectory(prefix="ascent-dqfd-bench-") as tmp:
        for name, (env_id, targets, eval_every, budget, (algo, expert_steps, expert_hp)) in TASKS.items():
            if args.only not in (None, name):
                continue
            t = time.perf_counter()
            data = Path(tmp) / name
            returns = train_expert(env_id, algo, expert_steps, expert_hp, data, args.demos)
            print(f"{name}: {algo} expert ({expert_steps:,} steps, {time.perf_counter() - t:.0f} s): demonstrations "
                  f"{', '.join(f'{r:.0f}' for r in returns)}", flush=True)
            for label, make in (("DQN", lambda s: DQN(env_id, seed=s, verbose=0)),
                                ("DQfD", lambda s: DQfD(env_id, seed=s, verbose=0, dataset=str(data)))):
                runs = []
                for seed in range(args.seeds):
                    agent = make(seed)
                    hits, best, sec = steps_to_targets(agent, targets, eval_every, budget)
                    runs.append((hits, best, sec))
                    extra = f", after {agent.counters.pretrained:,} pre-training gradient steps" if label == "DQfD" else ""
                    print(f"  {label} seed {seed}: " + ", ".join(f">= {t:g} at {'-' if h is None else f'{h:,}'}"
                                                              for t, h in zip(targets, hits))
                          + f" (best eval {best:.1f}, {sec:.0f} s{extra})", flush=True)
                for i, target in enumerate(targets):
                    rows.append((f"{env_id} >= {target:g}", f"{label} ({agent.preset})", [r[0][i] for r in runs],
                                 [r[1] for r in runs], [r[2] for r in runs], budget))
    print(f"\n{EVAL_EPISODES}-episode deterministic evaluation; '-': not reached within the budget\n")
    print("| target | algorithm (preset) | env steps to reach it, per seed | median | best eval, per seed | s per seed |")
    print("|---|---|---|---|---|---|")
    for target, label, hits, bests, seconds, budget in rows:
        per_seed = ", ".join("-" if h is None else f"{h:,}" for h in hits)
        reached = sum(h is not None for h in hits)
        middle = statistics.median([math.inf if h is None else h for h in hits])  # a miss counts as past the budget
        median = (f"> {budget:,}" if middle == math.inf else f"{middle:,.0f}") + \
            ("" if reached == len(hits) else f" ({reached}/{len(hits)} reached)")
        print(f"| {target} | {label} | {per_seed} | {median} | {', '.join(f'{b:.0f}' for b in bests)} | "
              f"{statistics.mean(seconds):.0f} |")

if __name__ == "__main__":
    main()

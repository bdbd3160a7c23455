"""Tabular Q-learning / SARSA / expected SARSA against the exact optimum (issue 5 targets).

  python benchmarks/tabular.py --seeds 3

Each learned greedy policy is scored exactly (policy evaluation on the env's model over its time
limit: the success rate on FrozenLake, the return elsewhere), next to the optimal policy's value
from value iteration. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import ascent
from ascent.theory.tabular_planning import TabularModel, expected_return, greedy, value_iteration

# (algo, env, steps, hyperparameter overrides, what the issue asks)
TASKS = [
    ("qlearning", "FrozenLake-v1", 200_000, {}, "optimal success rate (~0.74)"),
    ("qlearning", "CliffWalking-v1", 50_000, {}, "optimal return (-13)"),
    ("sarsa", "CliffWalking-v1", 50_000, {}, "the safe path (-15 or -17)"),
    ("sarsa", "CliffWalking-v1", 50_000, {"expected": True}, "expected SARSA (safe path)"),
    ("qlearning", "Taxi-v4", 400_000, {}, "optimal return"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    print("| algo | env | steps | greedy policy's exact value per seed | optimal | asked | wall s per seed |")
    print("|---|---|---|---|---|---|---|")
    for algo, env_id, steps, overrides, asked in TASKS:
        model = TabularModel.from_env(env_id)
        horizon = model.horizon or 1000
        _, _, best = value_iteration(model, gamma=1.0 if "Cliff" in env_id else 0.99)
        optimal = expected_return(model, best, horizon=horizon)
        values, walls = [], []
        for seed in range(args.seeds):
            agent = ascent.get_algorithm(algo)(env_id, seed=seed, verbose=0, **overrides)
            start = time.perf_counter()
            agent.learn(steps, progress_bar=False)
            walls.append(time.perf_counter() - start)
            values.append(expected_return(model, greedy(agent.q_table()), horizon=horizon))
        label = algo + (" (expected)" if overrides.get("expected") else "")
        print(f"| {label} | {env_id} | {steps // 1000}k | {', '.join(f'{v:.3f}' for v in values)} | {optimal:.3f} | "
              f"{asked} | {', '.join(f'{w:.1f}' for w in walls)} |", flush=True)


if __name__ == "__main__":
    main()

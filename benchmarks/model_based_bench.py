"""Model-based against model-free on Pendulum-v1 (issue 18): env steps to reach a mean evaluation
return of -200, and the wall time it takes.

  python benchmarks/model_based_bench.py [--algos pets sac] [--seeds 0 1 2] [--stop-at-target]
                                         [--set pets:horizon=20 ...]

Every algorithm is evaluated every 1,000 env steps on 10 episodes (deterministic actions, a fresh
env seeded per evaluation); "steps to -200" is the first evaluation whose mean return is -200 or
more (PETS's target: within 5,000 env steps; SAC needs about 20,000 here). Wall times are split into
training and evaluation: a PETS evaluation plans every step of its 10 episodes (10 envs side by
side, batched in one plan per step), which costs about as much as a thousand training steps.

ALGORITHMS holds a row per algorithm: (registered name, env-step budget, hyperparameters, what the
row is). Adding MBPO is adding its row. With pets, a reference row follows: the same CEM planning
with Pendulum's true dynamics on the same evaluation episodes, the score a perfect model would give
(finite-horizon MPC without a value function is myopic: on some evaluation seeds even it stays below
-200). Each process runs torch on one thread (the configs'
torch_threads=1); run several seeds as separate processes where cores allow.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from ascent.core.config import parse_set
from ascent.core.evaluation import evaluate_policy
from ascent.model_based.ensemble import pendulum_reward
from ascent.model_based.pets import PETSConfig, cem
from ascent.registry import get_algorithm

ENV, TARGET, EVAL_EVERY, EVAL_EPISODES = "Pendulum-v1", -200.0, 1_000, 10

# PETS at the paper's planner (4 x 200 members, 500 x 20 particles over 30 steps, 5 CEM iterations)
# costs 10 s of one CPU core per env step, nearly all of it the members' matmuls and activations
# (2.4 GFLOP a horizon step, 150 of them): the CPU row plans with a smaller CEM and members.
# Measured with the true dynamics (true_dynamics_mpc) on this benchmark's evaluations: CEM's iterations
# matter more than its size here (H 15, 64 candidates: 4 iterations -317/-200/-184/-218/-210 at
# 1k..5k, 8 iterations -244/-175/-148/-168/-172; H 30, 200 candidates, 5 iterations: -296 to -183).
PETS_CPU = dict(net_arch=(64, 64), horizon=15, population=64, cem_elites=8, particles=5, cem_iterations=8)
ALGORITHMS: dict[str, tuple[str, int, dict, str]] = {
    "pets": ("pets", 5_000, PETS_CPU, "PETS, known reward, TS-inf; CPU-sized: CEM of 64 x 5 particles, 8 "
                                      "iterations, H 15, members 2 x 64"),
    "pets-paper": ("pets", 5_000, {}, "PETS at the paper's settings (4 x 200, 500 x 20 particles, H 30): GPU"),
    "sac": ("sac", 20_000, {}, "SAC with ascent's Pendulum preset (RL-Zoo's: learning_rate 1e-3)"),
    "mbpo": ("mbpo", 5_000, {}, "MBPO with its Pendulum preset: G 20, k 1, 100k rollouts every 250 steps, 7 members "
                                "of 4 x 200, SAC 64 x 64 at learning_rate 1e-3"),
}


def run(name: str, seed: int, overrides: dict, stop_at_target: bool) -> dict:
    algo, budget, hyperparameters, _ = ALGORITHMS[name]
    agent = get_algorithm(algo)(ENV, seed=seed, verbose=0, **{**hyperparameters, **overrides})
    reached, evals, train_s, eval_s = None, [], 0.0, 0.0
    while agent.num_steps < budget:
        start = time.perf_counter()
        agent.learn(EVAL_EVERY, progress_bar=False)
        middle = time.perf_counter()
        # (Agent.evaluate's episodes, all 10 side by side: PETS's 8 would plan 16 episodes' steps)
        mean = evaluate_policy(lambda obs: agent.act(obs, deterministic=True), ENV, EVAL_EPISODES,
                               seed=10_000 + agent.num_steps, max_parallel=EVAL_EPISODES)["mean_return"]
        train_s, eval_s = train_s + middle - start, eval_s + time.perf_counter() - middle
        evals.append((agent.num_steps, mean))
        print(f"  {name} seed {seed}: {agent.num_steps} steps, eval {mean:.1f} (train {train_s:.0f} s, "
              f"eval {eval_s:.0f} s)", file=sys.stderr, flush=True)
        if reached is None and mean >= TARGET:
            reached = agent.num_steps
            if stop_at_target:
                break
    return dict(name=name, seed=seed, reached=reached, final=evals[-1][1], steps=agent.num_steps,
                train_s=train_s, eval_s=eval_s, evals=evals)


def pendulum_dynamics(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's step on observations (gymnasium's pendulum.py: g = 10, m = l = 1, dt = 0.05,
    |torque| <= 2, |theta_dot| <= 8)."""
    theta, speed = torch.atan2(obs[..., 1], obs[..., 0]), obs[..., 2]
    speed = (speed + (15.0 * torch.sin(theta) + 3.0 * action[..., 0].clamp(-2.0, 2.0)) * 0.05).clamp(-8.0, 8.0)
    theta = theta + speed * 0.05
    return torch.stack([torch.cos(theta), torch.sin(theta), speed], -1)


def true_dynamics_mpc(planner: dict, budget: int) -> dict:
    """The reference PETS cannot beat: its CEM (the row's horizon, population, elites, iterations) on
    Pendulum's true dynamics and reward, evaluated on the same episodes as the rows."""
    c = PETSConfig(**planner)
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])

    def act(obs):
        start = torch.as_tensor(obs, dtype=torch.float32)

        def returns(actions):  # (N, pop, H, 1) -> (N, pop): the rewards summed along the true trajectory
            state, total = start[:, None].expand(*actions.shape[:2], 3), 0.0
            for t in range(c.horizon):
                total = total + pendulum_reward(state, actions[:, :, t])
                state = pendulum_dynamics(state, actions[:, :, t])
            return total

        mean = torch.zeros(len(obs), c.horizon, 1)  # CEM's initial mean and variance, as PETS's
        return cem(returns, mean, torch.full_like(mean, (4.0 ** 2) / 16), low, high, c.population, c.cem_elites,
                   c.cem_iterations, c.cem_alpha, torch.Generator().manual_seed(0))[:, 0].numpy()

    start, evals = time.perf_counter(), []
    for steps in range(EVAL_EVERY, budget + 1, EVAL_EVERY):
        evals.append((steps, evaluate_policy(act, ENV, EVAL_EPISODES, seed=10_000 + steps,
                                             max_parallel=EVAL_EPISODES)["mean_return"]))
    reached = next((s for s, m in evals if m >= TARGET), None)
    return dict(name="true-dynamics MPC", seed="-", reached=reached, final=evals[-1][1], steps=budget, train_s=0.0,
                eval_s=time.perf_counter() - start, evals=evals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", nargs="+", default=["pets", "sac"], choices=list(ALGORITHMS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--stop-at-target", action="store_true", help="end a run at its first evaluation >= -200")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the reference row: the pets row's CEM on the true dynamics, same evaluations")
    ap.add_argument("--set", nargs="*", default=[], metavar="ALGO:KEY=VALUE",
                    help="a hyperparameter of one row, e.g. pets:horizon=20")
    args = ap.parse_args()
    overrides: dict[str, dict] = {name: {} for name in ALGORITHMS}
    for item in args.set:
        name, _, pair = item.partition(":")
        if name not in ALGORITHMS or not pair:
            ap.error(f"--set takes ALGO:KEY=VALUE with ALGO one of {', '.join(ALGORITHMS)}; got {item!r}")
        overrides[name].update(parse_set([pair]))
    torch.set_num_threads(1)

    results = [run(name, seed, overrides[name], args.stop_at_target) for name in args.algos for seed in args.seeds]
    if "pets" in args.algos and not args.no_reference:
        results.append(true_dynamics_mpc({**ALGORITHMS["pets"][2], **overrides["pets"]}, ALGORITHMS["pets"][1]))
    print(f"| algorithm | seed | env steps to {TARGET:.0f} | last eval (steps) | train s | eval s | "
          "evaluations (steps: mean return) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        curve = ", ".join(f"{s // 1000}k: {m:.0f}" for s, m in r["evals"])
        print(f"| {r['name']} | {r['seed']} | {r['reached'] or 'not reached'} | {r['final']:.1f} ({r['steps']}) | "
              f"{r['train_s']:.0f} | {r['eval_s']:.0f} | {curve} |")
    for name in args.algos:  # (the reference row has no summary)
        rows = [r for r in results if r["name"] == name]
        hit = [r["reached"] for r in rows if r["reached"] is not None]
        print(f"\n{name} ({ALGORITHMS[name][3]}): reached {TARGET:.0f} in {len(hit)}/{len(rows)} seeds"
              + (f", median {statistics.median(hit):.0f} env steps" if hit else "")
              + f"; training {statistics.mean(r['train_s'] for r in rows):.0f} s per seed")


if __name__ == "__main__":
    main()

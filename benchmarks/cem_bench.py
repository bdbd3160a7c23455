"""The cross-entropy method on CartPole-v1 (issue 18): both variants must reach 475 within 100 iterations.

  python benchmarks/cem_bench.py [--seeds 3] [--iterations 100] [--set key=value ...]

  episodes    Lapan's setup (Deep RL Hands-On, ch. 4): 16 episodes an iteration, elites at or above
              the 70th percentile, a policy of one hidden layer of 128 ReLU units
  parameters  Szita & Lorincz's noisy CEM on the same network's weights: population 50, elite 20%,
              one episode per candidate, one env per candidate

After every iteration the policy (acting deterministically: the most likely action; for the
parameter variant the distribution's mean) is screened on 10 evaluation episodes, and where they
average 475 or more, evaluated on 100 more: "iterations to 475" is the first iteration whose
100-episode evaluation averages 475 or more (CartPole-v1's "solved"), where the run stops; the final
return is the last 100-episode evaluation (at the end of the budget if it never got there). Env
steps are training steps (evaluations excluded); the wall time is training's, then with the
evaluations.
"""

from __future__ import annotations

import argparse
import time

from ascent.core.config import parse_set
from ascent.model_based.cem import CEM

TARGET = 475.0
VARIANTS = {
    "episodes": dict(variant="episodes", n_envs=16, n_episodes=16, percentile=70.0),
    "parameters": dict(variant="parameters", n_envs=50, population=50, elite_frac=0.2, episodes_per_candidate=1),
}


def run(variant: str, seed: int, iterations: int, overrides: dict) -> dict:
    agent = CEM("CartPole-v1", seed=seed, verbose=0, **{**VARIANTS[variant], **overrides})
    start, reached, final = time.perf_counter(), None, None
    for it in range(1, iterations + 1):
        agent.learn(1, progress_bar=False)  # one iteration (learn stops once an iteration passes its target)
        if agent.evaluate(10, seed=10_000 + it)["mean_return"] >= TARGET:
            final = agent.evaluate(100, seed=20_000 + it)["mean_return"]
            if final >= TARGET:
                reached = it
                break
    if reached is None:
        final = agent.evaluate(100, seed=20_000 + iterations)["mean_return"]
    return dict(seed=seed, variant=variant, reached=reached, iterations=it, final=final, steps=agent.num_steps,
                train_s=agent.train_seconds, wall_s=time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=100, help="the budget (issue 18: 100)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="hyperparameters for every run")
    args = ap.parse_args()
    overrides = parse_set(args.set)
    print("| seed | variant | iterations to 475 | final eval return (100 episodes) | env steps | "
          "wall s (training / with evaluations) |")
    print("|---|---|---|---|---|---|")
    for variant in args.variants:
        for seed in range(args.seeds):
            r = run(variant, seed, args.iterations, overrides)
            reached = r["reached"] if r["reached"] is not None else f"not in {r['iterations']}"
            print(f"| {seed} | {variant} | {reached} | {r['final']:.1f} | {r['steps']:,} | "
                  f"{r['train_s']:.1f} / {r['wall_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()

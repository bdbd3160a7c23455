"""What each DQN extension buys: every switch alone on top of the env's preset, the
Double+Dueling+PER+n-step combination and all of them (Rainbow-style), over seeds.

  python benchmarks/dqn_switches.py --env CartPole-v1 --seeds 3 [--variants plain,double,...] [--jobs 2]

Sample efficiency is read two ways: the final deterministic evaluation (10 episodes) and the mean of
the periodic evaluations (5 episodes every --eval-every steps), the area under the learning curve
divided by its length, which rewards learning early. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

# C51's support must cover the discounted returns: CartPole +1 per step (gamma 0.99: up to 100),
# MountainCar -1 per step (gamma 0.98: down to -50).
SUPPORT = {"CartPole-v1": (0.0, 100.0), "MountainCar-v0": (-50.0, 0.0)}
STEPS = {"CartPole-v1": 50_000, "MountainCar-v0": 120_000}
NOISY = {"noisy": True, "exploration_initial_eps": 0.0, "exploration_final_eps": 0.0}
COMBO = {"double_q": True, "dueling": True, "prioritized_replay": True, "n_step": 3}


def variants(env_id: str) -> dict[str, dict]:
    v_min, v_max = SUPPORT[env_id]
    c51 = {"distributional": True, "v_min": v_min, "v_max": v_max}
    return {"plain": {}, "double": {"double_q": True}, "dueling": {"dueling": True},
            "per": {"prioritized_replay": True}, "nstep3": {"n_step": 3}, "noisy": NOISY, "c51": c51,
            "double+dueling+per+nstep3": COMBO, "all (rainbow)": {**COMBO, **NOISY, **c51}}


def run(job: tuple) -> tuple:
    import ascent

    env_id, name, switches, seed, steps, eval_every = job
    agent = ascent.DQN(env_id, seed=seed, verbose=0, eval_every=eval_every, eval_episodes=5, **switches)
    curve = []
    start = time.perf_counter()
    agent.learn(steps, callbacks=lambda a, m: curve.append(m["eval_return"]) if "eval_return" in m else None,
                progress_bar=False)
    wall = time.perf_counter() - start
    return name, seed, agent.evaluate(10)["mean_return"], statistics.mean(curve), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="CartPole-v1", choices=sorted(SUPPORT))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--variants", default=None, help="comma-separated subset of the variant names")
    ap.add_argument("--eval-every", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    table = variants(args.env)
    names = args.variants.split(",") if args.variants else list(table)
    jobs = [(args.env, n, table[n], s, STEPS[args.env], args.eval_every) for n in names for s in range(args.seeds)]
    results: dict[str, list] = {n: [] for n in names}
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, seed, final, auc, wall in pool.map(run, jobs):
            results[name].append((final, auc, wall))
    print(f"| {args.env} {STEPS[args.env] // 1000}k | final eval per seed | final mean +- std | "
          f"mean of evaluations (AUC) | wall s per seed |")
    print("|---|---|---|---|---|")
    for name in names:
        rs = results[name]
        finals = [r[0] for r in rs]
        print(f"| {name} | {', '.join(f'{f:.1f}' for f in finals)} | {statistics.mean(finals):.1f} +- "
              f"{statistics.pstdev(finals):.1f} | {statistics.mean(r[1] for r in rs):.1f} | "
              f"{', '.join(f'{r[2]:.0f}' for r in rs)} |", flush=True)


if __name__ == "__main__":
    main()

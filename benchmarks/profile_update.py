"""Where an off-policy agent's time goes, per env step: env + replay write, acting, sampling, and the
gradient update split into its torch operators and the Python around them.

  python benchmarks/profile_update.py [--algos sac,td3,ddpg,dqn] [--steps 3000] [--threads 2]

Each agent runs its default preset for the env (RL-Zoo's), warms up past `learning_starts`, and is
then profiled for `--steps` env steps: cProfile splits the loop by function, torch.profiler splits
the update by operator. Prints one table per algorithm (milliseconds per env step).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

import ascent

ENVS = {"sac": "Pendulum-v1", "td3": "Pendulum-v1", "ddpg": "Pendulum-v1", "dqn": "CartPole-v1"}
# function name (as cProfile sees it) -> the part of the loop it is
PARTS = {"step_into_buffer": "env step + replay write", "act_batch": "acting (DQN)",
         "sample": "replay sampling", "sample_index": "replay sampling", "update": "gradient update (sampling included)"}


def profile(algo: str, steps: int, threads: int, top: int) -> None:
    env = ENVS[algo]
    agent = ascent.get_algorithm(algo)(env, seed=0, verbose=0, torch_threads=threads)
    agent.learn(agent.config.learning_starts + 1000, progress_bar=False)  # past the random warm-up

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    agent.learn(steps, progress_bar=False)
    profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, ncalls, tottime, cumtime, callers)
    per_step = 1000.0 / steps
    print(f"\n### {algo} {env}: {steps / wall:,.0f} env steps/s at {threads} thread(s), "
          f"{wall * per_step:.3f} ms per env step (profiled, so slower than unprofiled)\n")
    print("| part | ms per env step | share |")
    print("|---|---|---|")
    cum = {}
    for (path, _, name), (_, _, _, cumtime, _) in stats.items():
        if name in PARTS and "ascent" in path:
            cum[name] = cum.get(name, 0.0) + cumtime
    if "sample" in cum:  # sample() calls sample_index(): count the outer one only
        cum.pop("sample_index", None)
    for key in ("step_into_buffer", "act_batch", "sample", "sample_index", "update"):
        if key in cum:
            print(f"| {PARTS[key]} | {cum[key] * per_step:.3f} | {cum[key] / wall:.0%} |")
    rest = wall - sum(cum.get(k, 0.0) for k in ("step_into_buffer", "act_batch", "update"))
    print(f"| everything else (acting for SAC/TD3/DDPG, loop, logging) | {rest * per_step:.3f} | {rest / wall:.0%} |")

    # The update alone, by operator.
    if algo == "dqn":
        def one_update():
            agent.update(*agent.sample(), report=True)
    else:
        def one_update():
            agent.update(agent.replay.sample(agent.config.batch_size))
    for _ in range(20):
        one_update()
    n = 200
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(n):
            one_update()
        update_wall = (time.perf_counter() - t) / n * 1000
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) / n / 1000  # ms per update in torch ops
    print(f"\nOne gradient step (batch {agent.config.batch_size}): {update_wall:.3f} ms under the profiler, "
          f"{total_self:.3f} ms of it inside torch operators, the rest Python and dispatch.\n")
    print("| operator | calls per step | self ms per step | share of step |")
    print("|---|---|---|---|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        ms = e.self_cpu_time_total / n / 1000
        print(f"| {e.key} | {e.count / n:.0f} | {ms:.3f} | {ms / update_wall:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", default="sac,td3,ddpg,dqn")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    for algo in args.algos.split(","):
        profile(algo, args.steps, args.threads, args.top)


if __name__ == "__main__":
    main()

"""Resident memory over a long PPO run: must stay flat (within 10%) between 100k and 1M steps.

  python benchmarks/memory.py [--steps 1000000]

Reads the process's resident set size from /proc after every 100k env steps; prints a table.
"""

from __future__ import annotations

import argparse
import os

import ascent


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--run-dir", default="runs/memory")
    args = ap.parse_args()
    samples: dict[int, float] = {}
    mark = {"next": 100_000}

    def sample(agent, metrics):
        if agent.num_steps >= mark["next"]:
            samples[mark["next"]] = rss_mib()
            mark["next"] += 100_000

    # with a run directory: CSV, TensorBoard and checkpoints are part of what must not grow
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=args.run_dir)
    agent.learn(args.steps, callbacks=sample, progress_bar=False)
    print("| env steps | RSS MiB |")
    print("|---|---|")
    for step, mib in samples.items():
        print(f"| {step:,} | {mib:.1f} |")
    first, last = samples[100_000], samples[max(samples)]
    print(f"\nRSS change from 100k to {max(samples):,} steps: {100 * (last - first) / first:+.1f}% (target: within 10%)")


if __name__ == "__main__":
    main()

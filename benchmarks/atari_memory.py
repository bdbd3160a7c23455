"""Memory of a 1M-transition Atari replay buffer, and the DQN throughput on Pong.

  python benchmarks/atari_memory.py [--capacity 1000000] [--steps 3000]

Allocates ascent's FrameReplayBuffer at full size (filling it, so that every page is resident) and
prints its bytes and the process's resident memory next to the two layouts that store stacks:
obs + next_obs stacks (naive) and obs stacks only (SB3's optimize_memory_usage). Then times DQN's
Atari preset on ALE/Pong-v5 (acting, storing and learning) at fp32 and bf16.
"""

from __future__ import annotations

import argparse
import resource
import time

import gymnasium as gym
import numpy as np


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--capacity", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=3000, help="env steps of the DQN throughput runs (0: skip)")
    args = ap.parse_args()
    from ascent.buffers.frame_replay import FrameReplayBuffer

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    frame, n = 84 * 84, args.capacity
    before = rss_mib()
    buffer = FrameReplayBuffer(n, 1, space, gym.spaces.Discrete(6))
    for name in buffer.FIELDS:  # touch every page, so that the resident memory is the real cost
        getattr(buffer, name).fill_(1)
    sizes = {name: getattr(buffer, name).nbytes for name in buffer.FIELDS}
    tensors = sum(sizes.values())
    after = rss_mib()
    gib = 1024 ** 3
    print(f"| layout, {n:,} transitions of (4, 84, 84) uint8 | observation bytes | GiB | how |")
    print("|---|---|---|---|")
    print(f"| naive: obs and next_obs stacks | {8 * frame * n:,} | {8 * frame * n / gib:.2f} | computed |")
    print(f"| SB3 optimize_memory_usage: obs stacks | {4 * frame * n:,} | {4 * frame * n / gib:.2f} | computed |")
    print(f"| ascent FrameReplayBuffer: one frame per step | {sizes['frames']:,} | {sizes['frames'] / gib:.2f} "
          f"| allocated (frames tensor) |")
    print(f"\nFrameReplayBuffer tensors in all: {tensors:,} bytes = {tensors / gib:.3f} GiB "
          f"({', '.join(f'{k} {v / 2**20:.1f} MiB' for k, v in sizes.items() if k != 'frames')}); "
          f"process RSS {before:.0f} -> {after:.0f} MiB (+{(after - before) / 1024:.2f} GiB); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    del buffer
    if args.steps:
        import ascent

        print("\n| DQN ALE/Pong-v5, atari preset | precision | env steps/s | gradient steps/s |")
        print("|---|---|---|---|")
        for precision in ("fp32", "bf16"):
            agent = ascent.DQN("ALE/Pong-v5", seed=0, verbose=0, precision=precision, learning_starts=1000,
                               buffer_size=100_000)
            agent.learn(1000, progress_bar=False)  # random warm-up, not timed
            start = time.perf_counter()
            agent.learn(args.steps, progress_bar=False)
            wall = time.perf_counter() - start
            print(f"| train_freq 4, batch 32 | {precision} | {args.steps / wall:.0f} | {args.steps / 4 / wall:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()

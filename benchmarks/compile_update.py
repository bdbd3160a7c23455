"""Does torch.compile speed up an off-policy gradient step on this machine? Times `agent.update` with
the networks eager and with each network's forward (an actor's hidden layers) compiled (TorchDynamo + Inductor; AOTAutograd
compiles the matching backward), the way a user would try it.

  python benchmarks/compile_update.py [--algos sac,td3] [--threads 1] [--updates 300] [--repeats 3]

Each agent runs its Pendulum-v1 preset (RL-Zoo's hyperparameters), learns past a short warm-up, then
runs eager timing blocks, compiles, and runs compiled blocks on the same agent and replay buffer. Prints a table: ms per
gradient step (median of the blocks) and the one-off compile time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import ascent


def compile_networks(agent) -> None:
    """Compile the critics' and the actors' hidden layers (targets included) in place."""
    for name in ("critic", "critic_target", "actor", "actor_target"):
        module = getattr(agent, name, None)
        if module is not None:
            part = module.torso if hasattr(module, "torso") else module
            part.forward = torch.compile(part.forward)


def time_updates(agent, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        agent.update(agent.replay.sample(agent.config.batch_size))
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default="sac,td3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--updates", type=int, default=300, help="gradient steps per timing block")
    ap.add_argument("--repeats", type=int, default=3, help="timing blocks per variant")
    args = ap.parse_args()
    print(f"| algo | eager ms/step | compiled ms/step | compiled / eager | compile s | torch {torch.__version__}, "
          f"{args.threads} thread(s) |")
    print("|---|---|---|---|---|---|")
    for algo in args.algos.split(","):
        agent = ascent.get_algorithm(algo)("Pendulum-v1", seed=0, verbose=0, torch_threads=args.threads,
                                          learning_starts=500)
        agent.learn(1500, progress_bar=False)
        eager = [time_updates(agent, args.updates) for _ in range(args.repeats)]
        compile_networks(agent)  # in place: the eager blocks run first, the compiled ones after
        start = time.perf_counter()
        time_updates(agent, 3)  # traces and compiles forward and backward graphs
        compile_s = time.perf_counter() - start
        time_updates(agent, 20)
        compiled = [time_updates(agent, args.updates) for _ in range(args.repeats)]
        e, c = statistics.median(eager), statistics.median(compiled)
        print(f"| {algo} | {e:.2f} | {c:.2f} | {c / e:.2f} | {compile_s:.0f} | |")


if __name__ == "__main__":
    main()

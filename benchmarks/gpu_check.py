"""The device setting checked on a GPU, as one short script for a machine that has one.

  python benchmarks/gpu_check.py [--steps-scale 1.0]

1. The contract's device tests with the GPU among the devices (tests/test_contract.py -k device,
   tests/core/test_device.py): every algorithm trains and acts with device=cuda, its networks,
   optimizer state and the batches its networks see on the GPU, storage in host memory.
2. A table of env steps/s, device=cpu against device=cuda, each in a fresh process: PPO and DQN on
   CartPole-v1 (small MLPs: latency-bound), SAC on Pendulum-v1 (256x256, batch 256), and DQN on
   Pong's Atari pipeline (the Nature CNN: where a GPU is meant to pay), plus the evaluation return
   of each, so that a run on the GPU is seen to learn as on the CPU.
Exits non-zero if the tests fail or cuda is not available. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = [  # (algo, env, steps, hyperparameters)
    ("ppo", "CartPole-v1", 20_000, {}),
    ("dqn", "CartPole-v1", 10_000, {}),
    ("sac", "Pendulum-v1", 3_000, {}),
    ("dqn", "PongNoFrameskip-v4", 20_000, {"buffer_size": 20_000, "learning_starts": 2_000}),
]

WORKER = """
import json, sys, time
from ascent.registry import get_algorithm
algo, env, steps, device, hp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
agent = get_algorithm(algo)(env, seed=0, verbose=0, device=device, **hp)
start = time.perf_counter()
agent.learn(steps, progress_bar=False)
seconds = time.perf_counter() - start
result = agent.evaluate(5)
print(json.dumps({"steps_per_s": steps / seconds, "eval": result["mean_return"], "device": str(agent.device)}))
"""


def run_case(algo: str, env: str, steps: int, device: str, hp: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, algo, env, str(steps), device, json.dumps(hp)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every case's steps")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: torch sees no GPU (torch.cuda.is_available() is False); nothing to check", file=sys.stderr)
        return 2
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    rc = 0
    if not args.skip_tests:
        start = time.perf_counter()
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "tests/test_contract.py", "-k", "device", "tests/core/test_device.py"], cwd=ROOT)
        print(f"device tests: exit {tests.returncode} in {time.perf_counter() - start:.0f} s")
        rc = tests.returncode
    print("\n| algorithm | env | steps | cpu steps/s | cuda steps/s | cuda / cpu | eval cpu | eval cuda |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for algo, env, steps, hp in CASES:
        steps = max(1000, int(steps * args.steps_scale))
        cpu, cuda = (run_case(algo, env, steps, d, hp) for d in ("cpu", "cuda"))
        if "error" in cpu or "error" in cuda:
            print(f"| {algo} | {env} | {steps} | {cpu.get('error', '')} | {cuda.get('error', '')} | | | |")
            rc = rc or 1
            continue
        print(f"| {algo} | {env} | {steps} | {cpu['steps_per_s']:.0f} | {cuda['steps_per_s']:.0f} | "
              f"{cuda['steps_per_s'] / cpu['steps_per_s']:.2f} | {cpu['eval']:.1f} | {cuda['eval']:.1f} |")
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""ascent's IMPALA side by side with RLlib's, on CartPole-v1, in one run of one script.

  bash benchmarks/setup_rllib.sh            # once: .venv-rllib with ray[rllib] at ascent's Ray version
  python benchmarks/vs_rllib.py [--cap-minutes 30] [--seed 0]

Both sides run in a fresh process of their own, one after the other (never at once: the machine
is shared by nobody else while each runs), with 2 actors / env runners. RLlib runs its tuned example
(rllib/tuned_examples/impala/cartpole_impala.py: train_batch_size_per_learner=500, lr 5e-4,
vf_loss_coeff 0.05, entropy 0, grad clip 40 by global norm, shared value layers); ascent runs
`impala` at its defaults. The criterion is RLlib's own: the mean training-episode return over the
last 100 episodes (RLlib's smoothing window; ascent's episode_return_100) first >= 450. Wall-clock
is from the process's start, so imports, Ray's start and the actors' spawning are in it; env steps/s
are over the training after start-up. RLlib is capped at --cap-minutes and reported as censored if
it does not reach the criterion by then. Ray is told of 8 logical CPUs on RLlib's side: with the
machine's 2, RLlib's learner and aggregator cannot be placed beside 2 env runners and it never
trains. Prints a markdown table and the progress of each side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RLLIB_PY = ROOT / ".venv-rllib" / "bin" / "python"
CRITERION = 450.0

ASCENT = r'''
import json, sys, time
t0 = time.perf_counter()
spec = json.loads(sys.argv[1])
from ascent.registry import get_algorithm
agent = get_algorithm("impala")("CartPole-v1", seed=spec["seed"], verbose=0, n_actors=2)
state = {}

def callback(agent, metrics):
    now = time.perf_counter() - t0
    state.setdefault("first", (now, agent.num_steps))
    ret = sum(agent.episode_returns) / len(agent.episode_returns) if agent.episode_returns else float("nan")
    state["last"] = (now, agent.num_steps, ret)
    if ret >= spec["criterion"] and len(agent.episode_returns) >= 100:
        state["reached"] = (now, agent.num_steps)
        return False
    return now < spec["cap_s"]

agent.learn(10_000_000, callbacks=callback, progress_bar=False)
print(json.dumps(state))
'''

RLLIB = r'''
import json, sys, time
t0 = time.perf_counter()
spec = json.loads(sys.argv[1])
import ray
from ray.rllib.algorithms.impala import IMPALAConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
ray.init(num_cpus=8, include_dashboard=False)
config = (
    IMPALAConfig()
    .environment("CartPole-v1")
    .env_runners(num_env_runners=2)
    .training(train_batch_size_per_learner=500, grad_clip=40.0, grad_clip_by="global_norm", lr=0.0005,
              vf_loss_coeff=0.05, entropy_coeff=0.0)
    .rl_module(model_config=DefaultModelConfig(vf_share_layers=True))
    .debugging(seed=spec["seed"])
)
algo = config.build_algo()
state = {"first": (time.perf_counter() - t0, 0)}
while True:
    result = algo.train()
    now = time.perf_counter() - t0
    runners = result.get("env_runners", {})
    steps = int(runners.get("num_env_steps_sampled_lifetime", result.get("num_env_steps_sampled_lifetime", 0)))
    ret = runners.get("episode_return_mean", float("nan"))
    ret = float("nan") if ret is None else float(ret)
    state["last"] = (now, steps, ret)
    print(json.dumps({"progress": state["last"]}), flush=True)
    if ret >= spec["criterion"]:
        state["reached"] = (now, steps)
        break
    if now >= spec["cap_s"]:
        break
print(json.dumps(state), flush=True)
algo.stop()
ray.shutdown()
'''


def run(python: Path | str, script: str, spec: dict, timeout: float) -> dict:
    proc = subprocess.Popen([str(python), "-c", script, json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    state: dict = {}
    try:
        for line in proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if "progress" in record:
                now, steps, ret = record["progress"]
                print(f"  rllib  {now:7.0f} s  {steps:9,d} steps  return {ret:6.1f}", file=sys.stderr, flush=True)
            else:
                state = record
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
    if not state:
        raise RuntimeError(f"{python}: no result\n{proc.stderr.read()[-2000:]}")
    return state


def row(name: str, state: dict, cap_s: float) -> tuple[str, float | None, float]:
    start_s, start_steps = state["first"]
    now, steps, ret = state["last"]
    rate = (steps - start_steps) / max(now - start_s, 1e-9)
    reached = state.get("reached")
    if reached:
        to = f"{reached[0]:,.0f} s at {reached[1]:,d} steps"
        seconds = reached[0]
    else:
        to = f"censored: not reached in {cap_s / 60:.0f} min ({steps:,d} steps, return {ret:.0f})"
        seconds = None
    print(f"| {name} | {start_s:.1f} | {rate:,.0f} | {to} |")
    return name, seconds, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap-minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not RLLIB_PY.exists():
        sys.exit("no .venv-rllib: run `bash benchmarks/setup_rllib.sh` first")
    cap_s = args.cap_minutes * 60
    spec = {"seed": args.seed, "criterion": CRITERION, "cap_s": cap_s}
    started = time.strftime("%Y-%m-%d %H:%M")
    ours = run(sys.executable, ASCENT, spec, cap_s + 300)
    theirs = run(RLLIB_PY, RLLIB, spec, cap_s + 600)
    print(f"\nIMPALA, CartPole-v1, 2 actors / env runners, seed {args.seed}, started {started}; criterion: mean "
          f"training return over the last 100 episodes >= {CRITERION:.0f}\n")
    print("| library | start-up s (first iteration) | env steps/s | wall-clock to the criterion (start-up included) |")
    print("|---|---:|---:|---|")
    _, ours_s, ours_rate = row("ascent impala (defaults: 8 envs x 64 steps per actor)", ours, cap_s)
    _, theirs_s, theirs_rate = row("RLlib 2.60 IMPALA (tuned example)", theirs, cap_s)
    print(f"\nenv steps/s: ascent / RLlib = {ours_rate / max(theirs_rate, 1e-9):.1f}x")
    if ours_s is not None:
        bound = theirs_s if theirs_s is not None else cap_s
        relation = "=" if theirs_s is not None else "<="
        print(f"wall-clock to the criterion: ascent / RLlib {relation} {ours_s / bound:.4f}"
              + ("" if theirs_s is not None else " (RLlib censored at the cap)"))


if __name__ == "__main__":
    main()

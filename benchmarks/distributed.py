"""The distributed algorithms measured on this machine: throughput, scaling, learning, memory.

  python benchmarks/distributed.py throughput      # IMPALA with 1-2 actors vs single-process A2C, CPU-bound CartPole
  python benchmarks/distributed.py scaling         # IMPALA env steps/s with 1, 2, 4, 8, 16 actors of a 2 ms-per-step env
  python benchmarks/distributed.py learning [--seeds 3]   # steps and wall-clock to the targets, vs the single-process peer
  python benchmarks/distributed.py memory [--steps 1000000]  # driver/actor RSS and object store over a long IMPALA run
  python benchmarks/distributed.py learner         # learner-only updates/s x batch: how many actors one learner sustains
  python benchmarks/distributed.py startup [--seeds 3]   # where a run's first seconds go (imports, Ray, actors)
  python benchmarks/distributed.py rounds          # DPPO's synchronous step as a round trip, 1 and 2 workers
  python benchmarks/distributed.py settings ALGO ENV TARGET CAP '{json}' ...   # steps/seconds to a target per setting

Each configuration runs in a fresh process (its own Ray); steps/s are measured between the first
and the last iteration, so Ray's start and the actors' spawning are not in them (they are reported
apart as start-up seconds). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r'''
import json, os, sys, time
import gymnasium as gym
import numpy as np

spec = json.loads(sys.argv[1])


class SlowStep(gym.Wrapper):
    """A slow or remote simulator: every step waits `delay` seconds (sleeping: no CPU)."""

    def __init__(self, env, delay):
        super().__init__(env)
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)


def slow_cartpole():
    return SlowStep(gym.make("CartPole-v1"), spec.get("delay", 0.002))


from ascent.registry import get_algorithm

t0 = time.perf_counter()
env = slow_cartpole if spec.get("delay") else spec["env"]
agent = get_algorithm(spec["algo"])(env, seed=spec.get("seed", 0), verbose=0, **spec.get("hp", {}))
marks, target = [], spec.get("target")
evals = []
first = {}


def callback(agent, metrics):
    now = time.perf_counter()
    marks.append((now, agent.num_steps, metrics))
    first.setdefault("t", now)
    if target is not None and agent.num_steps >= first.setdefault("next_eval", 0):
        first["next_eval"] = agent.num_steps + spec.get("eval_every", 10_000)
        result = agent.evaluate(10)["mean_return"]
        evals.append((agent.num_steps, agent.train_seconds, result, time.perf_counter() - t0))
        if result >= target:
            return False
    return True


rss = []
if spec.get("memory"):
    import threading
    from ascent.cluster.session import ray_processes
    stop = threading.Event()

    def rss_mb(pid):
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    def sample():
        import ray
        while not stop.wait(5.0):
            actors = [pid for pid, (_, cmd) in ray_processes().items() if cmd.startswith("ray::EnvRunner")]
            try:
                store = ray.available_resources().get("object_store_memory")
                actor_mb = [rss_mb(pid) for pid in actors]
            except Exception:
                store, actor_mb = None, []
            rss.append({"t": time.perf_counter() - t0, "steps": agent.num_steps, "driver_mb": rss_mb(os.getpid()),
                        "actors_mb": actor_mb, "store_free_mb": None if store is None else store / 2**20})
    threading.Thread(target=sample, daemon=True).start()

learn_start = time.perf_counter()
agent.learn(spec["steps"], callbacks=callback, progress_bar=False)
end = time.perf_counter()
cut = marks[len(marks) // 5] if len(marks) > 5 else marks[0]
rate = (marks[-1][1] - cut[1]) / max(marks[-1][0] - cut[0], 1e-9)
last = marks[-1][2]
out = {"steps_per_s": rate, "startup_s": first["t"] - t0, "first_iteration_s": first["t"] - learn_start, "steps": agent.num_steps, "seconds": end - t0,
       "train_seconds": agent.train_seconds, "evals": evals,
       "learner_utilisation": float(np.mean([m.get("learner_utilisation", float("nan")) for _, _, m in marks[len(marks) // 5:]])),
       "policy_lag": float(np.mean([m.get("policy_lag", float("nan")) for _, _, m in marks[len(marks) // 5:]])),
       "final_eval": agent.evaluate(10)["mean_return"] if spec.get("final_eval") else None, "rss": rss}
print(json.dumps(out))
'''

LEARNER = r'''
import json, sys, time
import numpy as np
import torch
from ascent.distributed.impala import IMPALA
spec = json.loads(sys.argv[1])
agent = IMPALA("CartPole-v1", seed=0, verbose=0, **spec["hp"])
c = agent.config
T, N = c.n_steps, c.n_envs * c.segments_per_batch
rng = np.random.default_rng(0)
batch = {"x": torch.randn(T, N, 4), "actions": torch.from_numpy(rng.integers(2, size=(T, N))),
         "logprobs": torch.full((T, N), -0.69), "rewards": torch.ones(T, N), "terminated": torch.zeros(T, N, dtype=torch.bool),
         "dones": torch.zeros(T, N, dtype=torch.bool), "valid": torch.ones(T, N, dtype=torch.bool),
         "bootstrap": torch.zeros(T, N, dtype=torch.bool), "final_x": torch.zeros(T, N, 4), "last_x": torch.randn(N, 4)}
for _ in range(20):
    agent.update(batch)
start, n = time.perf_counter(), 0
while time.perf_counter() - start < 5:
    agent.update(batch)
    n += 1
seconds = time.perf_counter() - start
print(json.dumps({"updates_per_s": n / seconds, "batch": T * N, "samples_per_s": n * T * N / seconds}))
'''


STARTUP = r'''
import json, sys, time
t0 = time.perf_counter()
import numpy, torch, gymnasium  # noqa: F401
from ascent.registry import get_algorithm
t1 = time.perf_counter()
agent = get_algorithm("impala")("CartPole-v1", seed=0, verbose=0, n_actors=2)
t2 = time.perf_counter()
from ascent.cluster.session import ensure_ray
ensure_ray("")
t3 = time.perf_counter()
from ascent.distributed.common import start_runners
pool = start_runners(agent, agent.config.n_steps)
t4 = time.perf_counter()
agent.broadcast.publish(agent.policy)
pool.call_all("sample", *agent.broadcast.handle())
t5 = time.perf_counter()
pool.shutdown()
import ray
from ascent.distributed.a3c import A3CWorker
a3c = get_algorithm("a3c")("CartPole-v1", seed=0, verbose=0, n_actors=2)
t6 = time.perf_counter()
a3c.start_server()  # (as A3C's first iteration does: the server first, then the workers, all starting at once)
a3c.workers = start_runners(a3c, a3c.config.n_steps, A3CWorker)
t7 = time.perf_counter()
ray.get(a3c.server.pull.remote())
t8 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "construct": t2 - t1, "ray_init": t3 - t2, "actors": t4 - t3, "first_segments": t5 - t4,
                  "a3c_workers": t7 - t6, "a3c_server_after": t8 - t7}))
'''

ROUNDS = r'''
import json, sys, time
import numpy as np
from ascent.registry import get_algorithm
spec = json.loads(sys.argv[1])
hp = {"n_envs": 4 // spec["n_actors"], "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10,
      "learning_rate": 1e-3, "batch_size": 256, "n_actors": spec["n_actors"]}
agent = get_algorithm("dppo")("Pendulum-v1", seed=0, verbose=0, **hp)
spent = {"round": [], "iteration": []}
original = agent.gradient_round
def timed(*args):
    start = time.perf_counter()
    out = original(*args)
    spent["round"].append(time.perf_counter() - start)
    return out
agent.gradient_round = timed
marks = []
agent.learn(5 * 4096, callbacks=lambda a, m: marks.append(time.perf_counter()) or True, progress_bar=False)
rounds = spent["round"][len(spent["round"]) // 5:]
print(json.dumps({"round_ms": 1e3 * float(np.median(rounds)), "rounds_per_iteration": len(spent["round"]) / len(marks),
                  "iteration_s": float(np.median(np.diff(marks)))}))
'''


def run(spec: dict, script: str = WORKER, timeout: float = 3600) -> dict:
    out = subprocess.run([sys.executable, "-c", script, json.dumps(spec)], capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{spec}: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(args) -> None:
    print("| configuration | env steps/s | vs A2C | learner utilisation | policy lag | start-up s |")
    print("|---|---:|---:|---:|---:|---:|")
    net = {"net_arch": [64, 64]}
    a2c5 = run({"algo": "a2c", "env": "CartPole-v1", "steps": 200_000, "hp": {"n_envs": 8, **net}})
    a2c = run({"algo": "a2c", "env": "CartPole-v1", "steps": 200_000, "hp": {"n_envs": 8, "n_steps": 32, **net}})
    print(f"| a2c, 1 process, 8 envs, n_steps 32 | {a2c['steps_per_s']:.0f} | 1.00 | | | {a2c['startup_s']:.1f} |")
    print(f"| a2c, 1 process, 8 envs, n_steps 5 (its default) | {a2c5['steps_per_s']:.0f} | "
          f"{a2c5['steps_per_s'] / a2c['steps_per_s']:.2f} | | | {a2c5['startup_s']:.1f} |")
    for n, t in ((1, 32), (2, 32), (2, 64), (2, 128)):
        r = run({"algo": "impala", "env": "CartPole-v1", "steps": 400_000,
                 "hp": {"n_actors": n, "n_envs": 8, "n_steps": t, **net}})
        print(f"| impala, {n} actor(s) x 8 envs, n_steps {t} | {r['steps_per_s']:.0f} | "
              f"{r['steps_per_s'] / a2c['steps_per_s']:.2f} | {r['learner_utilisation']:.2f} | {r['policy_lag']:.1f} | "
              f"{r['startup_s']:.1f} |")


def scaling(args) -> None:
    print("| actors | env steps/s (2 ms/step env, 1 env per actor) | vs 1 actor |")
    print("|---:|---:|---:|")
    base = None
    for n in (1, 2, 4, 8, 16):
        steps = 4000 * n
        r = run({"algo": "impala", "delay": 0.002, "steps": steps,
                 "hp": {"n_actors": n, "n_envs": 1, "n_steps": 32, "segments_per_batch": max(1, n // 2),
                        "vectorization": "sync"}})
        base = base or r["steps_per_s"]
        print(f"| {n} | {r['steps_per_s']:.0f} | {r['steps_per_s'] / base:.2f} |")
    print()
    print("| segments per batch | actors | env steps/s (CPU-bound CartPole, 8 envs per actor) | vs 1 actor | "
          "learner utilisation |")
    print("|---:|---:|---:|---:|---:|")
    for segments in (2, 4):  # (2: the default)
        base = None
        for n in (1, 2):
            r = run({"algo": "impala", "env": "CartPole-v1", "steps": 400_000,
                     "hp": {"n_actors": n, "n_envs": 8, "segments_per_batch": segments}})
            base = base or r["steps_per_s"]
            print(f"| {segments} | {n} | {r['steps_per_s']:.0f} | {r['steps_per_s'] / base:.2f} | "
                  f"{r['learner_utilisation']:.2f} |", flush=True)


TARGETS = [  # (algorithm, env, target, step cap, hyperparameters, single-process peer, its hyperparameters)
    ("impala", "CartPole-v1", 475, 1_000_000, {"n_actors": 2}, "a2c", {}),
    ("a3c", "CartPole-v1", 475, 1_000_000, {"n_actors": 2}, "a2c", {}),
    ("dppo", "Pendulum-v1", -200, 200_000, {"n_actors": 2, "n_envs": 2, "n_steps": 1024, "gae_lambda": 0.95,
                                            "gamma": 0.9, "n_epochs": 10, "learning_rate": 1e-3, "batch_size": 256},
     "ppo", {}),
    ("apex", "CartPole-v1", 475, 100_000, {"n_actors": 2}, "dqn", {}),
    ("apex-dpg", "Pendulum-v1", -200, 30_000, {"n_actors": 2}, "td3", {}),
]


def learning(args) -> None:
    print("| algorithm | env | target | seeds reached | steps to target (median) | train s to target (median) | "
          "of which first iteration s | process s to target | peer | peer steps | peer train s | peer process s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for algo, env, target, cap, hp, peer, peer_hp in TARGETS:
        if args.only and algo not in args.only.split(","):
            continue
        rows = {algo: [], peer: []}
        for seed in range(args.seeds):
            for name, h in ((algo, hp), (peer, peer_hp)):
                every = 10_000 if cap > 200_000 else 5_000 if cap > 50_000 else 2_500
                r = run({"algo": name, "env": env, "steps": cap, "seed": seed, "hp": h, "target": target,
                         "eval_every": every})
                hit = next(((s, t, r["first_iteration_s"], wall) for s, t, ret, wall in r["evals"] if ret >= target),
                           None)
                rows[name].append(hit)
                print(f"  {name} seed {seed}: {'reached at %d steps, %.1f s (first iteration %.1f s, process %.1f s)' % hit if hit else 'not reached'} "
                      f"(evals {[round(e[2]) for e in r['evals'][-3:]]})", file=sys.stderr, flush=True)

        def summary(hits):
            ok = [h for h in hits if h]
            return len(ok), [statistics.median(h[i] for h in ok) if ok else None for i in range(4)]

        n, (steps, secs, first, wall) = summary(rows[algo])
        pn, (psteps, psecs, _, pwall) = summary(rows[peer])
        fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)  # noqa: E731
        print(f"| {algo} | {env} | {target} | {n}/{args.seeds} | {fmt(steps, '{:,.0f}')} | {fmt(secs)} | {fmt(first)} | "
              f"{fmt(wall)} | {peer} ({pn}/{args.seeds}) | {fmt(psteps, '{:,.0f}')} | {fmt(psecs)} | {fmt(pwall)} |",
              flush=True)


def memory(args) -> None:
    r = run({"algo": "impala", "env": "CartPole-v1", "steps": args.steps, "hp": {"n_actors": 2, "n_envs": 8},
             "memory": True})
    samples = r["rss"]
    print("| seconds | env steps | driver RSS MiB | actor RSS MiB | object store free MiB |")
    print("|---:|---:|---:|---:|---:|")
    for s in samples[:: max(1, len(samples) // 10)] + samples[-1:]:
        actors = " / ".join(f"{m:.0f}" for m in s["actors_mb"])
        store = "-" if s["store_free_mb"] is None else f"{s['store_free_mb']:.0f}"
        print(f"| {s['t']:.0f} | {s['steps']} | {s['driver_mb']:.0f} | {actors} | {store} |")
    if len(samples) >= 4:
        early, late = samples[len(samples) // 4], samples[-1]
        print(f"\ndriver RSS from the first quarter to the end: {late['driver_mb'] / early['driver_mb'] - 1:+.1%}")


def learner(args) -> None:
    print("| batch (T x N) | learner updates/s | samples/s | actors of ~one actor's steps/s it sustains |")
    print("|---|---:|---:|---:|")
    one_actor = run({"algo": "impala", "env": "CartPole-v1", "steps": 200_000, "hp": {"n_actors": 1, "n_envs": 8}})
    for hp in ({"n_steps": 32, "n_envs": 8, "segments_per_batch": 2}, {"n_steps": 32, "n_envs": 8, "segments_per_batch": 8}):
        r = run({"hp": {**hp, "n_actors": 1}}, LEARNER)
        print(f"| {hp['n_steps']} x {hp['n_envs'] * hp['segments_per_batch']} | {r['updates_per_s']:.0f} | "
              f"{r['samples_per_s']:.0f} | {r['samples_per_s'] / one_actor['steps_per_s']:.1f} |")
    print(f"\none actor (8 envs) sampled {one_actor['steps_per_s']:.0f} env steps/s with its learner beside it")


def startup(args) -> None:
    """Where a distributed run's first seconds go: imports, the agent, Ray's start, the actors'
    processes (each imports torch and ascent, makes its envs and policy), their first segments;
    then, on the same Ray, A3C's two workers and its parameter server started together."""
    rows = [run({}, STARTUP) for _ in range(args.seeds)]
    names = ("imports", "construct", "ray_init", "actors", "first_segments")
    print("| imports s | agent s | ray.init s | 2 IMPALA actors started s | first segments s | total s | "
          "A3C: 2 workers started s | A3C: its server ready after them s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(f"{r[n]:.2f}" for n in names) + f" | {sum(r[n] for n in names):.2f} | "
              f"{r['a3c_workers']:.2f} | {r['a3c_server_after']:.2f} |")


def rounds(args) -> None:
    """DPPO's synchronous step as a round trip: the median seconds of one (weights out to every
    worker, their gradients back), with one worker and with two, at PPO's Pendulum settings."""
    print("| workers | ms per minibatch step (round trip) | steps per iteration | s per iteration |")
    print("|---:|---:|---:|---:|")
    for n in (1, 2):
        r = run({"n_actors": n}, ROUNDS)
        print(f"| {n} | {r['round_ms']:.1f} | {r['rounds_per_iteration']:.0f} | {r['iteration_s']:.2f} |")


def settings(args) -> None:
    """Steps and train seconds to a target for each of several settings of one algorithm (seeds
    0..--seeds-1): `settings ALGO ENV TARGET STEP_CAP '{json}' ['{json}' ...]`."""
    algo, env, target, cap, *variants = args.rest
    print("| settings | steps to target (per seed) | train s (per seed) |")
    print("|---|---|---|")
    for text in variants:
        hits = []
        for seed in range(args.seeds):
            r = run({"algo": algo, "env": env, "steps": int(cap), "seed": seed, "hp": json.loads(text),
                     "target": float(target), "eval_every": 10_000 if int(cap) > 200_000 else 5_000})
            hits.append(next(((st, t) for st, t, ret, _ in r["evals"] if ret >= float(target)), None))
        steps = ", ".join("-" if h is None else f"{h[0]:,}" for h in hits)
        secs = ", ".join("-" if h is None else f"{h[1]:.1f}" for h in hits)
        print(f"| `{text}` | {steps} | {secs} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["throughput", "scaling", "learning", "memory", "learner", "startup", "rounds",
                                         "settings"])
    parser.add_argument("rest", nargs="*", help="settings: ALGO ENV TARGET STEP_CAP and JSON hyperparameters")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=None, help="learning: only these algorithms (comma-separated)")
    parser.add_argument("--steps", type=int, default=1_000_000)
    args = parser.parse_args()
    globals()[args.what](args)


if __name__ == "__main__":
    main()

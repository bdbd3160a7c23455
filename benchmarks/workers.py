"""One benchmark run in a fresh process, for either library; prints one JSON line.

  python benchmarks/workers.py ascent|sb3 ALGO ENV STEPS THREADS HP_JSON [THRESHOLD EVAL_EVERY]

HP_JSON holds the hyperparameters (SB3's names) and optionally "seed" (default 0).

With THRESHOLD, the run evaluates (10 deterministic episodes) every EVAL_EVERY steps and stops at
the first evaluation >= THRESHOLD; `train_s` then counts training time only (evaluation excluded).
This file is run by the ascent venv and by the SB3 venv alike, so it imports only what it needs.
"""

from __future__ import annotations

import json
import sys
import time


def lin(spec):
    """RL-Zoo's 'lin_X' in SB3's form: a function of progress_remaining."""
    if isinstance(spec, str) and spec.startswith("lin_"):
        start = float(spec[4:])
        return lambda progress_remaining: progress_remaining * start
    return spec


def run_sb3(algo, env_id, steps, hp, threshold, eval_every):
    import stable_baselines3 as sb3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    hp = dict(hp)
    seed = hp.pop("seed", 0)
    n_envs = hp.pop("n_envs", 1)
    for key in ("learning_rate", "clip_range"):
        if key in hp:
            hp[key] = lin(hp[key])
    policy_kwargs = {}
    if "net_arch" in hp:
        policy_kwargs["net_arch"] = list(hp.pop("net_arch"))
    noise_type, noise_std = hp.pop("action_noise", None), hp.pop("action_noise_std", 0.1)
    hp.pop("precision", None)  # ascent-only
    if noise_type in ("normal", "ornstein_uhlenbeck"):  # RL-Zoo's noise_type/noise_std, on the [-1, 1] scale
        import numpy as np
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        n_act = int(np.prod(make_vec_env(env_id, n_envs=1).action_space.shape))
        cls = NormalActionNoise if noise_type == "normal" else OrnsteinUhlenbeckActionNoise
        hp["action_noise"] = cls(mean=np.zeros(n_act), sigma=noise_std * np.ones(n_act))
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    model = getattr(sb3, algo.upper())("MlpPolicy", env, seed=seed, verbose=0, device="cpu", policy_kwargs=policy_kwargs, **hp)
    timer = {"eval": 0.0, "reached": None, "reached_steps": None}

    class Threshold(BaseCallback):
        def _on_step(self):
            if threshold is None or self.num_timesteps % eval_every >= n_envs:
                return True
            t = time.perf_counter()
            mean, _ = evaluate_policy(self.model, make_vec_env(env_id, n_envs=1, seed=10_000), 10, deterministic=True)
            timer["eval"] += time.perf_counter() - t
            if mean >= threshold:
                timer["reached"], timer["reached_steps"] = time.perf_counter(), self.num_timesteps
                return False
            return True

    start = time.perf_counter()
    model.learn(steps, callback=Threshold())
    wall = time.perf_counter() - start
    mean, std = evaluate_policy(model, make_vec_env(env_id, n_envs=1, seed=10_000), 10, deterministic=True)
    train_s = (timer["reached"] - start - timer["eval"]) if timer["reached"] else None
    return {"wall_s": wall, "steps": model.num_timesteps, "steps_per_s": model.num_timesteps / (wall - timer["eval"]),
            "eval_return": float(mean), "train_s_to_threshold": train_s, "steps_to_threshold": timer["reached_steps"]}


def run_ascent(algo, env_id, steps, hp, threshold, eval_every):
    import ascent

    hp = dict(hp)
    seed = hp.pop("seed", 0)
    agent = ascent.get_algorithm(algo)(env_id, seed=seed, verbose=0, **hp)
    timer = {"eval": 0.0, "reached": None, "reached_steps": None, "next": eval_every}

    def check(agent, metrics):
        if threshold is None or agent.num_steps < timer["next"]:
            return True
        timer["next"] += eval_every
        t = time.perf_counter()
        mean = agent.evaluate(10)["mean_return"]
        timer["eval"] += time.perf_counter() - t
        if mean >= threshold:
            timer["reached"], timer["reached_steps"] = time.perf_counter(), agent.num_steps
            return False
        return True

    start = time.perf_counter()
    agent.learn(steps, callbacks=check, progress_bar=False)
    wall = time.perf_counter() - start
    result = agent.evaluate(10)
    train_s = (timer["reached"] - start - timer["eval"]) if timer["reached"] else None
    return {"wall_s": wall, "steps": agent.num_steps, "steps_per_s": agent.num_steps / (wall - timer["eval"]),
            "eval_return": result["mean_return"], "train_s_to_threshold": train_s, "steps_to_threshold": timer["reached_steps"]}


def main(argv):
    lib, algo, env_id, steps, threads, hp = argv[:6]
    threshold = float(argv[6]) if len(argv) > 6 else None
    eval_every = int(argv[7]) if len(argv) > 7 else 0
    import torch

    torch.set_num_threads(int(threads))
    hp = json.loads(hp)
    if lib == "ascent":
        hp["torch_threads"] = int(threads)
    runner = run_ascent if lib == "ascent" else run_sb3
    print(json.dumps(runner(algo, env_id, int(steps), hp, threshold, eval_every)))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Policy evaluation: run K complete episodes and report the return's mean and spread."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from ascent.envs.vector import EnvLike, VecEnv, make_vec_env


def evaluate_policy(
    act: Callable[[np.ndarray], np.ndarray],
    env: EnvLike,
    episodes: int = 10,
    seed: int | None = None,
    max_parallel: int = 8,
) -> dict:
    """Run `episodes` episodes with `act` (batched obs -> batched env actions).

    Up to `max_parallel` envs run side by side and each is given a fixed quota of episodes, so the
    result is not biased towards short episodes (those that end first).
    """
    owned = isinstance(env, str) or (callable(env) and not isinstance(env, (gym.Env, gym.vector.VectorEnv)))
    # training=False: Atari ids play whole games without reward clipping.
    vec = VecEnv(make_vec_env(env, n_envs=min(episodes, max_parallel) if owned else 1, training=False))
    n = vec.num_envs
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    done_count = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    try:
        obs = vec.reset(seed=seed)
        # Count the reported episodes per env index to respect the quotas (an Atari env reports a
        # whole game, not each lost life).
        while (done_count < quota).any():
            step = vec.step(act(obs))
            for i, (ret, length) in zip(step.episode_envs, step.episodes):
                if done_count[i] < quota[i]:
                    returns.append(ret)
                    lengths.append(length)
                done_count[i] += 1
            obs = step.obs
    finally:
        if owned:
            vec.close()
    r = np.asarray(returns, dtype=np.float64)
    return {
        "mean_return": float(r.mean()),
        "std_return": float(r.std()),
        "episodes": len(returns),
        "mean_length": float(np.mean(lengths)),
        "returns": r.tolist(),
        "lengths": lengths,
    }

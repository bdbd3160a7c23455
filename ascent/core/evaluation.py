"""Policy evaluation: run K complete episodes and report the return's mean and spread."""

from __future__ import annotations

import sys
from typing import Callable

import gymnasium as gym
import numpy as np

from ascent.envs.vector import EnvLike, VecEnv, make_vec_env

# An evaluation episode is cut after this many steps (more than any registered env's time limit:
# Atari's 108k frames are 27k agent steps).
MAX_EPISODE_STEPS = 100_000


def evaluate_policy(
    act: Callable[[np.ndarray], np.ndarray],
    env: EnvLike,
    episodes: int = 10,
    seed: int | None = None,
    max_parallel: int = 8,
    max_episode_steps: int = MAX_EPISODE_STEPS,
) -> dict:
    """Run `episodes` episodes with `act` (batched obs -> batched env actions).

    Up to `max_parallel` envs run side by side and each is given a fixed quota of episodes, so the
    result is not biased towards short episodes (those that end first). An episode still running
    after `max_episode_steps` steps is cut there and counted with its return so far: an env without
    a time limit (CliffWalking-v1) and a policy that never reaches the end would otherwise loop
    forever; the cut restarts every env (the episodes under way elsewhere are not counted).
    """
    owned = isinstance(env, str) or (callable(env) and not isinstance(env, (gym.Env, gym.vector.VectorEnv)))
    # training=False: Atari ids play whole games without reward clipping.
    vec = VecEnv(make_vec_env(env, n_envs=min(episodes, max_parallel) if owned else 1, training=False))
    n = vec.num_envs
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    done_count = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    running, steps = np.zeros(n), np.zeros(n, dtype=int)  # the episodes under way: return so far, steps
    try:
        obs = vec.reset(seed=seed)
        # Count the reported episodes per env index to respect the quotas (an Atari env reports a
        # whole game, not each lost life).
        while (done_count < quota).any():
            step = vec.step(act(obs))
            running += np.where(step.valid, step.reward, 0.0)
            steps += step.valid
            for i, (ret, length) in zip(step.episode_envs, step.episodes):
                if done_count[i] < quota[i]:
                    returns.append(ret)
                    lengths.append(length)
                done_count[i] += 1
                running[i], steps[i] = 0.0, 0
            obs = step.obs
            if (steps >= max_episode_steps).any():
                cut = np.flatnonzero(steps >= max_episode_steps)
                print(f"ascent: evaluation cut {len(cut)} episode(s) at {max_episode_steps} steps: the env has no "
                      "time limit and the policy did not end them; wrap it in gymnasium.wrappers.TimeLimit",
                      file=sys.stderr)
                for i in cut:
                    if done_count[i] < quota[i]:
                        returns.append(float(running[i]))
                        lengths.append(int(steps[i]))
                    done_count[i] += 1
                obs = vec.reset()
                running[:], steps[:] = 0.0, 0
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

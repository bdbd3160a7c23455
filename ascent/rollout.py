"""Experience collection shared by the on-policy algorithms (PPO, A2C, TRPO, REINFORCE...)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ascent.envs import VecEnv
from ascent.normalize import RewardScaler
from ascent.policies import ActorCritic
from ascent.returns import gae
from ascent.storage import RolloutStorage


@torch.inference_mode()
def collect_rollout(
    envs: VecEnv,
    policy: ActorCritic,
    storage: RolloutStorage,
    obs: np.ndarray,
    on_episodes: Callable[[list[tuple[float, int]]], None],
    reward_scaler: RewardScaler | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """Fill `storage` with n_steps steps of every env, acting with `policy` from `obs`.

    Returns the observation to continue from and V(s_T) of it, for bootstrapping the last step.
    Where an env truncates an episode and resets in the same step, V(final observation) is stored
    in `storage.final_values`, so truncated episodes bootstrap and terminated ones do not.
    """
    for t in range(storage.n_steps):
        x = policy.encoder(torch.from_numpy(obs), update_stats=True)  # (N, d)
        action, logprob, value = policy.act(x)
        step = envs.step(policy.to_env_action(action))
        reward = step.reward if reward_scaler is None else reward_scaler(step.reward, step.terminated | step.truncated)
        storage.add(t, x, action, logprob, value, step, reward)
        if step.bootstrap is not None:
            idx = torch.from_numpy(np.flatnonzero(step.bootstrap))
            final_x = policy.encoder(torch.from_numpy(step.final_obs[step.bootstrap]))
            storage.final_values[t, idx] = policy.value(final_x)
        if step.episodes:
            on_episodes(step.episodes)
        obs = step.obs
    last_value = policy.value(policy.encoder(torch.from_numpy(obs)))
    return obs, last_value


def collect_advantage_batch(
    envs: VecEnv,
    policy: ActorCritic,
    storage: RolloutStorage,
    obs: np.ndarray,
    on_episodes: Callable[[list[tuple[float, int]]], None],
    reward_scaler: RewardScaler | None,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """One rollout, then GAE(lambda) advantages and value targets R_t = A_t + V(s_t).

    Returns the observation to continue from and the flat batch of valid transitions: x, actions,
    logprobs, values, advantages, returns (the actor-critic methods' common first half).
    """
    obs, last_value = collect_rollout(envs, policy, storage, obs, on_episodes, reward_scaler)
    s = storage
    advantages = gae(s.rewards, s.values, s.next_values(last_value), s.terminated, s.dones, gamma, gae_lambda)
    return obs, s.flatten(advantages=advantages, returns=advantages + s.values)

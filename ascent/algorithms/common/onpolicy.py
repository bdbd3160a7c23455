"""Experience collection shared by the on-policy algorithms: rollouts of n_steps (PPO, A2C, TRPO) and
batches of complete episodes (REINFORCE, off-policy PG)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ascent.envs.vector import VecEnv
from ascent.nets.normalize import RewardScaler
from ascent.nets.policies import ActorCritic
from ascent.algorithms.common.returns import gae
from ascent.buffers.rollout import RolloutStorage, to_device


@torch.inference_mode()
def collect_rollout(
    envs: VecEnv,
    policy: ActorCritic,
    storage: RolloutStorage,
    obs: np.ndarray,
    on_episodes: Callable[[list[tuple[float, int]]], None],
    reward_scaler: RewardScaler | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """Fill `storage` with n_steps steps of every env, acting with `policy` from `obs`.

    Returns the observation to continue from and V(s_T) of it, for bootstrapping the last step.
    The storage is host memory: a policy on a GPU acts there and its outputs are copied in.
    Where an env truncates an episode and resets in the same step, V(final observation) is stored
    in `storage.final_values`, so truncated episodes bootstrap and terminated ones do not.
    With `rng`, the policy acts in numpy where it can (`ActorCritic.numpy_actor`), drawing from rng.
    A gSDE policy draws its exploration matrices at the start and every sde_sample_freq steps.
    """
    numpy_act = policy.numpy_actor(rng) if rng is not None else None
    for t in range(storage.n_steps):
        if policy.resamples_noise_at(t):
            policy.reset_sde_noise(envs.num_envs)
        if numpy_act is not None:  # x is the flat observation, cast to float32 where it is stored
            x = obs.reshape(len(obs), -1)
            action, logprob, value = numpy_act(obs)
        else:
            x = policy.encoder.preprocess(obs, update_stats=True)  # (N, *x_shape)
            action, logprob, value = policy.act(x)
        step = envs.step(policy.to_env_action(action))
        reward = step.reward if reward_scaler is None else reward_scaler(step.reward, step.terminated | step.truncated)
        storage.add(t, x, action, logprob, value, step, reward)
        if step.bootstrap is not None:
            idx = torch.from_numpy(np.flatnonzero(step.bootstrap))
            final_x = policy.encoder.preprocess(step.final_obs)[idx]  # (rare: only where an episode was truncated)
            storage.final_values[t, idx] = policy.value(final_x).cpu()
            if storage.final_x is not None:
                storage.final_x[t, idx] = final_x.cpu()
        if step.episodes:
            on_episodes(step.episodes)
        obs = step.obs
    last_value = policy.value(policy.encoder.preprocess(obs)).cpu()
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
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """One rollout, then GAE(lambda) advantages and value targets R_t = A_t + V(s_t).

    Returns the observation to continue from and the flat batch of valid transitions: x, actions,
    logprobs, values, advantages, returns (the actor-critic methods' common first half). `rng`: as
    in collect_rollout.
    """
    obs, last_value = collect_rollout(envs, policy, storage, obs, on_episodes, reward_scaler, rng)
    s = storage
    advantages = gae(s.rewards, s.values, s.next_values(last_value), s.terminated, s.dones, gamma, gae_lambda)
    return obs, s.flatten(advantages=advantages, returns=advantages + s.values)


@torch.no_grad()
def collect_episodes(
    envs: VecEnv,
    policy: ActorCritic,
    n_episodes: int,
    seed: int,
    on_episodes: Callable[[list[tuple[float, int]]], None],
) -> tuple[list[dict[str, torch.Tensor]], int]:
    """`n_episodes` complete episodes from fresh resets, for the Monte Carlo methods (REINFORCE,
    off-policy PG): per episode x (T, *x_shape), actions (T, ...), logprobs (T,) (the behaviour policy's
    log pi(a_t|s_t), for importance weights) and rewards (T,).

    Env i contributes a fixed quota of its first episodes (n_episodes split evenly): taking the
    first n_episodes to finish across envs instead would favour short episodes and bias the
    gradient. Episodes still running when every quota is met are discarded. Also returns the number
    of env steps taken.
    """
    n = envs.num_envs
    quota = [n_episodes // n + (i < n_episodes % n) for i in range(n)]
    obs = envs.reset(seed=seed)
    running: list[list] = [[] for _ in range(n)]
    finished: list[list[dict[str, torch.Tensor]]] = [[] for _ in range(n)]
    steps = 0
    while any(len(finished[i]) < quota[i] for i in range(n)):
        x = policy.encoder.preprocess(obs, update_stats=True)
        action, logprob, _ = policy.act(x)
        step = envs.step(policy.to_env_action(action))
        steps += n
        for i in range(n):
            if not step.valid[i] or len(finished[i]) >= quota[i]:
                continue
            running[i].append((x[i], action[i], logprob[i], float(step.reward[i])))
            if step.terminated[i] or step.truncated[i]:
                xs, actions, logprobs, rewards = zip(*running[i])
                finished[i].append({"x": torch.stack(xs), "actions": torch.stack(actions),
                                    "logprobs": torch.stack(logprobs),
                                    "rewards": torch.tensor(rewards, dtype=torch.float32)})
                running[i] = []
        if step.episodes:
            on_episodes(step.episodes)
        obs = step.obs
    return [ep for per_env in finished for ep in per_env], steps


def collect_agent_episodes(agent: Any, n_episodes: int) -> list[dict[str, torch.Tensor]]:
    """`n_episodes` complete episodes with the agent's current policy, from resets seeded by the
    agent's own stream (collect_episodes); its step count advances by the env steps taken."""
    episodes, steps = collect_episodes(agent.envs, agent.policy, n_episodes, int(agent.rng.integers(2**31)),
                                       agent.record_episodes)
    agent.num_steps += steps
    return episodes


def rollout_parts(agent: Any) -> tuple[RolloutStorage, RewardScaler | None]:
    """What a rollout-based agent (PPO, A2C, TRPO) keeps between rollouts: the storage of n_steps x
    n_envs transitions of its policy, and the reward scaler where normalize_reward is on."""
    c = agent.config
    n_rows = agent.envs.num_envs  # (c.n_envs, or a team's agents in every copy: envs/multiagent.py's AgentRowsVecEnv)
    return (RolloutStorage.for_policy(agent.policy, c.n_steps, n_rows),
            RewardScaler(n_rows, c.gamma) if c.normalize_reward else None)


def agent_advantage_batch(agent: Any) -> dict[str, torch.Tensor]:
    """One rollout of the agent's policy from where its envs are, then GAE(gae_lambda) advantages and
    value targets (collect_advantage_batch), on the agent's device; the agent's observation and step
    count move on."""
    c = agent.config
    agent.obs, batch = collect_advantage_batch(agent.envs, agent.policy, agent.storage, agent.obs, agent.record_episodes,
                                               agent.reward_scaler, c.gamma, c.gae_lambda, agent.rng)
    agent.num_steps += c.n_steps * agent.envs.env_steps_per_step
    return to_device(batch, agent.device)

"""What the off-policy algorithms (SAC, TD3/DDPG, DQN) share: their common hyperparameters, the
replay buffer they are built with, and the acting loop that fills it (random warm-up, act, store,
count steps, the train_freq/gradient_steps rule). Each algorithm's update — its defining math —
stays in its own module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ascent.core.config import NetworkConfig, param
from ascent.envs.atari import FRAME_STACKED
from ascent.envs.vector import VecEnv
from ascent.errors import ConfigError
from ascent.buffers.frame_replay import make_replay_buffer
from ascent.buffers.replay import ReplayBuffer

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class OffPolicyConfig(NetworkConfig):
    net_arch: tuple = param((256, 256), "hidden layer widths of the actor and the critics")
    activation: str = param("relu")
    learning_rate: float = param(3e-4, "Adam step size of the actor and the critics", range=(0.0, math.inf), low_open=True)
    buffer_size: int = param(1_000_000, "replay buffer capacity in transitions", positive=True)
    learning_starts: int = param(100, "env steps of uniformly random actions before learning starts", nonnegative=True)
    batch_size: int = param(256, "minibatch size of each gradient step", positive=True)
    tau: float = param(0.005, "Polyak coefficient of the target networks (1: hard copy)", range=(0.0, 1.0), low_open=True)
    train_freq: int = param(1, "env steps (per env) between rounds of gradient steps", positive=True)
    gradient_steps: int = param(1, "gradient steps per round (-1: as many as env steps taken)")
    optimize_memory_usage: bool = param(False, "do not store next observations separately in the buffer")
    save_replay_buffer: bool = param(True, "write the replay buffer next to each checkpoint (resume continues with it)")
    precision: str = param("auto", "auto | fp32 | bf16: matmul precision of the network passes (auto: bf16 where the CPU has it natively)",
                           choices=PRECISIONS)
    log_interval: int = param(1000, "iterations (env steps per env) per row of metrics")

    def validate(self) -> None:
        super().validate()
        if self.gradient_steps == 0 or self.gradient_steps < -1:
            raise ConfigError(f"gradient_steps must be a positive integer or -1, got {self.gradient_steps}")
        if self.normalize_reward:  # (it was accepted and ignored)
            raise ConfigError("normalize_reward is not supported by the off-policy algorithms (the replay buffer stores "
                              "raw rewards; scale them with a gymnasium reward wrapper instead); leave it false")


def step_into_buffer(envs: VecEnv, replay: ReplayBuffer, obs: np.ndarray, unit_actions: np.ndarray,
                     env_actions: np.ndarray, on_episodes) -> tuple[np.ndarray, np.ndarray]:
    """Step every env and store (s, u, r, s', terminated, truncated). s' is the observation the
    episode was truncated at where it was (the target bootstraps from it), the next observation
    otherwise. Returns the observation to act on next and the per-env done flags."""
    step = envs.step(env_actions)
    next_obs = step.obs
    if step.bootstrap is not None:
        next_obs = next_obs.copy()
        next_obs[step.bootstrap] = step.final_obs[step.bootstrap]
    replay.add(obs, unit_actions, step.reward, next_obs, step.terminated, step.truncated, step.valid)
    if step.episodes:
        on_episodes(step.episodes)
    return step.obs, step.terminated | step.truncated


def replay_buffer(config: OffPolicyConfig, envs: VecEnv) -> ReplayBuffer:
    """The replay buffer of an off-policy agent: buffer_size transitions of every env. The Atari
    pipeline's stacked frames are stored once each (ascent.buffers.frame_replay); other images,
    whose channels are not a stack of past frames (RGB), are stored whole."""
    if envs.env.metadata.get(FRAME_STACKED, False):
        return make_replay_buffer(config.buffer_size, envs.num_envs, envs.observation_space, envs.action_space,
                                  config.optimize_memory_usage)
    return ReplayBuffer(config.buffer_size, envs.num_envs, envs.observation_space, envs.action_space,
                        config.optimize_memory_usage)


def collect_transitions(agent: Any, act: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray]],
                        on_done: Callable[[np.ndarray], None] | None = None) -> bool:
    """train_freq steps of every env, each transition into agent.replay.

    act(obs, warmup) -> (the action as the buffer stores it, the action the env receives);
    `warmup` is True until learning_starts env steps have been taken, when the algorithm acts
    uniformly at random. `on_done(done)` sees each step's per-env episode ends. Returns whether
    learning has started (the algorithm then takes `gradient_steps_per_round` steps).
    """
    c = agent.config
    for _ in range(c.train_freq):
        stored, env_action = act(agent.obs, agent.num_steps < c.learning_starts)
        agent.obs, done = step_into_buffer(agent.envs, agent.replay, agent.obs, stored, env_action, agent.record_episodes)
        if on_done is not None:
            on_done(done)
        agent.num_steps += agent.envs.env_steps_per_step
    return agent.num_steps >= c.learning_starts


def gradient_steps_per_round(config: OffPolicyConfig, n_envs: int) -> int:
    """gradient_steps, or with -1 as many as the env steps of the round (SB3's rule)."""
    return config.gradient_steps if config.gradient_steps > 0 else config.train_freq * n_envs

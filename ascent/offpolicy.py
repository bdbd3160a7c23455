"""What the off-policy actor-critic algorithms (DDPG, TD3, SAC) share: their common
hyperparameters and the step that acts in the envs and stores the transitions in the replay buffer.
Each algorithm's update — its defining math — stays in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ascent.config import CommonConfig, check_range, param
from ascent.envs import VecEnv
from ascent.errors import ConfigError
from ascent.replay import ReplayBuffer

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class OffPolicyConfig(CommonConfig):
    n_envs: int = param(1, "number of parallel environments")
    net_arch: tuple = param((256, 256), "hidden layer widths of the actor and the critics")
    activation: str = param("relu", "tanh | relu | elu | gelu | silu")
    learning_rate: float = param(3e-4, "Adam step size of the actor and the critics")
    buffer_size: int = param(1_000_000, "replay buffer capacity in transitions")
    learning_starts: int = param(100, "env steps of uniformly random actions before learning starts")
    batch_size: int = param(256, "minibatch size of each gradient step")
    tau: float = param(0.005, "Polyak coefficient of the target networks (1: hard copy)")
    gamma: float = param(0.99, "discount factor")
    train_freq: int = param(1, "env steps (per env) between rounds of gradient steps")
    gradient_steps: int = param(1, "gradient steps per round (-1: as many as env steps taken)")
    optimize_memory_usage: bool = param(False, "do not store next observations separately in the buffer")
    save_replay_buffer: bool = param(False, "write the replay buffer next to each checkpoint (resume continues with it)")
    precision: str = param("auto", "auto | fp32 | bf16: matmul precision of the network passes (auto: bf16 where the CPU has it natively)")
    log_interval: int = param(1000, "iterations (env steps per env) per row of metrics")
    checkpoint_every: int = param(50_000, "write a checkpoint every this many env steps (0: only at the end)")

    def validate(self) -> None:
        super().validate()
        for name in ("buffer_size", "batch_size", "train_freq"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.learning_starts < 0:
            raise ConfigError(f"learning_starts must be >= 0, got {self.learning_starts}")
        if self.gradient_steps == 0 or self.gradient_steps < -1:
            raise ConfigError(f"gradient_steps must be a positive integer or -1, got {self.gradient_steps}")
        check_range("learning_rate", self.learning_rate, 0.0, float("inf"), low_open=True)
        check_range("tau", self.tau, 0.0, 1.0, low_open=True)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")


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

"""Tabular temporal-difference control: Q-learning (Watkins 1989), SARSA (Rummery & Niranjan 1994)
and expected SARSA (van Seijen et al. 2009), on envs with a finite set of states and actions
(FrozenLake, CliffWalking, Taxi). Sutton & Barto (2018), sections 6.4-6.6.

One iteration is one step of every env: act epsilon-greedily in s, observe r and s', draw the next
action a' in s' (before the update, as Sutton & Barto's SARSA does), then move Q(s, a) towards

  Q-learning        y = r + gamma (1 - terminated) max_a' Q(s', a')                   (off-policy)
  SARSA             y = r + gamma (1 - terminated) Q(s', a'),  a' the action taken next  (on-policy)
  expected SARSA    y = r + gamma (1 - terminated) sum_a' pi_eps(a'|s') Q(s', a')

  Q(s, a) <- Q(s, a) + alpha (y - Q(s, a)).

Truncation is not termination: a truncated episode bootstraps from the observation it was cut at.
No action is ever taken there (the env resets), so SARSA uses the expectation under the behaviour
policy, eps mean_a Q(s', a) + (1 - eps) max_a Q(s', a), for those transitions. The autoreset step of
next-step-autoreset envs is no transition and is skipped. The n_envs transitions of one step are
one batch: their TD errors use the table before the step, and a pair (s, a) hit by k envs moves by
alpha times the mean of its k errors (with n_envs = 1, exactly the rule above).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch

from ascent.core.agent import Agent, Counters
from ascent.algorithms.common.exploration import exploration_epsilon
from ascent.core.config import CommonConfig, param, schedule
from ascent.errors import ConfigError, EnvError


@dataclass
class QLearningConfig(CommonConfig):
    # Earlier versions stubbed the network fields here, unused (the table is the whole model); the
    # checkpoints they wrote still hold them, and `Agent.load` drops them.
    retired_fields: ClassVar[tuple[str, ...]] = ("net_arch", "activation", "ortho_init", "normalize_obs")

    learning_rate: float | str = param(0.1, "step size alpha; 'lin_X' decays linearly from X to 0 "
                                       "(at most 1: alpha = 1 replaces Q by the target)",
                                       schedule=True, range=(0.0, 1.0), low_open=True)
    exploration_initial_eps: float = param(1.0, "epsilon of the epsilon-greedy behaviour policy at the start",
                                           range=(0.0, 1.0))
    exploration_final_eps: float = param(0.05, "epsilon after the decay", range=(0.0, 1.0))
    exploration_fraction: float = param(0.5, "fraction of training over which epsilon decays linearly", range=(0.0, 1.0))
    q_init: float = param(0.0, "initial value of every Q(s, a) (optimistic values explore)", range=(-math.inf, math.inf))
    log_interval: int = param(1000, "iterations (env steps per env) per row of metrics")

    def validate(self) -> None:
        super().validate()
        if self.normalize_reward:
            raise ConfigError("normalize_reward does not apply to tabular methods (the table learns the env's own "
                              "rewards); leave it false")


# What `ascent tune qlearning` (and sarsa) searches (ascent.tuning.spaces' format); RL-Zoo has no
# tabular space: the step size over two decades, the discount and the epsilon-greedy schedule.
SEARCH_SPACE = {
    "learning_rate": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.99, 0.999, 1.0]},
    "exploration_fraction": {"type": "float", "low": 0.05, "high": 0.9},
    "exploration_final_eps": {"type": "float", "low": 0.0, "high": 0.2},
}


@dataclass
class SARSAConfig(QLearningConfig):
    expected: bool = param(False, "expected SARSA: bootstrap from sum_a' pi_eps(a'|s') Q(s', a'), not the next action")


class QTable(torch.nn.Module):
    """Q(s, a) as a (S, A) float64 buffer, so that checkpoints hold it like any network's weights."""

    def __init__(self, n_states: int, n_actions: int, init: float):
        super().__init__()
        self.register_buffer("q", torch.full((n_states, n_actions), float(init), dtype=torch.float64))


def discrete_n(space: gym.Space, what: str, env_id: str | None, alternative: str) -> tuple[int, int]:
    """(n, start) of a Discrete space; else an EnvError naming the space and `alternative` (the fix)."""
    if not isinstance(space, gym.spaces.Discrete):
        raise EnvError(f"tabular methods need a Discrete {what} space (a finite set); {env_id or 'this env'} has "
                       f"{space}: {alternative}")
    return int(space.n), int(space.start)


def epsilon_greedy(q_s: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Epsilon-greedy actions for rows of action values q_s (N, A): uniform with probability eps,
    else greedy, the greedy choice uniform among tied maxima (so that an untrained table does not
    always pick action 0)."""
    best = q_s == q_s.max(axis=1, keepdims=True)
    greedy_a = (rng.random(best.shape) * best).argmax(axis=1)
    random_a = rng.integers(q_s.shape[1], size=len(q_s))
    return np.where(rng.random(len(q_s)) < eps, random_a, greedy_a)


def epsilon_greedy_value(q_s: np.ndarray, eps: float) -> np.ndarray:
    """sum_a pi_eps(a|s) Q(s, a) = eps mean_a Q(s, a) + (1 - eps) max_a Q(s, a), per row of q_s (N, A).
    (How ties among the maxima are broken does not change it.)"""
    return eps * q_s.mean(axis=1) + (1.0 - eps) * q_s.max(axis=1)


class QLearning(Agent):
    """Tabular Q-learning with an epsilon-greedy behaviour policy."""

    algo = "qlearning"
    Config = QLearningConfig
    search_space = SEARCH_SPACE

    def setup(self) -> None:
        envs, env_id = self.envs, self.env_id
        obs_fix = "use ppo or a2c (neural networks) for continuous or image observations"
        if isinstance(envs.observation_space, (gym.spaces.Tuple, gym.spaces.MultiDiscrete)):
            obs_fix = ("wrap the env to number its states 0..S-1 (np.ravel_multi_index over the parts), "
                       "or use ppo or a2c")
        self.n_states, self.obs_start = discrete_n(envs.observation_space, "observation", env_id, obs_fix)
        self.n_actions, self.action_start = discrete_n(envs.action_space, "action", env_id,
                                                       "use sac, td3 or ppo for continuous actions")
        self.table = QTable(self.n_states, self.n_actions, self.config.q_init)
        self.counters = Counters(next_action=None)  # (N,) the action already drawn for self.obs (SARSA's a')

    def modules(self) -> dict:
        return {"q_table": self.table, "counters": self.counters}

    def q_table(self) -> np.ndarray:
        """A copy of Q as a (S, A) numpy array."""
        return self.table.q.numpy().copy()

    # ---- acting -----------------------------------------------------------------------------------
    def epsilon(self) -> float:
        return exploration_epsilon(self.config, self.progress)

    def states(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.int64).reshape(-1) - self.obs_start

    def explore(self, s: np.ndarray, eps: float) -> np.ndarray:
        """Epsilon-greedy actions (table indices) in states s (N,) (epsilon_greedy)."""
        return epsilon_greedy(self.table.q.numpy()[s], eps, self.rng)

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Greedy argmax_a Q(s, a) (ties to the lowest action), or epsilon-greedy at the current epsilon."""
        s = self.states(obs)
        a = self.table.q.numpy()[s].argmax(axis=1) if deterministic else self.explore(s, self.epsilon())
        return a + self.action_start

    # ---- learning ---------------------------------------------------------------------------------
    def next_value(self, q: np.ndarray, s2: np.ndarray, a2: np.ndarray, truncated: np.ndarray,
                   eps: float) -> np.ndarray:
        """The bootstrap value at s' (N,): Q-learning's max_a' Q(s', a')."""
        return q[s2].max(axis=1)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        q = self.table.q.numpy()  # (S, A) a view: writing it updates the module's buffer
        eps, alpha = self.epsilon(), schedule(c.learning_rate, self.progress)
        s = self.states(self.obs)
        a = self.counters.next_action if self.counters.next_action is not None else self.explore(s, eps)
        step = self.envs.step(a + self.action_start)
        if step.episodes:
            self.record_episodes(step.episodes)
        s2 = self.states(step.obs)
        a2 = self.counters.next_action = self.explore(s2, eps)  # a', drawn before the update
        boot = s2.copy()  # the state to bootstrap from: where an episode was truncated, where it was cut
        if step.bootstrap is not None:
            boot[step.bootstrap] = self.states(step.final_obs)[step.bootstrap]
        y = step.reward + c.gamma * ~step.terminated * self.next_value(q, boot, a2, step.truncated, eps)
        # TD update of the valid transitions; duplicates of (s, a) move by the mean of their errors.
        v = step.valid
        idx = s[v] * self.n_actions + a[v]  # flat (s, a) indices, (M,)
        flat = q.reshape(-1)
        td = y[v] - flat[idx]
        size = self.n_states * self.n_actions
        mean_td = np.bincount(idx, weights=td, minlength=size)[idx] / np.bincount(idx, minlength=size)[idx]
        flat[idx] += alpha * mean_td
        self.obs = step.obs
        self.num_steps += self.envs.num_envs
        return {"td_error": float(np.abs(td).mean()) if len(td) else 0.0, "epsilon": eps, "learning_rate": alpha}


class SARSA(QLearning):
    """Tabular SARSA (on-policy TD control); expected=True makes it expected SARSA. It differs from
    Q-learning only in the bootstrap value."""

    algo = "sarsa"
    Config = SARSAConfig

    def next_value(self, q: np.ndarray, s2: np.ndarray, a2: np.ndarray, truncated: np.ndarray,
                   eps: float) -> np.ndarray:
        """Q(s', a') with a' the next action; expected SARSA, and truncated transitions (where no
        next action is taken), use the expectation under the epsilon-greedy policy."""
        expectation = epsilon_greedy_value(q[s2], eps)
        if self.config.expected:
            return expectation
        return np.where(truncated, expectation, q[s2, a2])

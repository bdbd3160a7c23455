"""DAgger, dataset aggregation (Ross, Gordon & Bagnell 2011, "A Reduction of Imitation Learning and
Structured Prediction to No-Regret Online Learning", Algorithm 3.1).

Behavioural cloning trains on the expert's states only; the clone's own mistakes lead it to states
the expert never visited, where it has no data, and errors compound (O(T^2 eps) against O(T eps)).
DAgger collects data where the learner goes:
  for i = 1..N:  pi_i = beta_i pi* + (1 - beta_i) pi_hat_i    (each step: the expert's action with
                 sample trajectories with pi_i                  probability beta_i, else the learner's)
                 D_i = {(s, pi*(s))}: the visited states, labelled by the expert
                 D <- D u D_i;  pi_hat_{i+1} = argmax log-likelihood on D (`likelihood_loss`)
The first policy is fitted to the `dataset` (if given; else round 0 is the expert alone, beta_0 = 1).
Schedules: linear beta_i = max(0, 1 - i / beta_rampdown) (the `imitation` library's), exponential
beta_i = beta_decay^i (Ross et al.'s p^(i-1), counted from the dataset as the expert's round).
`--steps` counts env steps; one iteration is one round of `round_steps` of them; the expert's
labels cost no env steps. The learner keeps its weights from round to round (warm start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.errors import ConfigError
from ascent.imitation.common import (ClonedPolicy, ImitationConfig, action_agreement, demonstration_tensors,
                                     likelihood_loss, load_expert)
from ascent.imitation.datasets import dataset_for
from ascent.nets.optim import OptimizerStep

BETA_SCHEDULES = ("linear", "exponential")


@dataclass
class DAggerConfig(ImitationConfig):
    expert: str = param("", "the run directory of the expert that labels the visited states (any trained ascent run)")
    beta_schedule: str = param("exponential", "linear | exponential: how beta_i, the expert's share of the actions, falls",
                               choices=BETA_SCHEDULES)
    beta_rampdown: int = param(5, "linear schedule: rounds until beta reaches 0", positive=True)
    beta_decay: float = param(0.5, "exponential schedule: beta_i = beta_decay^i", range=(0.0, 1.0))
    round_steps: int = param(1000, "env steps per round (over all envs)", positive=True)
    train_steps: int = param(2000, "gradient steps on the aggregate dataset after each round", positive=True)
    initial_train_steps: int = param(2000, "gradient steps on the dataset before the first round", nonnegative=True)
    deterministic_learner: bool = param(True, "the learner's share of the actions is its mode (False: sampled)")
    eval_every: int = param(1000, "evaluate the learner every this many env steps (0: never)")

    def validate(self) -> None:
        super().validate()
        if self.round_steps % self.n_envs:
            raise ConfigError(f"round_steps ({self.round_steps}) must be a multiple of n_envs ({self.n_envs})")


def beta(schedule: str, i: int, rampdown: int, decay: float) -> float:
    """beta_i, the probability that round i's action is the expert's."""
    if schedule == "linear":
        return min(1.0, max(0.0, 1.0 - i / rampdown))
    return float(decay ** i)


class DAgger(Agent):
    """DAgger with a linear or exponential beta schedule, on ascent's policy classes."""

    algo = "dagger"
    Config = DAggerConfig

    def setup(self) -> None:
        c = self.config
        self.cloned = ClonedPolicy(self.envs.observation_space, self.envs.action_space, c)  # (checks the spaces)
        self.expert = load_expert(c.expert, self)
        self.policy_net = self.cloned.net
        self.step = OptimizerStep(self.cloned.fitted_parameters(), c.learning_rate, max_grad_norm=c.max_grad_norm)
        self.data = Aggregate()
        if c.dataset:
            demos = dataset_for(self, c.dataset, c.n_episodes)
            self.data.add(*demonstration_tensors(self.cloned, demos.obs, demos.actions, update_stats=True))
        # round: the next round's index i (1 after a dataset: it is the expert's round 0)
        self.counters = Counters(round=1 if c.dataset else 0, pretrained=not c.dataset)

    def modules(self) -> dict:
        return {"policy": self.policy_net, "optimizer": self.step.optimizer, "counters": self.counters,
                "data": self.data}

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.cloned.env_action(obs, deterministic)

    def train_iteration(self) -> dict[str, float]:
        c, k = self.config, self.counters
        metrics = {}
        if not k.pretrained:  # fit pi_hat_1 to the demonstrations first
            metrics.update(self.fit(c.initial_train_steps, "pretrain_"))
            k.pretrained = True
        b = beta(c.beta_schedule, k.round, c.beta_rampdown, c.beta_decay)
        states, labels, expert_share = self.run_mixture(b)
        self.data.add(*demonstration_tensors(self.cloned, states, labels, update_stats=True))
        metrics.update(self.fit(c.train_steps))
        k.round += 1
        metrics.update({"beta": b, "round": float(k.round - 1), "expert_action_share": expert_share,
                        "dataset_size": float(len(self.data))})
        return metrics

    def run_mixture(self, b: float) -> tuple[np.ndarray, np.ndarray, float]:
        """round_steps env steps of pi_i = b pi* + (1 - b) pi_hat (chosen per env and step); the
        visited states, the expert's label of each, and the share of actions that were the expert's."""
        c = self.config
        states, labels, used = [], [], 0
        obs = self.obs
        for _ in range(c.round_steps // self.envs.num_envs):
            with self.expert.on_device():
                expert_action = self.expert.act_batch(obs, deterministic=True)
            use_expert = self.rng.random(len(obs)) < b
            action = expert_action
            if not use_expert.all():
                learner = self.cloned.env_action(obs, c.deterministic_learner)
                action = np.where(use_expert.reshape(-1, *[1] * (learner.ndim - 1)), expert_action, learner)
            step = self.envs.step(action)
            valid = step.valid  # (a next-step autoreset's reset step: its state is no state the policy acted in)
            states.append(obs[valid])
            labels.append(expert_action[valid])
            used += int(use_expert[valid].sum())
            if step.episodes:
                self.record_episodes(step.episodes)
            obs = step.obs
        self.obs = obs
        self.num_steps += c.round_steps
        states, labels = np.concatenate(states), np.concatenate(labels)
        return states, labels, used / max(len(states), 1)

    def fit(self, n_steps: int, prefix: str = "") -> dict[str, float]:
        """n_steps gradient steps of the likelihood on the aggregate dataset."""
        c = self.config
        x, actions = self.data.x, self.data.actions
        if n_steps == 0 or len(x) == 0:
            return {}
        for idx in torch.from_numpy(self.rng.integers(len(x), size=(n_steps, min(c.batch_size, len(x))))):
            loss, terms = likelihood_loss(self.cloned, x[idx], actions[idx], c.ent_weight, c.l2_weight)
            self.step(loss)
        out = {"loss": loss.item(), "neglogp": terms["neglogp"].item(), **action_agreement(self.cloned, x, actions)}
        return {prefix + k: v for k, v in out.items()}


class Aggregate:
    """D: every (x, expert action) pair so far, checkpointed with the agent."""

    def __init__(self):
        self.x: torch.Tensor = torch.zeros(0)
        self.actions: torch.Tensor = torch.zeros(0)

    def __len__(self) -> int:
        return len(self.x)

    def add(self, x: torch.Tensor, actions: torch.Tensor) -> None:
        self.x = x if len(self.x) == 0 else torch.cat([self.x, x])
        self.actions = actions if len(self.actions) == 0 else torch.cat([self.actions, actions])

    def state_dict(self) -> dict:
        return {"x": self.x, "actions": self.actions}

    def load_state_dict(self, state: dict) -> None:
        self.x, self.actions = state["x"], state["actions"]

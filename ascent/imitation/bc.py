"""Behavioural cloning: supervised learning of the expert's actions (Pomerleau 1991; Bain & Sammut 1995).

Maximum likelihood on the demonstrations D = {(s, a*)}:
  max_theta E_(s,a*)~D [log pi_theta(a*|s)]  (+ an entropy bonus, an optional L2 penalty)
with `ascent.imitation.common.likelihood_loss`, on ascent's own policy classes (categorical,
Gaussian, squashed Gaussian; SAC's actor with policy=sac). BC takes no env steps: here `--steps`
counts gradient steps, and one iteration is `eval_interval` of them, followed, where episodes are
held out (`validation_fraction` > 0, split by whole episodes), by the loss on them. Early stopping: when the held-out
loss (the negative log-likelihood for discrete actions; the mode's squared error for Box actions)
has not improved for `patience` iterations, the best weights are put back and training ends.
Known limit (Ross et al. 2011): errors compound, off the expert's states the clone has no data;
DAgger (`ascent.imitation.dagger`) is the remedy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.imitation.common import (ClonedPolicy, ImitationConfig, action_agreement, best_state,
                                     demonstration_tensors, likelihood_loss)
from ascent.imitation.datasets import dataset_for
from ascent.nets.optim import OptimizerStep


@dataclass
class BCConfig(ImitationConfig):
    validation_fraction: float = param(0.0, "fraction of the dataset's episodes held out for early stopping (0: "
                                       "none, every episode trains: with 10 Pendulum episodes, holding out 2 cost "
                                       "-233 against -170)", range=(0.0, 0.9))
    eval_interval: int = param(500, "gradient steps per iteration (the validation loss is measured after each)",
                               positive=True)
    patience: int = param(10, "stop after this many iterations without a better validation loss (0: never)",
                          nonnegative=True)
    eval_every: int = param(2000, "evaluate the policy in the env every this many gradient steps (0: never)")
    eval_episodes: int = param(5)
    checkpoint_every: int = param(10_000, "write a checkpoint every this many gradient steps (0: only at the end)")
    log_every_steps: int = param(0)


class BC(Agent):
    """Behavioural cloning with a validation split and early stopping."""

    algo = "bc"
    Config = BCConfig
    curve_metric = "eval_return"

    def setup(self) -> None:
        c = self.config
        self.cloned = ClonedPolicy(self.envs.observation_space, self.envs.action_space, c)  # (checks the spaces)
        demos = dataset_for(self, c.dataset, c.n_episodes)
        # The split draws from its own stream of the seed: the same episodes are held out on resume.
        train, val = demos.split(c.validation_fraction, np.random.default_rng([self.seed, 0xBC]))
        self.policy_net = self.cloned.net
        # (observation standardization: the training set's statistics, fixed from here on)
        self.x, self.actions = demonstration_tensors(self.cloned, train.obs, train.actions, update_stats=True)
        self.val = demonstration_tensors(self.cloned, val.obs, val.actions) if val is not None else None
        self.step = OptimizerStep(self.cloned.fitted_parameters(), c.learning_rate, max_grad_norm=c.max_grad_norm)
        self.counters = Counters(best_val=math.inf, bad_iterations=0, finished=False)
        self.best = best_state(self.policy_net)
        self.demos = {"episodes": demos.n_episodes, "transitions": len(demos),
                      "expert_return": float(demos.episode_returns.mean())}

    def modules(self) -> dict:
        return {"policy": self.policy_net, "optimizer": self.step.optimizer, "counters": self.counters,
                "best_policy": BestWeights(self)}

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.cloned.env_action(obs, deterministic)

    def start_episodes(self) -> None:
        """BC steps no env: nothing to reset."""

    @property
    def finished(self) -> bool:
        return bool(self.counters.finished)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        n_steps = min(c.eval_interval, self.target_steps - self.num_steps)
        n = len(self.x)
        for idx in torch.from_numpy(self.rng.integers(n, size=(n_steps, min(c.batch_size, n)))):
            loss, terms = likelihood_loss(self.cloned, self.x[idx], self.actions[idx], c.ent_weight, c.l2_weight)
            self.step(loss)
        self.num_steps += n_steps
        metrics = {"loss": loss.item(), **{k: v.item() for k, v in terms.items() if k != "l2" or c.l2_weight}}
        metrics.update(action_agreement(self.cloned, *self._sample(self.x, self.actions)))
        if self.val is None:  # no held-out episodes: the training loss decides nothing
            self.best = best_state(self.policy_net)
            return metrics
        with torch.no_grad():
            metrics["val_neglogp"] = likelihood_loss(self.cloned, *self.val)[1]["neglogp"].item()
        metrics.update({f"val_{k}": v for k, v in action_agreement(self.cloned, *self.val).items()})
        # The criterion: the held-out likelihood for discrete actions; for Box actions the mode's squared
        # error, because a Gaussian's likelihood also rewards shrinking its std, and stopping on it ended
        # Pendulum's BC while the mean still improved (measured: 6.5k steps, -222; on the error: see RESULTS).
        val_loss = metrics["val_action_mse"] if self.cloned.box else metrics["val_neglogp"]
        k = self.counters
        if val_loss < k.best_val:
            k.best_val, k.bad_iterations = val_loss, 0
            self.best = best_state(self.policy_net)
        else:
            k.bad_iterations += 1
        if c.patience and k.bad_iterations >= c.patience or self.num_steps >= self.target_steps:
            self.policy_net.load_state_dict(self.best)  # early stopping returns the best weights
            k.finished = k.bad_iterations >= c.patience > 0
        metrics["best_val_loss"] = k.best_val
        return metrics

    def _sample(self, x: torch.Tensor, actions: torch.Tensor, size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """At most `size` training pairs, for a cheap agreement figure."""
        if len(x) <= size:
            return x, actions
        idx = torch.from_numpy(self.rng.choice(len(x), size, replace=False))
        return x[idx], actions[idx]


class BestWeights:
    """The best weights so far, in the checkpoint: a resumed run early-stops to the same ones."""

    def __init__(self, agent: BC):
        self.agent = agent

    def state_dict(self) -> dict:
        return self.agent.best

    def load_state_dict(self, state: dict) -> None:
        self.agent.best = {k: v.clone() for k, v in state.items()}

"""Deep Q-learning (Mnih et al. 2015, Nature) and its extensions, each a switch that composes with
the others; all of them on is a Rainbow-style agent (Hessel et al. 2018, arXiv:1710.02298).

Act epsilon-greedily on Q (or greedily on a noisy Q), store (s, a, r, s', terminated) in the replay
buffer, and every `train_freq` env steps take `gradient_steps` steps on minibatches of the loss

  DQN             L = E[ w * huber(Q(s, a) - y) ],  y = R + gamma^L (1 - terminated) max_a' Q'(s', a')
  double_q        y uses Q'(s', argmax_a' Q(s', a')): the online net picks, the target net evaluates
                  (van Hasselt et al. 2016, arXiv:1509.06461)
  n_step          R = sum_{k<L} gamma^k r_{t+k} and s' = s_{t+L}, L <= n stopping at an episode's end
                  (Sutton 1988; Rainbow section 2)
  distributional  C51: L = E[ w * KL(Phi T Z' || Z(s, a)) ], the target distribution r + gamma^L z on
                  the atoms, projected back onto them (Bellemare et al. 2017, algorithm 1)
  prioritized     transitions drawn in proportion to p^alpha, w the importance weights with beta
                  annealed to 1 (Schaul et al. 2016); p = |y - Q| (the KL for C51)
  dueling, noisy  network switches (ascent/q_networks.py); noisy nets explore by their noise

Q' is a target network, copied (tau = 1) or Polyak-averaged every `target_update_interval` env
steps. Truncation is not termination: a truncated episode bootstraps from the observation it was
cut at (the replay buffer stores it as s').
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from ascent.core.agent import Agent, Counters
from ascent.algorithms.common.exploration import exploration_epsilon
from ascent.core.config import param
from ascent.errors import ConfigError, EnvError
from ascent.algorithms.common.offpolicy import (OffPolicyConfig, collect_transitions, gradient_steps_per_round,
                                                replay_buffer)
from ascent.nets.optim import OptimizerStep, polyak_update
from ascent.nets.precision import resolve_precision
from ascent.buffers.prioritized import PrioritizedReplay
from ascent.nets.q_networks import QNetwork
from ascent.buffers.replay import Batch


@dataclass
class DQNConfig(OffPolicyConfig):
    net_arch: tuple = param((64, 64), "hidden layer widths of the Q network (after the CNN for images)")
    learning_rate: float = param(1e-4, "Adam step size")
    batch_size: int = param(32)
    tau: float = param(1.0, "target network update coefficient (1: hard copy)")
    train_freq: int = param(4)
    target_update_interval: int = param(10_000, "env steps between target network updates", positive=True)
    exploration_fraction: float = param(0.1, "fraction of training over which epsilon decays linearly", range=(0.0, 1.0))
    exploration_initial_eps: float = param(1.0, "epsilon of the epsilon-greedy policy at the start", range=(0.0, 1.0))
    exploration_final_eps: float = param(0.05, "epsilon after the decay", range=(0.0, 1.0))
    max_grad_norm: float = param(10.0, "gradient-norm clip", range=(0.0, math.inf), low_open=True)
    # bf16 autocast did not pay on CartPole's 256x256 MLP at batch 64 (0.57 vs 0.50 ms per
    # forward-backward): fp32 unless asked.
    precision: str = param("fp32", "auto | fp32 | bf16: matmul precision of the network passes (auto: bf16 where native)")
    double_q: bool = param(False, "Double DQN: the online network picks the next action, the target evaluates it")
    dueling: bool = param(False, "dueling heads: Q = V + A - mean A")
    n_step: int = param(1, "n-step returns (1: one-step TD)", positive=True)
    prioritized_replay: bool = param(False, "proportional prioritized replay with importance-sampling weights")
    prioritized_replay_alpha: float = param(0.6, "priority exponent alpha (0: uniform)", range=(0.0, 1.0))
    prioritized_replay_beta0: float = param(0.4, "initial importance-sampling exponent, annealed linearly to 1",
                                            range=(0.0, 1.0))
    prioritized_replay_eps: float = param(1e-6, "added to |TD error| so that no priority is zero",
                                          range=(0.0, math.inf), low_open=True)
    noisy: bool = param(False, "noisy nets (factorized Gaussian) in the fully connected layers")
    noisy_sigma0: float = param(0.5, "initial noise scale sigma0 of the noisy layers", range=(0.0, math.inf))
    distributional: bool = param(False, "C51: a categorical return distribution per action")
    n_atoms: int = param(51, "atoms of the C51 distribution", positive=True)
    v_min: float = param(-10.0, "lowest atom of the C51 support")
    v_max: float = param(10.0, "highest atom of the C51 support")

    def validate(self) -> None:
        super().validate()
        if self.distributional and (self.n_atoms < 2 or self.v_min >= self.v_max):
            raise ConfigError(f"C51 needs n_atoms >= 2 and v_min < v_max, got n_atoms={self.n_atoms}, "
                              f"v_min={self.v_min}, v_max={self.v_max}")


# What `ascent tune dqn` searches (ascent.tuning.spaces' format): RL-Zoo's sample_dqn_params
# (rl_zoo3/hyperparams_opt.py) as the reference, one gradient step per env step (its
# subsample_steps = 1, ascent's gradient_steps = -1) and learning rates up to 1e-2 (RL-Zoo's 1 only
# diverges).
SEARCH_SPACE = {
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 100, 128, 256, 512]},
    "buffer_size": {"type": "categorical", "choices": [10_000, 50_000, 100_000, 1_000_000]},
    "exploration_final_eps": {"type": "float", "low": 0.0, "high": 0.2},
    "exploration_fraction": {"type": "float", "low": 0.0, "high": 0.5},
    "target_update_interval": {"type": "categorical", "choices": [1, 1000, 5000, 10_000, 15_000, 20_000]},
    "learning_starts": {"type": "categorical", "choices": [0, 1000, 5000, 10_000, 20_000]},
    "train_freq": {"type": "categorical", "choices": [1, 4, 8, 16, 128, 256, 1000]},
    "gradient_steps": -1,
    "net_arch": {"type": "categorical", "choices": [[64], [64, 64], [256, 256]]},
}


def categorical_projection(next_probs: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                           atoms: torch.Tensor) -> torch.Tensor:
    """Phi T z (C51, Bellemare et al. 2017, algorithm 1): the distribution putting next_probs (B, k) on
    r + discount * z_j, clipped to [v_min, v_max] and split between the two nearest atoms in
    proportion to closeness. rewards and discounts (B,), discounts already 0 where terminated."""
    v_min, v_max = atoms[0], atoms[-1]
    delta = (v_max - v_min) / (len(atoms) - 1)
    tz = (rewards.unsqueeze(1) + discounts.unsqueeze(1) * atoms).clamp(v_min, v_max)  # (B, k)
    b = (tz - v_min) / delta  # fractional atom index in [0, k - 1]
    lower, upper = b.floor().long(), b.ceil().long()
    # Where b lands exactly on an atom (lower == upper) the whole mass goes there.
    w_lower = torch.where(lower == upper, torch.ones_like(b), upper.float() - b)
    w_upper = b - lower.float()
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(1, lower, next_probs * w_lower)
    projected.scatter_add_(1, upper, next_probs * w_upper)
    return projected


class DQN(Agent):
    """Deep Q-network with the Rainbow extensions as switches."""

    algo = "dqn"
    Config = DQNConfig
    search_space = SEARCH_SPACE

    def setup(self) -> None:
        c = self.config
        if not isinstance(self.envs.action_space, gym.spaces.Discrete):
            raise EnvError(f"dqn needs a Discrete action space; {self.env_id or 'this env'} has "
                           f"{self.envs.action_space}: use sac, td3 or ppo for continuous actions")
        self.n_actions = int(self.envs.action_space.n)
        n_atoms = c.n_atoms if c.distributional else 1
        self.q_net = QNetwork(self.envs.observation_space, self.n_actions, c.net_arch, c.activation, c.dueling,
                              c.noisy, n_atoms, c.noisy_sigma0, c.normalize_obs, resolve_precision(c.precision, self.device))
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.step = OptimizerStep(self.q_net, c.learning_rate, max_grad_norm=c.max_grad_norm)
        self.numpy_greedy = self.q_net.numpy_greedy()  # acting on an MLP without torch's overhead (None: torch)
        self.target_pairs = (list(self.q_target.parameters()), list(self.q_net.parameters()))
        self.atoms = torch.linspace(c.v_min, c.v_max, c.n_atoms) if c.distributional else None
        buffer = replay_buffer(c, self.envs)
        self.replay = PrioritizedReplay(buffer, c.prioritized_replay_alpha, c.prioritized_replay_eps) \
            if c.prioritized_replay else buffer
        self.save_replay = c.save_replay_buffer
        self.counters = Counters(next_target_update=c.target_update_interval)  # env step of the next Q' update
        space = self.envs.observation_space  # a round's shared target pass: <= 8192 transitions, <= 256 MiB of s and s'
        obs_bytes = 2 * int(np.prod(space.shape)) * np.dtype(space.dtype).itemsize
        self.updates_per_target_pass = max(1, min(8192, 2**28 // obs_bytes) // c.batch_size)

    def modules(self) -> dict:
        return {"q_net": self.q_net, "q_target": self.q_target, "optimizer": self.step.optimizer,
                "counters": self.counters}

    # ---- acting -------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        return exploration_epsilon(self.config, self.progress)

    def q_values(self, net: QNetwork, obs: torch.Tensor) -> torch.Tensor:
        return mean_q(net, obs, self.atoms)

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Greedy in Q (noise off when deterministic); epsilon-greedy at the current epsilon otherwise."""
        n = len(obs)
        explore = np.zeros(n, dtype=bool) if deterministic else self.rng.random(n) < self.epsilon()
        if not explore.any():
            return self.greedy_action(obs, deterministic)
        action = self.rng.integers(self.n_actions, size=n)
        if not explore.all():  # the network only where some env acts greedily
            action = np.where(explore, action, self.greedy_action(obs, deterministic))
        return action

    def greedy_action(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """argmax_a Q(s, a) (with the noise of noisy nets unless deterministic)."""
        if self.numpy_greedy is not None:
            return self.numpy_greedy(obs)
        self.q_net.set_noise(not deterministic)
        with torch.no_grad():
            greedy = self.q_values(self.q_net, torch.as_tensor(obs)).argmax(1).cpu().numpy()
        self.q_net.set_noise(True)
        return greedy

    def explore(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random actions during the warm-up, then epsilon-greedy (the same action is stored
        and sent to the env)."""
        if self.q_net.encoder.normalizer is not None:  # the running statistics see every observation acted on
            self.q_net.encoder.preprocess(torch.as_tensor(obs), update_stats=True)
        action = self.rng.integers(self.n_actions, size=len(obs)) if warmup else self.act_batch(obs, deterministic=False)
        return action, action

    # ---- learning -----------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        if not collect_transitions(self, self.explore):
            return {}
        metrics = self.gradient_round(gradient_steps_per_round(c, self.envs.num_envs))
        if self.num_steps >= self.counters.next_target_update:  # Q' <- (1 - tau) Q' + tau Q
            polyak_update(*self.target_pairs, c.tau)
            self.counters.next_target_update = (self.num_steps // c.target_update_interval + 1) * c.target_update_interval
        metrics["epsilon"] = self.epsilon()
        return metrics

    def gradient_round(self, n: int) -> dict[str, float]:
        """n gradient steps in a row with Q' fixed; the last step's metrics."""
        for i, (batch, weights, slots, target) in enumerate(self.minibatches(n)):
            metrics = self.update(batch, weights, slots, target, report=i == n - 1)
        return metrics

    def minibatches(self, n: int):
        """The round's n minibatches as (batch, importance weights, buffer slots, td_target or None).

        Under prioritized replay or noisy nets each minibatch is drawn after the previous step (its
        priorities, its noise); the target is computed in `update`. Otherwise, with uniform replay
        and Q' fixed for the round, the round's draws are made at once and Q'(s', .) of all of them
        computed in one pass (without double Q, the whole target y): the same computation as one
        minibatch at a time, in fewer and larger operations (at most 8192 transitions, or 256 MiB of
        observations, a pass)."""
        c = self.config
        if c.prioritized_replay or c.noisy:
            for _ in range(n):
                yield (*self.sample(), None)
            return
        per_pass = self.updates_per_target_pass
        for first in range(0, n, per_pass):
            k = min(per_pass, n - first)
            batches = self.replay.batch(*self.replay.sample_index(c.batch_size * k), c.n_step, c.gamma).to(self.device)
            with torch.no_grad():  # in cache-sized chunks: 2x faster than at once
                target_out = torch.cat([self.q_target(part) for part in batches.next_obs.split(1024)])
            targets = None if c.double_q else self.td_target(batches, target_out)  # double Q: a' from the current Q
            for i in range(k):
                part = slice(i * c.batch_size, (i + 1) * c.batch_size)
                minibatch = batches[part]
                target = targets[part] if targets is not None else self.td_target(minibatch, target_out[part])
                yield minibatch, None, None, target

    def sample(self) -> tuple[Batch, torch.Tensor | None, np.ndarray | None]:
        """A minibatch, with its importance weights and buffer slots under prioritized replay."""
        c = self.config
        if c.prioritized_replay:
            beta = c.prioritized_replay_beta0 + self.progress * (1.0 - c.prioritized_replay_beta0)
            row, env, flat, weights = self.replay.sample_index(c.batch_size, beta, self.rng)
            return self.replay.batch(row, env, c.n_step, c.gamma).to(self.device), weights.to(self.device), flat
        return self.replay.batch(*self.replay.sample_index(c.batch_size), c.n_step, c.gamma).to(self.device), None, None

    def update(self, batch: Batch, weights: torch.Tensor | None = None, slots: np.ndarray | None = None,
               target: torch.Tensor | None = None, report: bool = True) -> dict[str, float]:
        """One gradient step on a minibatch (importance `weights` and buffer `slots` under
        prioritized replay; `target`: its td_target if already computed); its metrics when `report`."""
        c = self.config
        if c.noisy:  # fresh noise for every step's online and target passes (Fortunato et al.)
            self.q_net.reset_noise()
            self.q_target.reset_noise()
        if target is None:
            target = self.td_target(batch)
        loss, td_error, stats = self.loss(batch, target, weights)
        self.step(loss)
        if c.prioritized_replay:
            self.replay.update_priorities(slots, td_error.cpu().numpy())
        return {name: value.item() for name, value in stats.items()} if report else {}

    def td_target(self, batch: Batch, target_out: torch.Tensor | None = None) -> torch.Tensor:
        return dqn_target(self.q_net, self.q_target, self.atoms, batch, self.config.gamma, self.config.double_q, target_out)

    def loss(self, batch: Batch, target: torch.Tensor,
             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        return dqn_loss(self.q_net, self.atoms, batch, target, weights)


# ---- the loss, as functions of the networks (Ape-X's learner is this one) -------------------------------
def mean_q(net: QNetwork, obs: torch.Tensor, atoms: torch.Tensor | None) -> torch.Tensor:
    """Q(s, .) (B, |A|): the network's output, or the mean of each action's distribution (C51)."""
    out = net(obs)
    return out if atoms is None else (out.softmax(2) * atoms).sum(2)


@torch.no_grad()
def dqn_target(q_net: QNetwork, q_target: QNetwork, atoms: torch.Tensor | None, batch: Batch, gamma: float,
               double_q: bool, target_out: torch.Tensor | None = None) -> torch.Tensor:
    """The regression target: y (B,), or for C51 the projected distribution Phi T Z' (B, k).
    `target_out`: Q'(s', .) if already computed."""
    discount = batch.discount if batch.discount is not None else torch.full_like(batch.rewards, gamma)
    discount = discount * (1.0 - batch.terminated)  # no bootstrap after a termination
    if target_out is None:
        target_out = q_target(batch.next_obs)
    next_probs = None if atoms is None else target_out.softmax(2)  # C51: Z'(s', .) (B, |A|, k)
    if double_q:  # the online network chooses a', the target network evaluates it
        next_action = mean_q(q_net, batch.next_obs, atoms).argmax(1)
    else:
        next_action = (target_out if next_probs is None else (next_probs * atoms).sum(2)).argmax(1)
    rows = torch.arange(len(next_action), device=next_action.device)
    if next_probs is None:
        return batch.rewards + discount * target_out[rows, next_action]
    return categorical_projection(next_probs[rows, next_action], batch.rewards, discount, atoms)


def dqn_loss(q_net: QNetwork, atoms: torch.Tensor | None, batch: Batch, target: torch.Tensor,
             weights: torch.Tensor | None = None, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(loss, per-sample priority signal (B,), metric tensors) of the online network against `target`.
    `out`: q_net(batch.obs) if already computed (DQfD's losses share one pass)."""
    action = batch.actions.long().unsqueeze(1)  # (B, 1)
    if out is None:
        out = q_net(batch.obs)
    if atoms is None:
        q = out.gather(1, action).squeeze(1)
        per_sample = F.smooth_l1_loss(q, target, reduction="none")  # Huber
        td_error = (target - q).detach()
        q_mean = q.detach()
    else:
        log_p = out.log_softmax(2)[torch.arange(len(action), device=out.device), action.squeeze(1)]  # (B, k)
        per_sample = -(target * log_p).sum(1)  # cross-entropy = KL + const
        td_error = per_sample.detach()
        q_mean = (log_p.detach().exp() * atoms).sum(1)
    loss = per_sample.mean() if weights is None else (weights * per_sample).mean()
    return loss, td_error, {"loss": loss.detach(), "q_mean": q_mean.mean()}

"""Deterministic policy gradient actor-critics: DDPG (Lillicrap et al. 2016, arXiv:1509.02971) and
TD3 (Fujimoto et al. 2018, arXiv:1802.09477), which is DDPG plus three fixes of its Q overestimation.

Deterministic policy gradient (Silver et al. 2014):  grad_theta J = E_s[grad_theta mu(s) grad_a Q(s, a)|a=mu(s)],
obtained by autodiff of the actor loss L_mu = -E[Q_1(s, mu(s))]. Every gradient step, on a
minibatch (s, a, r, s', terminated) from the replay buffer:

  target      y = r + gamma (1 - terminated) min_k Q'_k(s', a'),  a' = clip(mu'(s') + clip(eps, -c, c), -1, 1)
  critics     L_Q = sum_k E[(Q_k(s, a) - y)^2]
  every `policy_delay` steps: the actor step on L_mu, then Polyak averaging of both target networks.

TD3's fixes, as switches: clipped double-Q (n_critics=2: the min over twin critics), delayed policy
updates (policy_delay=2) and target policy smoothing (eps ~ N(0, target_policy_noise^2) clipped at
target_noise_clip). DDPG is the same update with one critic, no delay and no smoothing. Exploration:
Gaussian or Ornstein-Uhlenbeck noise on the unit-box action.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from ascent.algorithms.common.offpolicy import (OffPolicyConfig, collect_transitions, gradient_steps_per_round,
                                                replay_buffer)
from ascent.buffers.replay import Batch
from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.nets.actors import ActionScale, DeterministicActor
from ascent.nets.optim import OptimizerStep, polyak_update
from ascent.nets.precision import resolve_precision
from ascent.nets.q_networks import QEnsemble

NOISE_TYPES = ("normal", "ornstein_uhlenbeck", "none")


@dataclass
class TD3Config(OffPolicyConfig):
    net_arch: tuple = param((400, 300))
    learning_rate: float = param(1e-3)
    n_critics: int = param(2, "number of Q critics; the target takes their minimum (clipped double-Q)", positive=True)
    policy_delay: int = param(2, "critic steps per actor step and target update (delayed policy updates)", positive=True)
    target_policy_noise: float = param(0.2, "std of the smoothing noise on the target action (0: none)",
                                       range=(0.0, math.inf))
    target_noise_clip: float = param(0.5, "the smoothing noise is clipped to +-this", range=(0.0, math.inf))
    action_noise: str = param("normal", "exploration noise on the unit-box action: normal | ornstein_uhlenbeck | none",
                              choices=NOISE_TYPES)
    action_noise_std: float = param(0.1, "exploration noise std (unit-box scale)", range=(0.0, math.inf))


# What `ascent tune td3` (and ddpg) searches (ascent.tuning.spaces' format): RL-Zoo's
# sample_td3_params and sample_ddpg_params, which are one space (rl_zoo3/hyperparams_opt.py), as the
# reference. Its gradient_steps = train_freq is ascent's -1; learning rates stop at 1e-2 (RL-Zoo's 1
# only diverges).
SEARCH_SPACE = {
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 100, 128, 256, 512, 1024, 2048]},
    "buffer_size": {"type": "categorical", "choices": [10_000, 100_000, 1_000_000]},
    "tau": {"type": "categorical", "choices": [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]},
    "train_freq": {"type": "categorical", "choices": [1, 4, 8, 16, 32, 64, 128, 256, 512]},
    "gradient_steps": -1,
    "action_noise": {"type": "categorical", "choices": ["ornstein_uhlenbeck", "normal", "none"]},
    "action_noise_std": {"type": "float", "low": 0.0, "high": 1.0},
    "net_arch": {"type": "categorical", "choices": [[64, 64], [256, 256], [400, 300]]},
}


@dataclass
class DDPGConfig(TD3Config):
    n_critics: int = param(1, "number of Q critics (DDPG: one)")
    policy_delay: int = param(1, "critic steps per actor step (DDPG: 1)")
    target_policy_noise: float = param(0.0, "std of the smoothing noise on the target action (DDPG: none)")


def smoothed(action: torch.Tensor, noise_std: float, noise_clip: float) -> torch.Tensor:
    """Target policy smoothing: clip(a + clip(eps, -c, c), -1, 1), eps ~ N(0, noise_std^2) (TD3 eq. 15)."""
    if noise_std <= 0:
        return action
    eps = (torch.randn_like(action) * noise_std).clamp(-noise_clip, noise_clip)
    return (action + eps).clamp(-1.0, 1.0)


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise dx = theta (mu - x) dt + sigma sqrt(dt) N(0, 1), one process per
    env, reset where an episode ends (DDPG paper's exploration)."""

    def __init__(self, shape: tuple[int, int], sigma: float, theta: float = 0.15, dt: float = 1e-2):
        self.x = np.zeros(shape, dtype=np.float32)
        self.sigma, self.theta, self.dt = sigma, theta, dt

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        self.x += -self.theta * self.x * self.dt + self.sigma * np.sqrt(self.dt) * rng.standard_normal(self.x.shape)
        return self.x

    def reset(self, done: np.ndarray) -> None:
        self.x[done] = 0.0


class TD3(Agent):
    """Twin delayed deep deterministic policy gradient."""

    algo = "td3"
    Config = TD3Config
    search_space = SEARCH_SPACE

    def setup(self) -> None:
        c = self.config
        self.scale = ActionScale(self.envs.action_space, self.algo)
        precision = resolve_precision(c.precision, self.device)
        actor = DeterministicActor(self.envs.observation_space, self.scale.dim, c.net_arch, c.activation,
                                   c.normalize_obs, precision)
        critic = QEnsemble(c.n_critics, actor.encoder.dim + self.scale.dim, c.net_arch, c.activation,
                           precision=precision)
        set_td3_learner(self, actor, critic, c.learning_rate)
        self.replay, self.save_replay = replay_buffer(c, self.envs), c.save_replay_buffer
        self.ou_noise = (OrnsteinUhlenbeckNoise((self.envs.num_envs, self.scale.dim), c.action_noise_std)
                         if c.action_noise == "ornstein_uhlenbeck" else None)
        # Gradient steps taken (the policy_delay phase), the latest actor loss, the OU noise state.
        self.counters = Counters(n_updates=0, last_actor_loss=None,
                                 ou_noise=self.ou_noise.x if self.ou_noise is not None else None)

    def modules(self) -> dict:
        return td3_modules(self)

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        unit = self.actor(self.actor.encoder(obs)).cpu().numpy()
        if not deterministic:
            unit = self.add_noise(unit)
        return self.scale.to_env(unit)

    def add_noise(self, unit: np.ndarray) -> np.ndarray:
        """mu(s) + exploration noise, clipped to the unit box."""
        c = self.config
        if c.action_noise == "normal":
            unit = unit + c.action_noise_std * self.rng.standard_normal(unit.shape).astype(np.float32)
        elif c.action_noise == "ornstein_uhlenbeck":
            unit = unit + self.ou_noise(self.rng)
        return np.clip(unit, -1.0, 1.0)

    @torch.no_grad()
    def explore(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        """(stored unit-box, env) actions: uniform random during the warm-up, then mu(s) + noise."""
        x = self.actor.encoder(obs, update_stats=True)
        unit = self.scale.random(len(obs), self.rng) if warmup else self.add_noise(self.actor(x).cpu().numpy())
        return unit, self.scale.to_env(unit)

    def train_iteration(self) -> dict[str, float]:
        on_done = self.ou_noise.reset if self.ou_noise is not None else None
        if not collect_transitions(self, self.explore, on_done):
            return {}
        for _ in range(gradient_steps_per_round(self.config, self.envs.num_envs)):
            metrics = self.update(self.replay.sample(self.config.batch_size).to(self.device))
        return metrics

    def update(self, batch: Batch) -> dict[str, float]:
        """One critic step; every policy_delay-th call also an actor step and the target updates."""
        return td3_update(self, batch, self.config)[0]


def set_td3_learner(holder, actor: DeterministicActor, critic: QEnsemble, learning_rate: float) -> None:
    """The parts td3_update steps, set on `holder` (a TD3 agent; Ape-X DPG's learner): the actor and
    the critics, their target copies, their OptimizerSteps and the (target, source) parameter lists."""
    holder.actor, holder.critic = actor, critic
    holder.actor_target = copy.deepcopy(actor).requires_grad_(False)
    holder.critic_target = copy.deepcopy(critic).requires_grad_(False)
    holder.actor_step = OptimizerStep(actor, learning_rate)
    holder.critic_step = OptimizerStep(critic, learning_rate)
    holder.target_pairs = (list(holder.actor_target.parameters()) + list(holder.critic_target.parameters()),
                           list(actor.parameters()) + list(critic.parameters()))


def td3_modules(holder) -> dict:
    """What a checkpoint of the TD3 learner holds."""
    return {"actor": holder.actor, "actor_target": holder.actor_target, "critic": holder.critic,
            "critic_target": holder.critic_target, "actor_optimizer": holder.actor_step.optimizer,
            "critic_optimizer": holder.critic_step.optimizer, "counters": holder.counters}


def td3_update(parts, batch: Batch, c, weights: torch.Tensor | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """TD3's (and DDPG's) gradient step on a minibatch, for any holder of the parts: `actor`,
    `actor_target`, `critic`, `critic_target`, `actor_step`, `critic_step`, `target_pairs` and
    `counters` (n_updates, last_actor_loss) (a TD3 agent; Ape-X DPG's learner). An n-step batch
    bootstraps with its own discounts gamma^L (batch.discount); `weights` (B,), importance weights
    of prioritized replay, weigh the critics' squared errors. Returns the metrics and |y - Q_1(s, a)|
    (B,), the new priorities."""
    x, x_next = parts.actor.encoder(batch.obs), parts.actor.encoder(batch.next_obs)
    discount = c.gamma if batch.discount is None else batch.discount
    with torch.no_grad():  # target with policy smoothing and clipped double-Q
        next_action = smoothed(parts.actor_target(x_next), c.target_policy_noise, c.target_noise_clip)
        q_next = parts.critic_target(x_next, next_action).min(0).values
        target = batch.rewards + discount * (1.0 - batch.terminated) * q_next  # (B,)
    q = parts.critic(x, batch.actions)  # (K, B), fp32
    squared = (q - target).square()  # (K, B)
    critic_loss = (squared if weights is None else squared * weights).mean(1).sum()
    parts.critic_step(critic_loss)
    parts.counters.n_updates += 1
    metrics = {"critic_loss": critic_loss.item(), "q_mean": q.mean().item()}

    if parts.counters.n_updates % c.policy_delay == 0:  # deterministic policy gradient through Q_1
        actor_loss = -parts.critic(x, parts.actor(x), n=1)[0].mean()
        parts.actor_step(actor_loss)  # (the critics' weight gradients are not computed)
        polyak_update(*parts.target_pairs, c.tau)
        parts.counters.last_actor_loss = actor_loss.item()
    if parts.counters.last_actor_loss is not None:
        metrics["actor_loss"] = parts.counters.last_actor_loss
    return metrics, (target - q[0]).detach().abs()


class DDPG(TD3):
    """Deep deterministic policy gradient: TD3's update with one critic, no delay, no smoothing."""

    algo = "ddpg"
    Config = DDPGConfig

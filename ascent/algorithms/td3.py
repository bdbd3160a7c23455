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
from dataclasses import dataclass

import numpy as np
import torch

from ascent.actors import ActionScale, DeterministicActor
from ascent.agent import Agent
from ascent.config import check_range, param
from ascent.errors import ConfigError
from ascent.networks import QEnsemble, autocast, resolve_precision
from ascent.offpolicy import OffPolicyConfig, step_into_buffer
from ascent.optim import Adam, FlatParameters, polyak_update
from ascent.replay import Batch, ReplayBuffer

NOISE_TYPES = ("normal", "ornstein_uhlenbeck", "none")


@dataclass
class TD3Config(OffPolicyConfig):
    net_arch: tuple = param((400, 300), "hidden layer widths of the actor and the critics")
    learning_rate: float = param(1e-3, "Adam step size of the actor and the critics")
    n_critics: int = param(2, "number of Q critics; the target takes their minimum (clipped double-Q)")
    policy_delay: int = param(2, "critic steps per actor step and target update (delayed policy updates)")
    target_policy_noise: float = param(0.2, "std of the smoothing noise on the target action (0: none)")
    target_noise_clip: float = param(0.5, "the smoothing noise is clipped to +-this")
    action_noise: str = param("normal", "exploration noise on the unit-box action: normal | ornstein_uhlenbeck | none")
    action_noise_std: float = param(0.1, "exploration noise std (unit-box scale)")

    def validate(self) -> None:
        super().validate()
        if self.n_critics <= 0 or self.policy_delay <= 0:
            raise ConfigError("n_critics and policy_delay must be positive integers")
        for name in ("target_policy_noise", "target_noise_clip", "action_noise_std"):
            check_range(name, getattr(self, name), 0.0, float("inf"))
        if self.action_noise not in NOISE_TYPES:
            raise ConfigError(f"action_noise must be one of {', '.join(NOISE_TYPES)}; got {self.action_noise!r}")


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

    def setup(self) -> None:
        c = self.config
        self.scale = ActionScale(self.envs.action_space, self.algo)
        self.precision = resolve_precision(c.precision)
        self.actor = DeterministicActor(self.envs.observation_space, self.scale.dim, c.net_arch, c.activation,
                                        c.normalize_obs)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = QEnsemble(c.n_critics, self.actor.encoder.dim + self.scale.dim, c.net_arch, c.activation)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_params = list(self.actor.parameters())
        # Flat parameter/gradient buffers: one zero_grad and one fused Adam call per network.
        self.actor_flat, self.critic_flat = FlatParameters(self.actor), FlatParameters(self.critic)
        self.actor_optimizer = Adam([self.actor_flat.param], lr=c.learning_rate)
        self.critic_optimizer = Adam([self.critic_flat.param], lr=c.learning_rate)
        self.polyak_pairs = (list(self.actor_target.parameters()) + list(self.critic_target.parameters()),
                             self.actor_params + list(self.critic.parameters()))
        self.replay = ReplayBuffer(c.buffer_size, c.n_envs, self.envs.observation_space, self.envs.action_space,
                                   c.optimize_memory_usage)
        self.ou_noise = (OrnsteinUhlenbeckNoise((c.n_envs, self.scale.dim), c.action_noise_std)
                         if c.action_noise == "ornstein_uhlenbeck" else None)
        self.n_updates = 0

    def modules(self) -> dict:
        return {"actor": self.actor, "actor_target": self.actor_target, "critic": self.critic,
                "critic_target": self.critic_target, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer}

    @torch.no_grad()
    def policy_action(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        unit = self.actor(self.actor.encoder(torch.as_tensor(obs))).numpy()
        if not deterministic:
            unit = self.explore(unit)
        return self.scale.to_env(unit)

    def explore(self, unit: np.ndarray) -> np.ndarray:
        """mu(s) + exploration noise, clipped to the unit box."""
        c = self.config
        if c.action_noise == "normal":
            unit = unit + c.action_noise_std * self.rng.standard_normal(unit.shape).astype(np.float32)
        elif c.action_noise == "ornstein_uhlenbeck":
            unit = unit + self.ou_noise(self.rng)
        return np.clip(unit, -1.0, 1.0)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        for _ in range(c.train_freq):  # act: uniform random actions until learning_starts, then mu + noise
            with torch.no_grad():
                x = self.actor.encoder(torch.as_tensor(self.obs), update_stats=True)
                if self.num_steps < c.learning_starts:
                    unit = self.scale.random(c.n_envs, self.rng)
                else:
                    unit = self.explore(self.actor(x).numpy())
            self.obs, done = step_into_buffer(self.envs, self.replay, self.obs, unit, self.scale.to_env(unit),
                                              self.record_episodes)
            if self.ou_noise is not None:
                self.ou_noise.reset(done)
            self.num_steps += c.n_envs
        if self.num_steps < c.learning_starts:
            return {}
        n_updates = c.gradient_steps if c.gradient_steps > 0 else c.train_freq * c.n_envs
        for _ in range(n_updates):
            metrics = self.update(self.replay.sample(c.batch_size))
        return metrics

    def update(self, batch: Batch) -> dict[str, float]:
        """One critic step; every policy_delay-th call also an actor step and the target updates."""
        c = self.config
        x, x_next = self.actor.encoder(batch.obs), self.actor.encoder(batch.next_obs)
        with torch.no_grad(), autocast(self.precision):  # target with policy smoothing and clipped double-Q
            next_action = smoothed(self.actor_target(x_next), c.target_policy_noise, c.target_noise_clip)
            q_next = self.critic_target(x_next, next_action).min(0).values
            target = batch.rewards + c.gamma * (1.0 - batch.terminated) * q_next  # (B,)
        with autocast(self.precision):
            q = self.critic(x, batch.actions)  # (K, B), fp32
        critic_loss = (q - target).square().mean(1).sum()
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        self.n_updates += 1
        metrics = {"critic_loss": critic_loss.item(), "q_mean": q.mean().item()}

        if self.n_updates % c.policy_delay == 0:  # deterministic policy gradient through Q_1
            with autocast(self.precision):
                actor_loss = -self.critic(x, self.actor(x), n=1)[0].mean()
            self.actor_flat.zero_grad()
            actor_loss.backward(inputs=self.actor_params)  # the critics' weight gradients are skipped
            self.actor_optimizer.step()
            polyak_update(*self.polyak_pairs, c.tau)
            self.last_actor_loss = actor_loss.item()
        if hasattr(self, "last_actor_loss"):
            metrics["actor_loss"] = self.last_actor_loss
        return metrics


class DDPG(TD3):
    """Deep deterministic policy gradient: TD3's update with one critic, no delay, no smoothing."""

    algo = "ddpg"
    Config = DDPGConfig

"""Soft actor-critic (SAC): Haarnoja et al. 2018 (arXiv:1801.01290) with the automatic temperature of
"Soft Actor-Critic Algorithms and Applications" (arXiv:1812.05905), as Stable-Baselines3 runs it.

Maximum-entropy RL: maximize E[sum_t r_t + alpha H(pi(.|s_t))]. Every env step is stored in the
replay buffer; every gradient step, on a minibatch (s, a, r, s', terminated):

  soft target      y = r + gamma (1 - terminated) (min_k Q'_k(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s')
  critics          L_Q = 1/2 sum_k E[(Q_k(s, a) - y)^2]                              (eq. 5, twin critics)
  actor            L_pi = E[alpha log pi(a~|s) - min_k Q_k(s, a~)],  a~ = tanh(mu + sigma eps)  (eq. 7, reparameterized)
  temperature      L_alpha = -E[log alpha (log pi(a~|s) + H_target)],  H_target = -dim(A)      (eq. 18, in log alpha)
  target critics   Q' <- (1 - tau) Q' + tau Q

The actions are tanh-squashed, and log pi includes the change-of-variables correction
(distributions.TanhGaussian). With Discrete actions the discrete variant runs (Christodoulou 2019,
arXiv:1910.07207): the critics output Q(s, .) for every action, and the expectations over the
policy are computed exactly instead of sampled (`update_discrete`). Network passes can run in bfloat16 (precision="bf16"; fp32 master
weights, fp32 Q outputs and targets): on CPUs with native bf16 the matmuls are ~4x faster.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from ascent.actors import (ActionScale, CategoricalActor, SquashedGaussianActor, discrete_target_entropy,
                           target_entropy_default)
from ascent.agent import Agent
from ascent.config import param
from ascent.errors import ConfigError
from ascent.networks import QEnsemble, autocast, resolve_precision
from ascent.offpolicy import OffPolicyConfig, step_into_buffer
from ascent.optim import Adam, FlatParameters, polyak_update
from ascent.replay import Batch, ReplayBuffer


@dataclass
class SACConfig(OffPolicyConfig):
    ent_coef: float | str = param("auto", "temperature alpha: a number, or 'auto' / 'auto_X' to tune it from X (default 1)")
    target_entropy: float | str = param("auto", "entropy the temperature aims at ('auto': -dim(A); discrete: 0.5 log|A|)")
    target_update_interval: int = param(1, "gradient steps between target-critic updates")
    n_critics: int = param(2, "number of Q critics; the minimum over them is used (clipped double-Q)")

    def validate(self) -> None:
        super().validate()
        if self.target_update_interval <= 0 or self.n_critics <= 0:
            raise ConfigError("target_update_interval and n_critics must be positive integers")
        if isinstance(self.ent_coef, str):
            if not (self.ent_coef == "auto" or self.ent_coef.startswith("auto_")):
                raise ConfigError(f"ent_coef must be a positive number, 'auto' or 'auto_X'; got {self.ent_coef!r}")
            if self.ent_coef.startswith("auto_"):
                try:
                    init = float(self.ent_coef[5:])
                except ValueError:
                    raise ConfigError(f"ent_coef: cannot read the initial value in {self.ent_coef!r}") from None
                if not init > 0:
                    raise ConfigError(f"ent_coef's initial value must be > 0, got {self.ent_coef!r}")
        elif not self.ent_coef > 0:
            raise ConfigError(f"ent_coef must be > 0, got {self.ent_coef}")
        if isinstance(self.target_entropy, str) and self.target_entropy != "auto":
            raise ConfigError(f"target_entropy must be a number or 'auto', got {self.target_entropy!r}")


class Temperature(torch.nn.Module):
    """log alpha as a module, so that it travels in checkpoints like the networks."""

    def __init__(self, alpha: float, learn: bool):
        super().__init__()
        self.log_alpha = torch.nn.Parameter(torch.tensor([math.log(alpha)]), requires_grad=learn)


class SAC(Agent):
    """Soft actor-critic with twin critics and automatic temperature tuning."""

    algo = "sac"
    Config = SACConfig

    def setup(self) -> None:
        c = self.config
        space = self.envs.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.precision = resolve_precision(c.precision)
        obs_space = self.envs.observation_space
        if self.discrete:
            self.n_actions = int(space.n)
            self.actor = CategoricalActor(obs_space, self.n_actions, c.net_arch, c.activation, c.normalize_obs)
            self.critic = QEnsemble(c.n_critics, self.actor.encoder.dim, c.net_arch, c.activation, out_dim=self.n_actions)
            auto_entropy = discrete_target_entropy(self.n_actions, 0.5)
        else:
            self.scale = ActionScale(space, self.algo)
            self.actor = SquashedGaussianActor(obs_space, self.scale.dim, c.net_arch, c.activation, c.normalize_obs)
            self.critic = QEnsemble(c.n_critics, self.actor.encoder.dim + self.scale.dim, c.net_arch, c.activation)
            auto_entropy = target_entropy_default(self.scale.dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_params = list(self.actor.parameters())
        # Flat parameter/gradient buffers: one zero_grad and one fused Adam call per network.
        self.actor_flat, self.critic_flat = FlatParameters(self.actor), FlatParameters(self.critic)
        self.actor_optimizer = Adam([self.actor_flat.param], lr=c.learning_rate)
        self.critic_optimizer = Adam([self.critic_flat.param], lr=c.learning_rate)
        auto = isinstance(c.ent_coef, str)
        init = float(c.ent_coef[5:]) if auto and c.ent_coef.startswith("auto_") else (1.0 if auto else c.ent_coef)
        self.temperature = Temperature(init, learn=auto)
        self.alpha_optimizer = Adam([self.temperature.log_alpha], lr=c.learning_rate) if auto else None
        self.target_entropy = auto_entropy if c.target_entropy == "auto" else float(c.target_entropy)
        self.replay = ReplayBuffer(c.buffer_size, c.n_envs, self.envs.observation_space, self.envs.action_space,
                                   c.optimize_memory_usage)
        self.n_updates = 0
        self.polyak_pairs = (list(self.critic_target.parameters()), list(self.critic.parameters()))

    def modules(self) -> dict:
        mods = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "temperature": self.temperature, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer}
        if self.alpha_optimizer is not None:
            mods["alpha_optimizer"] = self.alpha_optimizer
        return mods

    @torch.no_grad()
    def policy_action(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        action = self.actor(self.actor.encoder(torch.as_tensor(obs)), deterministic).numpy()
        return action if self.discrete else self.scale.to_env(action)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        for _ in range(c.train_freq):  # act: uniform random actions until learning_starts, then pi
            with torch.no_grad():
                x = self.actor.encoder(torch.as_tensor(self.obs), update_stats=True)
                if self.num_steps < c.learning_starts:
                    action = (self.rng.integers(self.n_actions, size=c.n_envs) if self.discrete
                              else self.scale.random(c.n_envs, self.rng))
                else:
                    action = self.actor(x).numpy()
            env_action = action if self.discrete else self.scale.to_env(action)
            self.obs, _ = step_into_buffer(self.envs, self.replay, self.obs, action, env_action, self.record_episodes)
            self.num_steps += c.n_envs
        if self.num_steps < c.learning_starts:
            return {}
        n_updates = c.gradient_steps if c.gradient_steps > 0 else c.train_freq * c.n_envs
        update = self.update_discrete if self.discrete else self.update
        for _ in range(n_updates):
            metrics = update(self.replay.sample(c.batch_size))
        return metrics

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step of the temperature, the critics and the actor (in SB3's order)."""
        c = self.config
        x, x_next = self.actor.encoder(batch.obs), self.actor.encoder(batch.next_obs)
        log_alpha = self.temperature.log_alpha
        alpha = log_alpha.detach().exp()
        with autocast(self.precision):
            action_pi, logp_pi = self.actor.distribution(x).sample_with_log_prob()  # a~ = tanh(mu + sigma eps)

        # Temperature (eq. 18): raise alpha when the policy's entropy -log pi is below the target.
        metrics = {"alpha": alpha.item()}
        if self.alpha_optimizer is not None:
            alpha_loss = -(log_alpha * (logp_pi.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()
            metrics["alpha_loss"] = alpha_loss.item()

        # Critics (eq. 5) toward the soft clipped double-Q target.
        with torch.no_grad(), autocast(self.precision):
            next_action, next_logp = self.actor.distribution(x_next).sample_with_log_prob()
            q_next = self.critic_target(x_next, next_action).min(0).values - alpha * next_logp
            target = batch.rewards + c.gamma * (1.0 - batch.terminated) * q_next  # (B,)
        with autocast(self.precision):
            q = self.critic(x, batch.actions)  # (K, B), fp32
        critic_loss = 0.5 * (q - target).square().mean(1).sum()
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        # Actor (eq. 7): through the reparameterized action into the updated critics; only the
        # actor's gradients are computed (the critics' weight gradients are skipped).
        with autocast(self.precision):
            q_pi = self.critic(x, action_pi).min(0).values
        actor_loss = (alpha * logp_pi - q_pi).mean()
        self.actor_flat.zero_grad()
        actor_loss.backward(inputs=self.actor_params)
        self.actor_optimizer.step()

        self.n_updates += 1
        if self.n_updates % c.target_update_interval == 0:
            polyak_update(*self.polyak_pairs, c.tau)
        metrics.update(critic_loss=critic_loss.item(), actor_loss=actor_loss.item(), entropy=-logp_pi.mean().item(),
                       q_mean=q.mean().item())
        return metrics

    def update_discrete(self, batch: Batch) -> dict[str, float]:
        """Discrete SAC: the same three losses with exact expectations over the |A| actions,
          y = r + gamma (1 - terminated) sum_a' pi(a'|s') (min_k Q'_k(s', a') - alpha log pi(a'|s'))
          L_pi = E_s[sum_a pi(a|s) (alpha log pi(a|s) - min_k Q_k(s, a))]
          L_alpha = -E_s[log alpha (sum_a pi(a|s) log pi(a|s) + H_target)]."""
        c = self.config
        x, x_next = self.actor.encoder(batch.obs), self.actor.encoder(batch.next_obs)
        log_alpha = self.temperature.log_alpha
        alpha = log_alpha.detach().exp()
        with autocast(self.precision):
            logp = self.actor.log_probs(x)  # (B, |A|)
        probs = logp.exp()
        neg_entropy = (probs * logp).sum(-1)  # (B,)

        metrics = {"alpha": alpha.item()}
        if self.alpha_optimizer is not None:
            alpha_loss = -(log_alpha * (neg_entropy.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()
            metrics["alpha_loss"] = alpha_loss.item()

        with torch.no_grad(), autocast(self.precision):
            next_logp = self.actor.log_probs(x_next)
            q_next = self.critic_target(x_next).min(0).values  # (B, |A|)
            v_next = (next_logp.exp() * (q_next - alpha * next_logp)).sum(-1)  # soft state value
            target = batch.rewards + c.gamma * (1.0 - batch.terminated) * v_next
        with autocast(self.precision):
            q_all = self.critic(x)  # (K, B, |A|)
        q = q_all.gather(2, batch.actions.view(1, -1, 1).expand(q_all.shape[0], -1, 1)).squeeze(-1)  # (K, B)
        critic_loss = 0.5 * (q - target).square().mean(1).sum()
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        with torch.no_grad(), autocast(self.precision):
            q_pi = self.critic(x).min(0).values  # the updated critics, (B, |A|)
        actor_loss = (probs * (alpha * logp - q_pi)).sum(-1).mean()
        self.actor_flat.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()

        self.n_updates += 1
        if self.n_updates % c.target_update_interval == 0:
            polyak_update(*self.polyak_pairs, c.tau)
        metrics.update(critic_loss=critic_loss.item(), actor_loss=actor_loss.item(), entropy=-neg_entropy.mean().item(),
                       q_mean=q.mean().item())
        return metrics

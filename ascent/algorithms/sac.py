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
(distributions.TanhGaussian). With `use_sde` the actor explores by gSDE (Raffin et al. 2021;
nets.actors.StateDependentNoiseActor): mu + z(s)^T Theta instead of mu + sigma(s) eps, each env's
Theta drawn at the start of every train_freq round and every sde_sample_freq steps, one Theta per
gradient step for the batch (SB3's SAC with use_sde).

With Discrete actions the discrete variant runs (Christodoulou 2019,
arXiv:1910.07207): the critics output Q(s, .) for every action, and the expectations over the
policy are computed exactly instead of sampled (`policy_terms`, `soft_value`, `q_taken`). Network passes can run in bfloat16 (precision="bf16"; fp32 master
weights, fp32 Q outputs and targets): on CPUs with native bf16 the matmuls are ~4x faster.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from ascent.algorithms.common.offpolicy import (OffPolicyConfig, collect_transitions, gradient_steps_per_round,
                                                replay_buffer)
from ascent.algorithms.common.warm_start import load_policy_state
from ascent.buffers.replay import Batch
from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.errors import ConfigError
from ascent.nets.actors import (ActionScale, CategoricalActor, SquashedGaussianActor, StateDependentNoiseActor,
                                discrete_target_entropy, target_entropy_default)
from ascent.nets.optim import Adam, OptimizerStep, polyak_update
from ascent.nets.precision import resolve_precision
from ascent.nets.q_networks import QEnsemble


@dataclass
class SACConfig(OffPolicyConfig):
    ent_coef: float | str = param("auto", "temperature alpha: a number, or 'auto' / 'auto_X' to tune it from X (default 1)")
    target_entropy: float | str = param("auto", "entropy the temperature aims at ('auto': -dim(A); discrete: 0.5 log|A|)")
    target_update_interval: int = param(1, "gradient steps between target-critic updates", positive=True)
    n_critics: int = param(2, "number of Q critics; the minimum over them is used (clipped double-Q)", positive=True)
    init_from: str = param("", "a run (BC with policy=sac, SAC) whose actor this one starts from ('': a fresh one); "
                           "it then acts from the start (no random warm-up)")
    critic_warmup: int = param(1000, "with init_from: gradient steps that fit only the critics first", nonnegative=True)
    use_sde: bool = param(False, "generalized state-dependent exploration (gSDE, Box actions): noise z(s)^T Theta from "
                          "the actor's last features")
    sde_sample_freq: int = param(-1, "with use_sde: env steps between new exploration matrices within a train_freq "
                                 "round (-1: once per round)", range=(-1, math.inf))
    use_sde_at_warmup: bool = param(False, "with use_sde: the warm-up acts with gSDE instead of uniformly at random")
    log_std_init: float = param(-3.0, "with use_sde: the initial log sigma of gSDE's matrix")
    full_std: bool = param(True, "with use_sde: one sigma per (feature, action) pair (False: one per feature)")
    use_expln: bool = param(False, "with use_sde: sigma = expln(log_std) (exp below 0, log(1 + x) + 1 above) instead "
                            "of exp(log_std)")

    def validate(self) -> None:
        super().validate()
        if self.use_sde and self.init_from:
            raise ConfigError("use_sde=True cannot start from init_from: the loaded actor has no gSDE matrix; drop one "
                              "of them")
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


# What `ascent tune sac` searches (ascent.tuning.spaces' format): RL-Zoo's sample_sac_params
# (rl_zoo3/hyperparams_opt.py) as the reference. Its gradient_steps = train_freq is ascent's -1 (as
# many gradient steps as env steps); learning rates stop at 1e-2 (RL-Zoo's 1 only diverges) and
# learning_starts at 10k (a tuning budget is short).
SEARCH_SPACE = {
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128, 256, 512, 1024, 2048]},
    "buffer_size": {"type": "categorical", "choices": [10_000, 100_000, 1_000_000]},
    "learning_starts": {"type": "categorical", "choices": [0, 100, 1000, 10_000]},
    "train_freq": {"type": "categorical", "choices": [1, 4, 8, 16, 32, 64, 128, 256, 512]},
    "gradient_steps": -1,
    "tau": {"type": "categorical", "choices": [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]},
    "net_arch": {"type": "categorical", "choices": [[64, 64], [256, 256], [400, 300]]},
}


class Temperature(torch.nn.Module):
    """log alpha as a module, so that it travels in checkpoints like the networks."""

    def __init__(self, alpha: float, learn: bool):
        super().__init__()
        self.log_alpha = torch.nn.Parameter(torch.tensor([math.log(alpha)]), requires_grad=learn)


class SAC(Agent):
    """Soft actor-critic with twin critics and automatic temperature tuning."""

    algo = "sac"
    Config = SACConfig
    search_space = SEARCH_SPACE

    def setup(self) -> None:
        c = self.config
        space, obs_space = self.envs.action_space, self.envs.observation_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        precision = resolve_precision(c.precision, self.device)
        if self.discrete:
            if c.use_sde:
                raise ConfigError(f"use_sde=True (gSDE) needs Box actions; this env's are {space}: leave it false")
            self.n_actions = int(space.n)
            self.actor = CategoricalActor(obs_space, self.n_actions, c.net_arch, c.activation, c.normalize_obs, precision)
            self.critic = QEnsemble(c.n_critics, self.actor.encoder.dim, c.net_arch, c.activation,
                                    out_dim=self.n_actions, precision=precision)
            auto_entropy = discrete_target_entropy(self.n_actions, 0.5)
        else:
            self.scale = ActionScale(space, self.algo)
            if c.use_sde:
                self.actor = StateDependentNoiseActor(obs_space, self.scale.dim, c.net_arch, c.activation,
                                                      c.normalize_obs, precision, c.log_std_init, c.full_std,
                                                      c.use_expln)
            else:
                self.actor = SquashedGaussianActor(obs_space, self.scale.dim, c.net_arch, c.activation,
                                                   c.normalize_obs, precision)
            self.critic = QEnsemble(c.n_critics, self.actor.encoder.dim + self.scale.dim, c.net_arch, c.activation,
                                    precision=precision)
            auto_entropy = target_entropy_default(self.scale.dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_step = OptimizerStep(self.actor, c.learning_rate)
        self.critic_step = OptimizerStep(self.critic, c.learning_rate)
        auto = isinstance(c.ent_coef, str)
        init = float(c.ent_coef[5:]) if auto and c.ent_coef.startswith("auto_") else (1.0 if auto else c.ent_coef)
        self.temperature = Temperature(init, learn=auto)
        self.alpha_optimizer = Adam([self.temperature.log_alpha], lr=c.learning_rate) if auto else None
        self.target_entropy = auto_entropy if c.target_entropy == "auto" else float(c.target_entropy)
        self.replay, self.save_replay = replay_buffer(c, self.envs), c.save_replay_buffer
        self.counters = Counters(n_updates=0)  # gradient steps taken (the target_update_interval phase)
        if c.init_from:
            load_policy_state(c.init_from, self.actor, c, ("policy", "actor"))
        self.target_pairs = (list(self.critic_target.parameters()), list(self.critic.parameters()))

    def modules(self) -> dict:
        mods = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "temperature": self.temperature, "actor_optimizer": self.actor_step.optimizer,
                "critic_optimizer": self.critic_step.optimizer, "counters": self.counters}
        if self.alpha_optimizer is not None:
            mods["alpha_optimizer"] = self.alpha_optimizer
        return mods

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        action = self.actor(self.actor.encoder(obs), deterministic).cpu().numpy()
        return action if self.discrete else self.scale.to_env(action)

    @torch.no_grad()
    def explore(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        """(stored, env) actions: uniform random during the warm-up, then sampled from pi."""
        c = self.config
        x = self.actor.encoder(obs, update_stats=True)
        if c.use_sde:  # new matrices at each round's start, and every sde_sample_freq steps within it
            within = (self.num_steps // self.envs.env_steps_per_step) % c.train_freq
            if within == 0 or (c.sde_sample_freq > 0 and within % c.sde_sample_freq == 0):
                self.actor.reset_noise(len(obs))
        if warmup and not c.init_from and not (c.use_sde and c.use_sde_at_warmup):  # (a loaded actor acts at once)
            n = len(obs)
            action = self.rng.integers(self.n_actions, size=n) if self.discrete else self.scale.random(n, self.rng)
        else:
            action = self.actor(x).cpu().numpy()
        return action, (action if self.discrete else self.scale.to_env(action))

    def train_iteration(self) -> dict[str, float]:
        if not collect_transitions(self, self.explore):
            return {}
        for _ in range(gradient_steps_per_round(self.config, self.envs.num_envs)):
            metrics = self.update(self.replay.sample(self.config.batch_size).to(self.device))
        return metrics

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step of the temperature, the critics and the actor (in SB3's order); the
        continuous and discrete cases differ only in `policy_terms`, `soft_value` and `q_taken`."""
        c = self.config
        x, x_next = self.actor.encoder(batch.obs), self.actor.encoder(batch.next_obs)
        log_alpha = self.temperature.log_alpha
        alpha = log_alpha.detach().exp()
        weights = self.actor.training_noise() if c.use_sde and not self.discrete else None  # (gSDE: this step's Theta)
        pi = self.policy_terms(x, weights)

        # init_from: the critics alone for the first critic_warmup steps (warm_start's docstring).
        warming_up = bool(c.init_from) and self.counters.n_updates < c.critic_warmup
        # Temperature (eq. 18): raise alpha when the policy's entropy -E[log pi] is below the target.
        metrics = {"alpha": alpha.item()}
        if self.alpha_optimizer is not None and not warming_up:
            alpha_loss = -(log_alpha * (pi.log_prob.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()
            metrics["alpha_loss"] = alpha_loss.item()

        # Critics (eq. 5) toward the soft clipped double-Q target.
        with torch.no_grad():
            v_next = self.soft_value(self.policy_terms(x_next, weights), self.critic_target, x_next, alpha)
            target = batch.rewards + c.gamma * (1.0 - batch.terminated) * v_next  # (B,)
        q = self.q_taken(x, batch.actions)  # (K, B), fp32
        critic_loss = 0.5 * (q - target).square().mean(1).sum()
        self.critic_step(critic_loss)

        # Actor (eq. 7): minimize E[alpha log pi - min_k Q_k] = -soft value, through the updated
        # critics; only the actor's gradients are computed (the critics' weight gradients are skipped).
        actor_loss = -self.soft_value(pi, self.critic, x, alpha).mean()
        if not warming_up:
            self.actor_step(actor_loss)

        self.counters.n_updates += 1
        if self.counters.n_updates % c.target_update_interval == 0:
            polyak_update(*self.target_pairs, c.tau)
        metrics.update(critic_loss=critic_loss.item(), actor_loss=actor_loss.item(),
                       entropy=-pi.log_prob.mean().item(), q_mean=q.mean().item())
        return metrics

    # ---- where the continuous and the discrete cases differ -------------------------------------------
    def policy_terms(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> "PolicyTerms":
        """Continuous: a~ = tanh(mu + sigma eps) reparameterized (gSDE: tanh(mu + z^T Theta), Theta =
        `weights`), with log pi(a~|s) (B,). Discrete: pi(.|s) (B, |A|) and the expected log-prob
        sum_a pi(a|s) log pi(a|s) (B,)."""
        if self.discrete:
            logp = self.actor.log_probs(x)  # (B, |A|)
            probs = logp.exp()
            return PolicyTerms(probs, logp, (probs * logp).sum(-1))
        dist = self.actor.distribution(x) if weights is None else self.actor.distribution(x, weights)
        action, logp = dist.sample_with_log_prob()
        return PolicyTerms(action, logp, logp)

    def soft_value(self, pi: "PolicyTerms", critic: QEnsemble, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """V(s) = E_{a~pi}[min_k Q_k(s, a) - alpha log pi(a|s)] (B,): from the sampled action
        (continuous), or exactly as the sum over the |A| actions (discrete, Christodoulou 2019)."""
        if self.discrete:
            q = critic(x).min(0).values  # (B, |A|)
            return (pi.action * (q - alpha * pi.per_action)).sum(-1)
        return critic(x, pi.action).min(0).values - alpha * pi.log_prob

    def q_taken(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_k(s, a) of the stored actions, (K, B)."""
        if self.discrete:
            q_all = self.critic(x)  # (K, B, |A|)
            return q_all.gather(2, actions.view(1, -1, 1).expand(q_all.shape[0], -1, 1)).squeeze(-1)
        return self.critic(x, actions)


class PolicyTerms(NamedTuple):
    """What the losses need of pi at a batch of states. Continuous: `action` a sampled a~ (B, d) and
    `per_action` = `log_prob` = log pi(a~|s) (B,). Discrete: `action` the probabilities pi(.|s)
    (B, |A|), `per_action` log pi(.|s) (B, |A|), `log_prob` the expectation sum_a pi log pi (B,)."""

    action: torch.Tensor
    per_action: torch.Tensor
    log_prob: torch.Tensor

"""Actors of the off-policy continuous-control algorithms: deterministic (DDPG, TD3) and
tanh-squashed Gaussian (SAC). Both act in the unit box (-1, 1)^d; `ActionScale` maps to the env's
bounds, so the replay buffer, the critics and the noise all live on one scale whatever the env.
"""

from __future__ import annotations

import math
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ascent.nets.distributions import NoisyTanhGaussian, TanhGaussian, gsde_log_std, gsde_sigma
from ascent.errors import EnvError
from ascent.nets.layers import MLP, mlp_forward
from ascent.nets.precision import autocast
from ascent.nets.encoders import ObsEncoder


class ActionScale:
    """Unit actions u in [-1, 1]^d <-> env actions low + (u + 1) (high - low) / 2, for bounded Box
    action spaces only (a clear error otherwise)."""

    def __init__(self, space: gym.Space, algo: str):
        if not isinstance(space, gym.spaces.Box):
            raise EnvError(f"{algo} needs a continuous (Box) action space, this env's is {space}; "
                           "for discrete actions use sac (its discrete variant), ppo or a2c")
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise EnvError(f"{algo} squashes actions into the env's bounds, but this env's action space {space} is "
                           "unbounded; wrap it in gymnasium.wrappers.ClipAction / RescaleAction to give it bounds")
        self.low = space.low.astype(np.float32)
        self.high = space.high.astype(np.float32)
        self.shape = space.shape
        self.dim = int(np.prod(space.shape))

    def to_env(self, unit: np.ndarray) -> np.ndarray:
        return (self.low + (unit + 1.0) * 0.5 * (self.high - self.low)).reshape(-1, *self.shape)

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform unit actions for the warm-up (the same law as sampling the env's action space)."""
        return rng.uniform(-1.0, 1.0, (n, self.dim)).astype(np.float32)


def _linear(in_dim: int, out_dim: int) -> nn.Linear:
    return nn.Linear(in_dim, out_dim)  # torch's default init, as SB3's off-policy networks use


class _Torso(MLP):
    """Encoder + MLP torso (torch's default init, activation after every layer) whose layers run at
    `precision` (ascent.nets.precision). The encoder is registered before the layers: the order of
    the state_dict and of parameters() (optimizer states in checkpoints) is encoder, layers."""

    def __init__(self, observation_space: gym.Space, hidden: Sequence[int], activation: str, normalize_obs: bool,
                 precision: str):
        nn.Module.__init__(self)
        self.encoder = ObsEncoder(observation_space, normalize_obs, composite=False)
        self._build(self.encoder.dim, hidden, activation=activation, init="torch_default")
        self.precision = precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.precision):
            return mlp_forward(x, self.layers, self.activation, self.n_activated)


def _fp32_linear(h: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return F.linear(h.float(), layer.weight, layer.bias)  # (outside the torso's autocast: fp32)


class DeterministicActor(nn.Module):
    """mu(s) = tanh(MLP(s)) in the unit box (DDPG, TD3)."""

    def __init__(self, observation_space: gym.Space, action_dim: int, hidden: Sequence[int], activation: str = "relu",
                 normalize_obs: bool = False, precision: str = "fp32"):
        super().__init__()
        self.torso = _Torso(observation_space, hidden, activation, normalize_obs, precision)
        self.encoder = self.torso.encoder
        self.head = _linear(self.torso.out_dim, action_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded observations (B, d) -> unit actions (B, action_dim)."""
        return torch.tanh(_fp32_linear(self.torso(x), self.head))


class SquashedGaussianActor(nn.Module):
    """pi(.|s) = tanh(N(mean(s), diag std(s)^2)) with a state-dependent log-std clamped to
    [-20, 2] (SAC, Haarnoja et al. 2018, App. C)."""

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

    def __init__(self, observation_space: gym.Space, action_dim: int, hidden: Sequence[int], activation: str = "relu",
                 normalize_obs: bool = False, precision: str = "fp32"):
        super().__init__()
        self.torso = _Torso(observation_space, hidden, activation, normalize_obs, precision)
        self.encoder = self.torso.encoder
        self.head = _linear(self.torso.out_dim, 2 * action_dim)  # mean and log-std in one matmul
        self.action_dim = action_dim

    def distribution(self, x: torch.Tensor) -> TanhGaussian:
        out = _fp32_linear(self.torso(x), self.head)
        mean, log_std = out.split(self.action_dim, -1)
        return TanhGaussian(mean, log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX))

    def forward(self, x: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        dist = self.distribution(x)
        return dist.mode() if deterministic else dist.sample()


class StateDependentNoiseActor(nn.Module):
    """SAC's actor with generalized state-dependent exploration (gSDE; Raffin, Kober & Stulp 2021), as
    SB3's SAC runs it: a = tanh(u), u = mu(s) + z(s)^T Theta, z(s) the torso's output, mu clipped to
    [-clip_mean, clip_mean], Theta ~ N(0, sigma^2) a (features x actions) matrix, sigma = exp(log_std)
    or expln(log_std) (use_expln; a matrix with full_std, else one column). Given s, u is Gaussian with variance sum_i z_i^2
    sigma_ij^2; the features learn through it too (SB3's learn_features for SAC). Acting, each env
    has its Theta, drawn by `reset_noise`; a gradient step draws one Theta for its whole batch
    (`training_noise`), reparameterized, so that sigma learns through the sampled actions."""

    def __init__(self, observation_space: gym.Space, action_dim: int, hidden: Sequence[int], activation: str = "relu",
                 normalize_obs: bool = False, precision: str = "fp32", log_std_init: float = -3.0,
                 full_std: bool = True, use_expln: bool = False, clip_mean: float = 2.0):
        super().__init__()
        self.torso = _Torso(observation_space, hidden, activation, normalize_obs, precision)
        self.encoder = self.torso.encoder
        self.head = _linear(self.torso.out_dim, action_dim)
        self.log_std = nn.Parameter(torch.full((self.torso.out_dim, action_dim if full_std else 1),
                                               float(log_std_init)))
        self.action_dim, self.clip_mean, self.use_expln = action_dim, clip_mean, use_expln
        self.env_weights: torch.Tensor | None = None  # (n_envs, features, actions): Theta of each env

    def sigma(self) -> torch.Tensor:
        return gsde_sigma(self.log_std, self.use_expln, self.torso.out_dim, self.action_dim)

    def reset_noise(self, n: int) -> None:
        """A new Theta for each of n envs."""
        with torch.no_grad():
            sigma = self.sigma()
            self.env_weights = sigma * torch.randn((n, *sigma.shape), device=sigma.device, dtype=sigma.dtype)

    def training_noise(self) -> torch.Tensor:
        """One Theta = sigma * eps for a gradient step's batch (a gradient to log_std through it)."""
        sigma = self.sigma()
        return sigma * torch.randn_like(sigma)

    def distribution(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> NoisyTanhGaussian:
        """pi(.|s) whose sample is tanh(mu + z^T Theta): Theta `weights` (features, actions) for the
        whole batch, else each env's (drawn afresh where the batch is not one row per env)."""
        z = self.torso(x).float()
        mean = F.linear(z, self.head.weight, self.head.bias)
        if self.clip_mean > 0:
            mean = mean.clamp(-self.clip_mean, self.clip_mean)
        log_std = gsde_log_std(z, self.sigma())
        if weights is not None:
            noise = z @ weights
        else:
            if self.env_weights is None or len(self.env_weights) != len(z):
                self.reset_noise(len(z))
            noise = (z.unsqueeze(-2) @ self.env_weights).squeeze(-2)
        return NoisyTanhGaussian(mean, log_std, noise)

    def forward(self, x: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        dist = self.distribution(x)
        return dist.mode() if deterministic else dist.sample()


class CategoricalActor(nn.Module):
    """pi(.|s) = softmax(MLP(s)) over discrete actions (discrete SAC)."""

    def __init__(self, observation_space: gym.Space, n_actions: int, hidden: Sequence[int], activation: str = "relu",
                 normalize_obs: bool = False, precision: str = "fp32"):
        super().__init__()
        self.torso = _Torso(observation_space, hidden, activation, normalize_obs, precision)
        self.encoder = self.torso.encoder
        self.head = _linear(self.torso.out_dim, n_actions)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) for every action, (B, |A|)."""
        return torch.log_softmax(_fp32_linear(self.torso(x), self.head), -1)

    def forward(self, x: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        logp = self.log_probs(x)
        if deterministic:
            return logp.argmax(-1)
        return torch.multinomial(logp.exp(), 1).squeeze(-1)


def target_entropy_default(action_dim: int) -> float:
    """-dim(A), SAC's heuristic target entropy for continuous actions."""
    return -float(action_dim)


def discrete_target_entropy(n_actions: int, scale: float = 0.98) -> float:
    """scale * log|A|: a fraction of the uniform policy's entropy (Christodoulou 2019)."""
    return scale * math.log(n_actions)

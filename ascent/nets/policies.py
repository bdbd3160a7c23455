"""Stochastic actor-critic policy shared by the on-policy algorithms (PPO, A2C, TRPO, REINFORCE...).

The policy maps an observation to an action distribution and a state value:
  obs -> preprocess (one-hot / flatten, optional running normalization; images stay uint8;
         Dict / Tuple observations: their parts' x concatenated) -> x
  x   -> [images: the Nature CNN, shared by actor and critic] -> actor torso -> action head
         (categorical logits, or Gaussian mean + state-independent log-std)
      -> critic torso -> V(s)
Torsos are separate by default (`share_torso=False`), as in SB3's and CleanRL's MLP policies.

Generalized state-dependent exploration (gSDE; Raffin, Kober & Stulp 2021, "Smooth Exploration for
Robotic Reinforcement Learning"), `use_sde=True` on Box actions: the exploration noise is a linear
function of the actor's last features z(s), eps(s) = z(s)^T Theta, with Theta ~ N(0, sigma^2) a
(features x actions) matrix per env drawn at the start of each rollout and every `sde_sample_freq`
steps (eq. 4). Within those steps the noise is a deterministic function of the state, so the
action changes smoothly. Given s, a = mu(s) + z(s)^T Theta is Gaussian with variance
sum_i z_i(s)^2 sigma_ij^2 per action j, the distribution whose log-prob and entropy the losses use
(z detached: sigma alone learns the spread, as SB3's default). sigma = exp(log_std) (or expln, `use_expln`), a
matrix (`full_std`, SB3's default) or one column shared by the actions.
Two options for centralized critics (MAPPO): `actor_dim` (the actor sees only the first actor_dim
features of x, the critic all of them: local observation first, the global state after), and
`normalize_value` (the critic learns returns standardized by their running mean and std; `value`
and `act` give V in the returns' own scale, `forward` and `critic` the critic's standardized one).
Rollouts store the preprocessed x, so an update sees exactly what the behaviour policy saw even
while the normalizer's statistics move, and its gradient reaches the CNN.

Action masking (Huang & Ontañón 2022, "A Closer Look at Invalid Action Masking"): where the
observations are a Dict with an `action_mask` entry (1 on legal moves, as PettingZoo's classic games
and ascent's board games give them) and the actions Discrete, the logits of illegal actions are set
to the dtype's lowest number before the softmax. The mask is part of x (the encoder keeps it 0/1), so
acting, the rollout and the loss all see it without a field of their own: a masked action has
probability 0, no gradient, and no share of the entropy. A mask with no legal action masks nothing.
"""

from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ascent.nets.distributions import (LOG_SQRT_2PI, Categorical, DiagGaussian, MultiCategorical, TanhGaussian,
                                      gsde_log_std, gsde_sigma)
from ascent.errors import ConfigError, EnvError
from ascent.nets.encoders import MASK_KEY, ObsEncoder
from ascent.nets.layers import MLP, numpy_linear_stack, orthogonal_init
from ascent.nets.normalize import RunningMeanStd

ActionDist = Categorical | MultiCategorical | DiagGaussian | TanhGaussian


class ActorCritic(nn.Module):
    """pi(a|s) and V(s) over Discrete, MultiDiscrete and Box action spaces."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        net_arch: Sequence[int] = (64, 64),
        activation: str = "tanh",
        share_torso: bool = False,
        log_std_init: float = 0.0,
        ortho_init: bool = True,
        normalize_obs: bool = False,
        squash_actions: bool = False,
        actor_dim: int | None = None,
        normalize_value: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        full_std: bool = True,
        use_expln: bool = False,
    ):
        super().__init__()
        self.encoder = ObsEncoder(observation_space, normalize_obs)
        self.action_space = action_space
        if isinstance(action_space, gym.spaces.Discrete):
            self.action_kind, head_dim = "discrete", int(action_space.n)
        elif isinstance(action_space, gym.spaces.MultiDiscrete) and action_space.nvec.ndim == 1:
            self.action_kind, self.nvec = "multidiscrete", [int(n) for n in action_space.nvec]
            head_dim = sum(self.nvec)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.action_kind, head_dim = "box", int(action_space.shape[0])
            low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
            self.bounded = bool(np.all(np.isfinite(low)) and np.all(np.isfinite(high)))
            if squash_actions and not self.bounded:
                raise EnvError("squash_actions=True needs a bounded Box action space; this one has infinite bounds")
            self.squash = squash_actions
            self.low, self.high = low, high
        else:
            raise EnvError(
                f"action space {action_space} is not supported by this policy "
                "(Discrete, MultiDiscrete and 1-D Box are)"
            )
        # where x holds the legal-move mask (module docstring), or None
        self.mask_slice = self.encoder.part_slice(MASK_KEY)
        if self.mask_slice is not None and (self.action_kind != "discrete"
                                            or self.mask_slice.stop - self.mask_slice.start != head_dim):
            raise EnvError(f"the observations' {MASK_KEY!r} ({observation_space[MASK_KEY]}) must be one 0/1 entry per "
                           f"action of a Discrete action space; the actions are {action_space}")
        in_dim = self.encoder.dim
        if actor_dim is not None and (share_torso or self.encoder.cnn is not None or not 0 < actor_dim <= in_dim):
            raise ConfigError(f"actor_dim={actor_dim}: the actor's first features of x (1..{in_dim}) need flat "
                              "observations and separate torsos (share_torso=False)")
        self.actor_dim = actor_dim
        self.actor_torso = MLP(in_dim if actor_dim is None else actor_dim, net_arch, None, activation, init=ortho_init)
        self.critic_torso = self.actor_torso if share_torso else MLP(in_dim, net_arch, None, activation, init=ortho_init)
        # the returns' running statistics (MAPPO's ValueNorm): no clipping, the critic's scale is theirs
        self.value_norm = RunningMeanStd((), clip=float("inf")) if normalize_value else None
        self.shared = share_torso
        self.action_head = nn.Linear(self.actor_torso.out_dim, head_dim)
        self.value_head = nn.Linear(self.critic_torso.out_dim, 1)
        if ortho_init:  # small policy-head gain: near-uniform initial policy (PPO implementation detail)
            orthogonal_init(self.action_head, 0.01)
            orthogonal_init(self.value_head, 1.0)
        self.use_sde, self.sde_sample_freq, self.use_expln = use_sde, sde_sample_freq, use_expln
        if use_sde and (self.action_kind != "box" or self.squash):
            raise ConfigError("use_sde=True (gSDE) needs Box actions without squash_actions; these are "
                              f"{action_space}{' squashed' if self.action_kind == 'box' else ''}")
        if self.action_kind == "box":
            shape = (self.actor_torso.out_dim, head_dim if full_std else 1) if use_sde else (head_dim,)
            self.log_std = nn.Parameter(torch.full(shape, float(log_std_init)))
        self.sde_weights: torch.Tensor | None = None  # gSDE's Theta, one (features, actions) matrix per env

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters of pi (torso, head, log-std); with a shared torso they overlap the critic's."""
        self._check_separable()
        params = list(self.actor_torso.parameters()) + list(self.action_head.parameters())
        return params + ([self.log_std] if self.action_kind == "box" else [])

    def critic_parameters(self) -> list[nn.Parameter]:
        self._check_separable()
        return list(self.critic_torso.parameters()) + list(self.value_head.parameters())

    def _check_separable(self) -> None:
        # The image CNN feeds both pi and V: algorithms that step the actor and the critic apart
        # would train it with one loss only, or with stale gradients of the other.
        if self.encoder.cnn is not None:
            raise ConfigError("image observations train a CNN shared by the actor and the critic, which needs one "
                              "joint loss: use PPO or A2C (or DQN) on them")

    # ---- distribution and value -------------------------------------------------------------------
    def _actor_input(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.actor_dim is None else h[..., :self.actor_dim]

    def dist_params(self, x: torch.Tensor) -> torch.Tensor:
        """The action head's output: logits (masked, where x holds a mask), or the Gaussian mean (with
        gSDE, the mean and the state's log std side by side)."""
        return self.head_params(self.actor_torso(self._actor_input(self.encoder.features(x))), x)

    def head_params(self, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """dist_params from the actor torso's output."""
        params = self.mask_logits(F.linear(latent, self.action_head.weight, self.action_head.bias), x)
        return torch.cat([params, self.sde_log_std(latent)], -1) if self.use_sde else params

    def sde_std(self) -> torch.Tensor:
        """gSDE's sigma as a (features, actions) matrix: exp(log_std), or expln(log_std) (use_expln)."""
        return gsde_sigma(self.log_std, self.use_expln, self.actor_torso.out_dim, self.action_head.out_features)

    def sde_log_std(self, latent: torch.Tensor) -> torch.Tensor:
        """log of the action std given s (the features detached: sigma alone learns the spread)."""
        return gsde_log_std(latent.detach(), self.sde_std())

    def reset_sde_noise(self, n: int) -> None:
        """Draw gSDE's exploration matrices Theta ~ N(0, sigma^2) afresh, one for each of n envs."""
        with torch.no_grad():
            std = self.sde_std()
            self.sde_weights = std * torch.randn((n, *std.shape), device=std.device, dtype=std.dtype)

    def resamples_noise_at(self, t: int) -> bool:
        """Whether a rollout draws new gSDE matrices before its step t: at its start, then every
        sde_sample_freq steps (-1 or 0: once per rollout)."""
        return self.use_sde and (t == 0 or (self.sde_sample_freq > 0 and t % self.sde_sample_freq == 0))

    def mask_logits(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits with the illegal actions' set to the lowest finite number (not -inf: 0 * -inf would make
        the entropy NaN), where x holds a mask; rows without a legal action left as they are."""
        if self.mask_slice is None:
            return logits
        illegal = x[..., self.mask_slice] < 0.5
        illegal &= ~illegal.all(-1, keepdim=True)
        return logits.masked_fill(illegal, torch.finfo(logits.dtype).min)

    def make_dist(self, params: torch.Tensor, log_std: torch.Tensor | None = None) -> ActionDist:
        """The distribution for head outputs `params` (and a log-std, by default the current one)."""
        if self.action_kind == "discrete":
            return Categorical(params)
        if self.action_kind == "multidiscrete":
            return MultiCategorical(params, self.nvec)
        if self.use_sde:  # (the state's log std is in params: a given log_std has no part in it)
            mean, state_log_std = params.split(self.action_head.out_features, -1)
            return DiagGaussian(mean, state_log_std)
        log_std = self.log_std if log_std is None else log_std
        return TanhGaussian(params, log_std) if self.squash else DiagGaussian(params, log_std)

    def distribution(self, x: torch.Tensor) -> ActionDist:
        return self.make_dist(self.dist_params(x))

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """The value head's output: V(s), standardized where normalize_value (what its loss compares)."""
        h = self.encoder.features(x)
        return F.linear(self.critic_torso(h), self.value_head.weight, self.value_head.bias).squeeze(-1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """V(s) in the returns' scale."""
        return self.denormalize_value(self.critic(x))

    def denormalize_value(self, v: torch.Tensor) -> torch.Tensor:
        if self.value_norm is None:
            return v
        return v * (self.value_norm.var + self.value_norm.eps).sqrt().float() + self.value_norm.mean.float()

    def forward(self, x: torch.Tensor) -> tuple[ActionDist, torch.Tensor]:
        """pi(.|s) and the critic's output (`critic`) from preprocessed x; a shared torso (and the CNN)
        is evaluated once."""
        dist, value, _ = self.forward_with_latent(x)
        return dist, value

    def forward_with_latent(self, x: torch.Tensor) -> tuple[ActionDist, torch.Tensor, torch.Tensor]:
        """forward's pi(.|s) and critic output, and the actor torso's output z(s) (gSDE's features)."""
        h = self.encoder.features(x)
        if self.shared:
            latent = self.actor_torso(h)
            return self.make_dist(self.head_params(latent, x)), self.value_head(latent).squeeze(-1), latent
        latent = self.actor_torso(self._actor_input(h))
        value = F.linear(self.critic_torso(h), self.value_head.weight, self.value_head.bias).squeeze(-1)
        return self.make_dist(self.head_params(latent, x)), value, latent

    # ---- acting -----------------------------------------------------------------------------------
    def act(self, x: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Preprocessed x (B, *x_shape) -> action, log pi(action|s), V(s), for collecting experience.
        Call it under torch.no_grad() or torch.inference_mode() (it sits on the rollout's hot path).
        With gSDE the noise is z(s)^T Theta with the current matrices (drawn afresh where x's batch is
        not the one they were drawn for)."""
        dist, value, latent = self.forward_with_latent(x)
        value = self.denormalize_value(value)
        if deterministic or self.use_sde:
            if deterministic:
                action = dist.mode()
            else:
                if self.sde_weights is None or len(self.sde_weights) != len(latent):
                    self.reset_sde_noise(len(latent))
                action = dist.mean + (latent.unsqueeze(-2) @ self.sde_weights).squeeze(-2)
            return action, dist.log_prob(action), value
        action, logprob = dist.sample_with_log_prob()
        return action, logprob, value

    def numpy_actor(self, rng: np.random.Generator) -> Callable[[np.ndarray], tuple[np.ndarray, ...]] | None:
        """`act` for collecting experience as a numpy function: raw observations (N, *obs_shape) ->
        (action, log pi(action|s), V(s)), sampled with `rng`, on views of the parameters
        (ascent.nets.layers.numpy_linear_stack: a rollout step of 8 CartPole envs ~60 against ~200 us
        through torch). The same distributions as `act`: categorical by inverse CDF, Gaussian
        a = mean + std eps with log N(a) computed from eps. None where it does not cover the policy:
        a shared torso, the CNN, one-hot inputs, observation normalization, MultiDiscrete or
        tanh-squashed actions, gSDE, activations other than tanh and relu, a policy off the CPU."""
        if (self.shared or self.use_sde or not self.encoder.flattens_only
                or self.action_kind == "multidiscrete" or (self.action_kind == "box" and self.squash)):
            return None
        actor_net = numpy_linear_stack([*self.actor_torso.layers, self.action_head], self.actor_torso.activation_name)
        critic_net = numpy_linear_stack([*self.critic_torso.layers, self.value_head], self.critic_torso.activation_name)
        if actor_net is None or critic_net is None:
            return None
        actor = actor_net if self.actor_dim is None else (lambda obs: actor_net(obs[:, :self.actor_dim]))
        critic = critic_net
        if self.value_norm is not None:  # (views of the statistics' buffers: updated in place, read per call)
            v_mean, v_var, v_eps = self.value_norm.mean.numpy(), self.value_norm.var.numpy(), self.value_norm.eps

            def critic(obs: np.ndarray) -> np.ndarray:
                return (critic_net(obs) * np.sqrt(v_var + v_eps) + v_mean).astype(np.float32)

        if self.action_kind == "discrete":
            def act(obs: np.ndarray) -> tuple[np.ndarray, ...]:
                logits = actor(obs)
                logits -= logits.max(1, keepdims=True)
                log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))  # log softmax
                cdf = np.exp(log_p).cumsum(1)
                u = rng.random((len(cdf), 1), dtype=np.float32)
                action = np.minimum((cdf < u).sum(1), cdf.shape[1] - 1)
                return action, log_p[np.arange(len(action)), action], critic(obs)[:, 0]
            return act

        log_std = self.log_std.detach().numpy()

        def act(obs: np.ndarray) -> tuple[np.ndarray, ...]:
            mean = actor(obs)
            eps = rng.standard_normal(mean.shape, dtype=np.float32)
            log_prob = (-0.5 * eps * eps - log_std).sum(1) - LOG_SQRT_2PI * mean.shape[1]
            return mean + np.exp(log_std) * eps, log_prob, critic(obs)[:, 0]
        return act

    def numpy_logits(self) -> Callable[[np.ndarray | dict], np.ndarray] | None:
        """Raw batched observations -> the action head's logits (masked, as `dist_params`), in numpy on
        views of the parameters (numpy_actor's speed, for acting without the rest: an opponent in a
        self-play game). None where x needs more than flattening (one-hot inputs, normalization), for a
        shared torso, and where numpy_linear_stack cannot compute the actor."""
        enc = self.encoder
        parts = enc.parts if enc.parts is not None else [enc]
        if self.shared or enc.kind == "tuple" or not all(p.flattens_only for p in parts):
            return None
        actor = numpy_linear_stack([*self.actor_torso.layers, self.action_head], self.actor_torso.activation_name)
        if actor is None:
            return None
        mask, keys, width = self.mask_slice, enc.keys if enc.parts is not None else None, self.actor_dim

        def logits(obs: np.ndarray | dict) -> np.ndarray:
            x = (np.asarray(obs, np.float32).reshape(len(obs), -1) if keys is None else
                 np.concatenate([np.asarray(obs[k], np.float32).reshape(len(obs[k]), -1) for k in keys], 1))
            out = actor(x if width is None else x[:, :width])
            if mask is not None:
                illegal = x[:, mask] < 0.5
                illegal &= ~illegal.all(1, keepdims=True)
                out[illegal] = np.finfo(np.float32).min
            return out
        return logits

    @classmethod
    def from_config(cls, observation_space: gym.Space, action_space: gym.Space, c, *, share_torso: bool = False,
                    log_std_init: float = 0.0, squash_actions: bool = False, actor_dim: int | None = None,
                    normalize_value: bool = False) -> "ActorCritic":
        """Built from a network config's fields (net_arch, activation, ortho_init, normalize_obs; gSDE's
        use_sde, sde_sample_freq and full_std where the config has them) and the policy's own options."""
        return cls(observation_space, action_space, net_arch=c.net_arch, activation=c.activation,
                   share_torso=share_torso, log_std_init=log_std_init, ortho_init=c.ortho_init,
                   normalize_obs=c.normalize_obs, squash_actions=squash_actions, actor_dim=actor_dim,
                   normalize_value=normalize_value, use_sde=getattr(c, "use_sde", False),
                   sde_sample_freq=getattr(c, "sde_sample_freq", -1), full_std=getattr(c, "full_std", True),
                   use_expln=getattr(c, "use_expln", False))

    @torch.no_grad()
    def env_action(self, obs: np.ndarray | dict | tuple, deterministic: bool) -> np.ndarray:
        """Batched raw observations (an array, or for Dict / Tuple spaces a dict / tuple of arrays) ->
        the actions the env receives (acting and evaluation)."""
        action, _, _ = self.act(self.encoder.preprocess(obs), deterministic)
        return self.to_env_action(action)

    def to_env_action(self, action: torch.Tensor | np.ndarray) -> np.ndarray:
        """The action the env receives: Gaussian samples clipped to the bounds (the stored action
        stays unclipped so its log-prob is exact), tanh-squashed ones rescaled from (-1, 1)."""
        a = action if isinstance(action, np.ndarray) else action.cpu().numpy()
        if self.action_kind != "box":
            return a
        if self.squash:
            return self.low + (a + 1.0) * 0.5 * (self.high - self.low)
        return np.clip(a, self.low, self.high) if self.bounded else a

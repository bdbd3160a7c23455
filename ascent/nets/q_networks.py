"""Action-value networks of the DQN family, each extension a switch that composes with the others:

  noisy nets      factorized Gaussian NoisyLinear layers (Fortunato et al. 2018, arXiv:1706.10295, eq. 10-11)
  dueling heads   Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')   (Wang et al. 2016, arXiv:1511.06581, eq. 9)
  distributional  a categorical return distribution on n_atoms fixed atoms per action: the network gives
                  logits (B, |A|, n_atoms), Q is the mean (Bellemare et al. 2017, arXiv:1707.06887)

The torso is the Nature-DQN CNN for image observations and an MLP otherwise; with `noisy` the MLP's
hidden layers and the heads are noisy (the convolutions never are, as in Rainbow).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ascent.nets.layers import check_activation, check_init, mlp_forward, mlp_layers, numpy_linear_stack
from ascent.nets.precision import autocast
from ascent.nets.encoders import ObsEncoder


class NoisyLinear(nn.Module):
    """y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b with factorized noise
    eps_w = f(eps_out) f(eps_in)^T, eps_b = f(eps_out), f(x) = sign(x) sqrt(|x|).

    The noise is held fixed until `reset_noise()`; with `noise_off()` the layer uses its means only
    (greedy evaluation)."""

    def __init__(self, in_dim: int, out_dim: int, sigma0: float = 0.5):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight_mu = nn.Parameter(torch.empty(out_dim, in_dim).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_dim, in_dim), sigma0 / math.sqrt(in_dim)))
        self.bias_mu = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_dim,), sigma0 / math.sqrt(in_dim)))
        self.register_buffer("eps_in", torch.zeros(in_dim))
        self.register_buffer("eps_out", torch.zeros(out_dim))
        self.noisy = True
        self.reset_noise()

    @staticmethod
    def _f(x: torch.Tensor) -> torch.Tensor:
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        self.eps_in.copy_(self._f(torch.randn_like(self.eps_in)))
        self.eps_out.copy_(self._f(torch.randn_like(self.eps_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.noisy:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


def layer_is_noisy(layer: nn.Module) -> bool:
    return type(layer) is NoisyLinear


def dueling(value: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """V + A - mean_a A: V (B, 1, k), A (B, |A|, k) -> (B, |A|, k). Subtracting the mean makes V and A
    identifiable (Wang et al. eq. 9); k = n_atoms combines logits per atom (Rainbow)."""
    return value + advantage - advantage.mean(1, keepdim=True)


class QNetwork(nn.Module):
    """obs -> Q(s, .) (B, |A|), or with n_atoms > 1 the logits of each action's return distribution
    (B, |A|, n_atoms)."""

    def __init__(self, observation_space: gym.Space, n_actions: int, net_arch: Sequence[int] = (64, 64),
                 activation: str = "relu", dueling: bool = False, noisy: bool = False, n_atoms: int = 1,
                 sigma0: float = 0.5, normalize_obs: bool = False, precision: str = "fp32"):
        super().__init__()
        self.n_actions, self.n_atoms, self.dueling = n_actions, n_atoms, dueling
        self.precision = precision
        self.encoder = ObsEncoder(observation_space, normalize_obs, composite=False)  # the Nature CNN for images
        features = self.encoder.dim

        linear = functools.partial(NoisyLinear, sigma0=sigma0) if noisy else nn.Linear
        self.activation = check_activation(activation)
        self.hidden = mlp_layers(features, net_arch, init="torch_default", layer=linear)  # (the MLP's builder)
        self.n_hidden = len(net_arch)
        width = ([features, *net_arch])[-1]
        self.advantage_head = linear(width, n_actions * n_atoms)
        self.value_head = linear(width, n_atoms) if dueling else None
        self.noisy_layers = [m for m in self.modules() if isinstance(m, NoisyLinear)]
        self.activation_name = activation

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q(s, .) or the C51 logits, in fp32 (the passes run at `precision`)."""
        with autocast(self.precision):
            h = mlp_forward(self.encoder(obs), self.hidden, self.activation, self.n_hidden)
            head = self.advantage_head
            out = head(h) if layer_is_noisy(head) else F.linear(h, head.weight, head.bias)
            out = out.view(-1, self.n_actions, self.n_atoms)  # (B, |A|, k)
            if self.value_head is not None:
                out = dueling(self.value_head(h).view(-1, 1, self.n_atoms), out)
        out = out.float()  # (no copy when it already is)
        return out.squeeze(2) if self.n_atoms == 1 else out

    def numpy_greedy(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """argmax_a Q(s, a) for a batch of observations as a numpy function reading this network's
        weights in place (ascent.nets.layers.numpy_linear_stack: acting without torch's per-operation
        overhead, most of DQN's time per env step outside the gradient steps). With dueling heads
        argmax Q = argmax A (V and mean A shift every action alike). None where the network has a
        part this does not cover: the CNN, one-hot inputs, observation normalization, noisy layers,
        C51, activations other than relu and tanh."""
        if not self.encoder.flattens_only or self.noisy_layers or self.n_atoms != 1:
            return None
        q = numpy_linear_stack([*self.hidden, self.advantage_head], self.activation_name)
        return None if q is None else (lambda obs: q(obs).argmax(1))

    def reset_noise(self) -> None:
        for layer in self.noisy_layers:
            layer.reset_noise()

    def set_noise(self, on: bool) -> None:
        for layer in self.noisy_layers:  # (none without noisy=True)
            layer.noisy = on


class QEnsemble(nn.Module):
    """K independent MLP critics Q_k(s, a) evaluated in one batched pass: layer weights are stacked
    (K, in, out) and applied with torch.baddbmm, so TD3/SAC's twin critics cost one call per layer.

    `init` and `activation` are the MLP's choices (ascent.nets.layers.INITS, ACTIVATIONS):
    "torch_default" (the default) draws like torch.nn.Linear (uniform +-1/sqrt(fan_in)), as SB3's
    critics are; "orthogonal" gives each critic's hidden layers orthogonal weights of gain
    `hidden_gain`, its output layer `out_gain`, and zero biases. The output layer always runs in
    fp32 so that Q values, and the targets built from them, keep full precision under bf16 autocast.
    """

    def __init__(self, n_critics: int, in_dim: int, hidden: Sequence[int], activation: str = "relu", out_dim: int = 1,
                 precision: str = "fp32", init: str = "torch_default", hidden_gain: float = math.sqrt(2),
                 out_gain: float = 1.0):
        super().__init__()
        self.precision = precision
        init = check_init(init)
        widths = [in_dim, *hidden, out_dim]
        self.n_critics = n_critics
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            bound = 1.0 / math.sqrt(a)
            weight = torch.empty(n_critics, a, b).uniform_(-bound, bound)
            bias = torch.empty(n_critics, 1, b).uniform_(-bound, bound)
            if init == "orthogonal":  # (each critic's (in, out) matrix: orthogonal_ treats it as nn.Linear's transpose)
                for k in range(n_critics):
                    nn.init.orthogonal_(weight[k], hidden_gain if i < len(hidden) else out_gain)
                bias.zero_()
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))
        self.activation = check_activation(activation)
        self.out_dim = out_dim

    def forward(self, obs: torch.Tensor, action: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
        """(B, d_obs), (B, d_act) -> Q values (K, B); with `n`, only the first n critics (n, B).
        Without an action (discrete actions, out_dim = |A|): Q(s, .) for every action, (K, B, |A|)."""
        k = self.n_critics if n is None else n
        h = (obs if action is None else torch.cat([obs, action], -1)).expand(k, -1, -1)  # (K, B, d)
        last = len(self.weights) - 1
        with autocast(self.precision):
            for i in range(last):
                w, b = (self.weights[i], self.biases[i]) if n is None else (self.weights[i][:n], self.biases[i][:n])
                h = self.activation(torch.baddbmm(b, h, w))  # (K, B, hidden)
        w, b = (self.weights[last], self.biases[last]) if n is None else (self.weights[last][:n], self.biases[last][:n])
        q = torch.baddbmm(b, h.float(), w)  # (outside the autocast: fp32)
        return q.squeeze(-1) if self.out_dim == 1 else q

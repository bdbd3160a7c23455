"""Network building blocks shared by every algorithm: MLPs with orthogonal initialization, and the
Nature-DQN CNN for image observations.

Small MLPs on a CPU are bound by per-operation overhead, not arithmetic, so `MLP` evaluates its
layers with functional calls (no per-layer module dispatch) and, on AVX-512 CPUs, tanh through the
logistic function, whose kernel there is several times faster than torch.tanh's (see
benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _Tanh(torch.autograd.Function):
    """tanh(x) = 2 sigmoid(2x) - 1 (absolute error < 2e-7), one autograd node; d tanh = 1 - tanh^2."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad - grad * y * y


# Where tanh goes through the logistic function: from this many elements, on AVX-512 CPUs (measured
# crossover ~192x64). On AVX2-only CPUs torch.tanh was as fast or faster at every size measured
# (a 4-64-64-1 forward-backward at batch 128-2048: the logistic route 0.95-1.44x torch.tanh's time).
SIGMOID_TANH_MIN_SIZE = 12288 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else None


def fast_tanh(x: torch.Tensor) -> torch.Tensor:
    if SIGMOID_TANH_MIN_SIZE is None or x.numel() < SIGMOID_TANH_MIN_SIZE:
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Tanh.apply(x)
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": fast_tanh, "relu": F.relu, "elu": F.elu, "gelu": F.gelu, "silu": F.silu,
}


def numpy_linear_stack(layers: Sequence[nn.Linear], activation: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """x (B, ...) -> the layers applied in turn, `activation` after every one but the last, computed
    in numpy on views of the layers' parameters: they share memory with the tensors, so in-place
    optimizer steps and loads show through, and the views are taken anew when the parameters are
    rebound (FlatParameters), so the order of building does not matter. This is for acting on a handful of observations, where torch's
    per-operation overhead outweighs the arithmetic (a 4-256-256-2 MLP on one observation: ~40 us
    against ~170 us in the training loop). None for activations other than tanh and relu."""
    if activation not in ("tanh", "relu"):
        return None
    relu = activation == "relu"
    first = layers[0].weight
    views: list = []  # [(weight.T, bias)] as numpy views, with the address they were taken at

    def forward(x: np.ndarray) -> np.ndarray:
        if not views or views[0] != first.data_ptr():  # the parameters were rebound (FlatParameters): new views
            views[:] = [first.data_ptr(), [(l.weight.detach().numpy().T, l.bias.detach().numpy()) for l in layers]]
        h = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        params = views[1]
        for i, (weight, bias) in enumerate(params):
            h = h @ weight  # a new array: the caller's x is never written
            h += bias
            if i < len(params) - 1:
                np.maximum(h, 0.0, out=h) if relu else np.tanh(h, out=h)
        return h

    return forward


def orthogonal_init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights scaled by `gain`, zero bias (Saxe et al. 2014; PPO implementation detail)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """in_dim -> hidden... -> out_dim, activation after every hidden layer, none after the output.

    out_dim=None ends at the last hidden layer (a torso). With `ortho_init`, hidden layers get gain
    sqrt(2) and the output layer `out_gain` (0.01 for a policy head, 1 for a value head).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int | None = None, activation: str = "tanh",
                 out_gain: float = 1.0, ortho_init: bool = True):
        super().__init__()
        widths = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.n_activated = len(hidden)  # layers followed by the activation
        self.activation, self.activation_name = ACTIVATIONS[activation], activation
        self.out_dim = widths[-1]
        if ortho_init:
            for i, layer in enumerate(self.layers):
                orthogonal_init(layer, math.sqrt(2) if i < self.n_activated else out_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.linear(x, layer.weight, layer.bias)
            if i < self.n_activated:
                x = self.activation(x)
        return x


NATURE_CNN_MIN_SIZE = 36  # the smallest height and width the three convolutions accept


def is_image_space(space: gym.Space) -> bool:
    """Channel-first uint8 images the Nature CNN can read, e.g. Atari's stacked frames (4, 84, 84):
    a Box (C, H, W) with fewer channels than rows and columns (channel-last images must be
    transposed first) and H, W >= 36."""
    if not (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3):
        return False
    channels, height, width = space.shape
    return channels < min(height, width) and min(height, width) >= NATURE_CNN_MIN_SIZE


class NatureCNN(nn.Module):
    """The Nature-DQN torso (Mnih et al. 2015): conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1, ReLU,
    then a 512-unit ReLU layer. Takes uint8 or float (B, C, H, W) pixels and scales them to [0, 1]."""

    def __init__(self, in_channels: int, height: int = 84, width: int = 84, features: int = 512):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, in_channels, height, width)).shape[1]  # 3136 at 84x84
        self.linear = nn.Linear(flat, features)
        self.dim = features
        # channels-last (NHWC) convolutions: 15-20% faster forward and backward on CPU (oneDNN)
        self.convs.to(memory_format=torch.channels_last)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        pixels = obs.contiguous(memory_format=torch.channels_last).float() * (1.0 / 255.0)  # reorder the uint8 bytes
        return F.relu(self.linear(self.convs(pixels)))

"""Network building blocks shared by every algorithm: the one MLP builder (`mlp_layers`, `mlp_forward`,
`MLP`: orthogonal or torch-default initialization, any of ACTIVATIONS, nn.Linear or NoisyLinear-like
layers) behind ActorCritic's torsos, the off-policy actors' torsos and the Q-networks' hidden layers,
and the Nature-DQN CNN for image observations.

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
    against ~170 us in the training loop). None for activations other than tanh and relu, and for
    layers that are not on the CPU (a GPU's parameters have no numpy view)."""
    if activation not in ("tanh", "relu") or any(l.weight.device.type != "cpu" for l in layers):
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


# The initialization schemes of every network's linear layers (MLP, QNetwork, QEnsemble):
#   "orthogonal"     orthogonal weights scaled by a gain (sqrt(2) for hidden layers by default, the output
#                    layer's own), zero biases: the on-policy networks' (SB3's and CleanRL's PPO)
#   "torch_default"  what the layer's constructor draws: nn.Linear's U(+-1/sqrt(fan_in)), NoisyLinear's
#                    own; the off-policy networks' (SB3's DQN, SAC and TD3 networks)
INITS = ("orthogonal", "torch_default")


def check_init(init: str | bool) -> str:
    """The scheme named by `init`, one of INITS; a bool is the configs' `ortho_init` switch."""
    if isinstance(init, bool):
        return "orthogonal" if init else "torch_default"
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    return init


def check_activation(activation: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def mlp_layers(in_dim: int, hidden: Sequence[int], out_dim: int | None = None, *, init: str | bool = "orthogonal",
               hidden_gain: float = math.sqrt(2), out_gain: float = 1.0,
               layer: Callable[[int, int], nn.Module] = nn.Linear) -> nn.ModuleList:
    """The layers of an MLP in_dim -> hidden... [-> out_dim]: `layer(a, b)` for each pair of widths
    (nn.Linear, or a factory such as a NoisyLinear one), all constructed first and then, with
    init="orthogonal", given orthogonal weights: gain `hidden_gain` for the hidden layers, `out_gain`
    for the output layer (out_dim=None: none, the last hidden layer ends it, a torso). (Constructing
    all before initializing any fixes the random stream each layer draws from, and so the parameters
    a seed gives.)"""
    init = check_init(init)
    widths = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
    layers = nn.ModuleList(layer(a, b) for a, b in zip(widths[:-1], widths[1:]))
    if init == "orthogonal":
        for i, lin in enumerate(layers):
            if not isinstance(lin, nn.Linear):
                raise ValueError(f"init='orthogonal' initializes nn.Linear layers, not {type(lin).__name__}; "
                                 "use init='torch_default' (the layer's own initialization)")
            orthogonal_init(lin, hidden_gain if i < len(hidden) else out_gain)
    return layers


def mlp_forward(x: torch.Tensor, layers: Sequence[nn.Module], activation: Callable[[torch.Tensor], torch.Tensor],
                n_activated: int) -> torch.Tensor:
    """The layers applied in turn, `activation` after the first `n_activated`: nn.Linear layers as
    functional F.linear calls (no module dispatch per layer), other layer types (NoisyLinear) called."""
    for i, layer in enumerate(layers):
        x = F.linear(x, layer.weight, layer.bias) if type(layer) is nn.Linear else layer(x)
        if i < n_activated:
            x = activation(x)
    return x


class MLP(nn.Module):
    """in_dim -> hidden... -> out_dim, activation after every hidden layer, none after the output:
    the one MLP of the package's networks (ActorCritic's torsos, the off-policy actors' torsos, the
    Q-networks' hidden layers are built by `mlp_layers` and run by `mlp_forward`).

    out_dim=None ends at the last hidden layer (a torso). `init` (INITS; True/False: the configs'
    ortho_init): "orthogonal" gives the hidden layers gain `hidden_gain` (sqrt 2) and the output layer
    `out_gain` (0.01 for a policy head, 1 for a value head); "torch_default" keeps the layers' own.
    `layer`: nn.Linear or a factory (in, out) -> module, e.g. NoisyLinear's. `.layers` holds them
    (ascent.nets.layers.numpy_linear_stack reads it).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int | None = None, activation: str = "tanh",
                 out_gain: float = 1.0, init: str | bool = "orthogonal", *, hidden_gain: float = math.sqrt(2),
                 layer: Callable[[int, int], nn.Module] = nn.Linear):
        super().__init__()
        self._build(in_dim, hidden, out_dim, activation, out_gain, init, hidden_gain, layer)

    def _build(self, in_dim: int, hidden: Sequence[int], out_dim: int | None = None, activation: str = "tanh",
               out_gain: float = 1.0, init: str | bool = "orthogonal", hidden_gain: float = math.sqrt(2),
               layer: Callable[[int, int], nn.Module] = nn.Linear) -> None:
        """(__init__'s work, apart so that a subclass can register modules before the layers.)"""
        self.activation, self.activation_name = check_activation(activation), activation
        self.layers = mlp_layers(in_dim, hidden, out_dim, init=init, hidden_gain=hidden_gain, out_gain=out_gain,
                                 layer=layer)
        self.n_activated = len(hidden)  # layers followed by the activation
        self.out_dim = ([in_dim, *hidden] if out_dim is None else [out_dim])[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(x, self.layers, self.activation, self.n_activated)


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

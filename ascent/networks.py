"""Network building blocks shared by every algorithm: MLPs with orthogonal initialization.

Small MLPs on a CPU are bound by per-operation overhead, not arithmetic, so `MLP` evaluates its
layers with functional calls (no per-layer module dispatch) and tanh through the logistic function,
whose CPU kernel is several times faster than torch.tanh's (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

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


def fast_tanh(x: torch.Tensor) -> torch.Tensor:
    if x.numel() < 12288:  # below ~192x64 the single native op is cheaper (measured crossover)
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Tanh.apply(x)
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": fast_tanh, "relu": F.relu, "elu": F.elu, "gelu": F.gelu, "silu": F.silu,
}


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
        self.activation = ACTIVATIONS[activation]
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

"""Network building blocks shared by every algorithm: MLP torsos with orthogonal initialization."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def orthogonal_init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights scaled by `gain`, zero bias (Saxe et al. 2014; PPO implementation detail)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int | None,
    activation: str = "tanh",
    out_gain: float = 1.0,
    ortho_init: bool = True,
) -> nn.Sequential:
    """in_dim -> hidden... -> out_dim (no activation on the output); out_dim=None ends at the last hidden layer.

    With `ortho_init`, hidden layers get gain sqrt(2) and the output `out_gain` (0.01 for a policy head,
    1 for a value head, as in the PPO reference implementation).
    """
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    for width in hidden:
        linear = nn.Linear(in_dim, width)
        layers += [orthogonal_init(linear, math.sqrt(2)) if ortho_init else linear, act()]
        in_dim = width
    if out_dim is not None:
        linear = nn.Linear(in_dim, out_dim)
        layers.append(orthogonal_init(linear, out_gain) if ortho_init else linear)
    return nn.Sequential(*layers)


def flat_params(module: nn.Module) -> torch.Tensor:
    """All parameters of `module` as one flat vector (natural gradient, TRPO line search)."""
    return torch.cat([p.data.reshape(-1) for p in module.parameters()])

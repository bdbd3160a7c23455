"""AlphaZero's policy-value network f_theta(s) = (p, v): an MLP for small boards (tic-tac-toe), a
small residual CNN for board planes (Connect Four), as in Silver et al. 2017/2018 scaled down: a 3x3
convolution, residual blocks of two 3x3 convolutions with batch norm, then a policy head (1x1
convolution, linear to the moves' logits) and a value head (1x1 convolution, linear, tanh)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


class PolicyValueNet(nn.Module):
    """(B, *input_shape) -> (logits (B, n_actions), value (B,) in [-1, 1] for the player to move).
    `kind`: "mlp" (hidden widths `mlp_arch`) or "resnet" (`channels`, `blocks`; 3-D inputs only)."""

    def __init__(self, input_shape: tuple[int, ...], n_actions: int, kind: str = "mlp", mlp_arch: tuple = (128, 128),
                 channels: int = 64, blocks: int = 5):
        super().__init__()
        self.kind = kind
        if kind == "resnet":
            if len(input_shape) != 3:
                raise ValueError(f"network=resnet needs board planes (C, H, W); this game's input is {input_shape}")
            c, h, w = input_shape
            self.stem = nn.Sequential(nn.Conv2d(c, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
            self.tower = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
            self.policy_conv = nn.Sequential(nn.Conv2d(channels, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU())
            self.policy_fc = nn.Linear(2 * h * w, n_actions)
            self.value_conv = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=False), nn.BatchNorm2d(1), nn.ReLU())
            self.value_fc = nn.Sequential(nn.Linear(h * w, 64), nn.ReLU(), nn.Linear(64, 1))
        else:
            layers, width = [], int(math.prod(input_shape))
            for hidden in mlp_arch:
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            self.torso = nn.Sequential(nn.Flatten(), *layers)
            self.policy_fc = nn.Linear(width, n_actions)
            self.value_fc = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "resnet":
            h = self.tower(self.stem(x))
            logits = self.policy_fc(self.policy_conv(h).flatten(1))
            value = self.value_fc(self.value_conv(h).flatten(1))
        else:
            h = self.torso(x)
            logits, value = self.policy_fc(h), self.value_fc(h)
        return logits, torch.tanh(value.squeeze(-1))

    def weights(self) -> list[torch.nn.Parameter]:
        """The parameters the L2 term c ||theta||^2 reaches (weights of convolutions and linear layers;
        not biases nor batch-norm scales, as is usual)."""
        return [p for name, p in self.named_parameters() if p.dim() > 1]

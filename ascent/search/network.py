"""AlphaZero's policy-value network f_theta(s) = (p, v): an MLP for small boards (tic-tac-toe), a
small residual CNN for board planes (Connect Four), as in Silver et al. 2017/2018 scaled down: a 3x3
convolution, residual blocks of two 3x3 convolutions with batch norm, then a policy head (1x1
convolution, linear to the moves' logits) and a value head (1x1 convolution, linear, tanh)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ascent.nets.layers import ACTIVATIONS


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, act):
        super().__init__()
        self.act = act
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn1(self.conv1(x)))
        return self.act(x + self.bn2(self.conv2(h)))


class PolicyValueNet(nn.Module):
    """(B, *input_shape) -> (logits (B, n_actions), value (B,) in [-1, 1] for the player to move).
    `kind`: "mlp" (hidden widths `net_arch`) or "resnet" (`channels`, `blocks`; 3-D inputs only);
    `activation` one of ascent.nets.layers.ACTIVATIONS; `ortho_init`: orthogonal weights (gain sqrt 2,
    heads 0.01 / 1) instead of torch's defaults."""

    def __init__(self, input_shape: tuple[int, ...], n_actions: int, kind: str = "mlp", net_arch: tuple = (128, 128),
                 channels: int = 64, blocks: int = 5, activation: str = "relu", ortho_init: bool = False):
        super().__init__()
        self.kind, self.act = kind, ACTIVATIONS[activation]
        if kind == "resnet":
            if len(input_shape) != 3:
                raise ValueError(f"network=resnet needs board planes (C, H, W); this game's input is {input_shape}")
            c, h, w = input_shape
            self.stem = nn.Conv2d(c, channels, 3, padding=1, bias=False)
            self.stem_bn = nn.BatchNorm2d(channels)
            self.tower = nn.ModuleList(ResidualBlock(channels, self.act) for _ in range(blocks))
            self.policy_conv, self.policy_bn = nn.Conv2d(channels, 2, 1, bias=False), nn.BatchNorm2d(2)
            self.policy_fc = nn.Linear(2 * h * w, n_actions)
            self.value_conv, self.value_bn = nn.Conv2d(channels, 1, 1, bias=False), nn.BatchNorm2d(1)
            self.value_hidden, self.value_fc = nn.Linear(h * w, 64), nn.Linear(64, 1)
        else:
            widths = [int(math.prod(input_shape)), *net_arch]
            self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
            self.policy_fc = nn.Linear(widths[-1], n_actions)
            self.value_fc = nn.Linear(widths[-1], 1)
        if ortho_init:
            for name, m in self.named_modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    gain = 0.01 if name == "policy_fc" else 1.0 if name == "value_fc" else math.sqrt(2)
                    nn.init.orthogonal_(m.weight, gain)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        act = self.act
        if self.kind == "resnet":
            h = act(self.stem_bn(self.stem(x)))
            for block in self.tower:
                h = block(h)
            logits = self.policy_fc(act(self.policy_bn(self.policy_conv(h))).flatten(1))
            value = self.value_fc(act(self.value_hidden(act(self.value_bn(self.value_conv(h))).flatten(1))))
        else:
            h = x.flatten(1)
            for layer in self.hidden:
                h = act(layer(h))
            logits, value = self.policy_fc(h), self.value_fc(h)
        return logits, torch.tanh(value.squeeze(-1))

    def weights(self) -> list[torch.nn.Parameter]:
        """The parameters the L2 term c ||theta||^2 reaches (weights of convolutions and linear layers;
        not biases nor batch-norm scales, as is usual)."""
        return [p for name, p in self.named_parameters() if p.dim() > 1]

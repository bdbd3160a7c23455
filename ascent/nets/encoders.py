"""Observation encoders: raw observations of any supported space -> flat float features."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ascent.errors import EnvError
from ascent.nets.layers import NatureCNN, is_image_space
from ascent.nets.normalize import RunningMeanStd


class ObsEncoder(nn.Module):
    """Raw observations -> flat float features, in two stages:

      preprocess  (nothing learned) one-hot for Discrete/MultiDiscrete, flatten for Box, then
                  optional running normalization (Box only); images pass through as uint8
      features    (learned) the Nature CNN for images (`is_image_space`), nothing otherwise

    Calling the encoder does both; `.dim` is the width of the features (512 for images).
    `x_shape` and `x_dtype` describe the preprocessed x that on-policy rollouts store."""

    def __init__(self, space: gym.Space, normalize: bool = False):
        super().__init__()
        self.space = space
        self.cnn = None
        if isinstance(space, gym.spaces.Discrete):
            self.kind, self.dim, self.nvec = "discrete", int(space.n), [int(space.n)]
        elif isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
            self.kind, self.nvec = "multidiscrete", [int(n) for n in space.nvec]
            self.dim = sum(self.nvec)
        elif is_image_space(space):  # pixels: the Nature-DQN CNN, no running normalization
            self.kind, self.cnn = "image", NatureCNN(*space.shape)
            self.dim = self.cnn.dim
        elif isinstance(space, gym.spaces.MultiBinary):
            self.kind, self.dim = "box", int(np.prod(space.shape))
        elif isinstance(space, gym.spaces.Box):
            self.kind, self.dim = "box", int(np.prod(space.shape))
        else:
            raise EnvError(
                f"observation space {space} is not supported (Box, Discrete, MultiDiscrete, MultiBinary are); "
                "for Dict/Tuple observations wrap the env in gymnasium.wrappers.FlattenObservation"
            )
        self.x_shape, self.x_dtype = (tuple(space.shape), torch.uint8) if self.cnn else ((self.dim,), torch.float32)
        self.normalizer = RunningMeanStd((self.dim,)) if normalize and self.kind == "box" else None
        # preprocess only flattens and casts to float: numpy acting can read raw observations
        self.flattens_only = self.kind == "box" and self.normalizer is None

    def forward(self, obs: torch.Tensor, update_stats: bool = False) -> torch.Tensor:
        return self.features(self.preprocess(obs, update_stats))

    def preprocess(self, obs: torch.Tensor, update_stats: bool = False) -> torch.Tensor:
        """(B, *obs_shape) -> x (B, *x_shape)."""
        if self.kind == "discrete":
            return F.one_hot(obs.long().reshape(-1), self.dim).float()
        if self.kind == "multidiscrete":
            obs = obs.long().reshape(-1, len(self.nvec))
            return torch.cat([F.one_hot(obs[:, i], n) for i, n in enumerate(self.nvec)], -1).float()
        if self.kind == "image":
            return obs
        x = obs.reshape(obs.shape[0], -1).float()
        if self.normalizer is not None:
            if update_stats:
                self.normalizer.update(x)
            x = self.normalizer(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, *x_shape) -> (B, dim)."""
        return x if self.cnn is None else self.cnn(x)

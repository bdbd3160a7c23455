"""Observation encoders: raw observations of any supported space -> flat float features."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector.utils import concatenate, create_empty_array
from torch import nn

from ascent.errors import EnvError
from ascent.nets.layers import NatureCNN, is_image_space
from ascent.nets.normalize import RunningMeanStd

COMPOSITE_SPACES = (gym.spaces.Dict, gym.spaces.Tuple)
MASK_KEY = "action_mask"  # a Dict observation's legal-move mask (PettingZoo's classic games; ActorCritic applies it)


def _contains_image(space: gym.Space) -> bool:
    if isinstance(space, COMPOSITE_SPACES):
        return any(_contains_image(s) for s in _subspaces(space))
    return is_image_space(space)


def _subspaces(space: gym.spaces.Dict | gym.spaces.Tuple) -> list[gym.Space]:
    return list(space.spaces.values()) if isinstance(space, gym.spaces.Dict) else list(space.spaces)


class ObsEncoder(nn.Module):
    """Raw observations -> flat float features, in two stages:

      preprocess  (nothing learned) one-hot for Discrete/MultiDiscrete, flatten for Box, then
                  optional running normalization (Box only); images pass through as uint8
      features    (learned) the Nature CNN for images (`is_image_space`), nothing otherwise

    Dict and Tuple spaces (SB3's MultiInputPolicy case) get one sub-encoder per key / element,
    recursively (`.parts`, in the space's key order): preprocess gives the concatenation of the
    parts' preprocessed x, one flat float vector (one-hots, flattened boxes, each Box part with its
    own running normalization when `normalize`, the legal-move mask `action_mask` left as 0/1), and
    features leave it as is. Composite spaces that contain an image are refused (an EnvError):
    rollouts store one x tensor per observation, and uint8 pixels and float features do not make one.
    With composite=False (the off-policy networks, whose replay buffers store one array per
    observation) Dict/Tuple spaces are refused.

    Calling the encoder does both; `.dim` is the width of the features (512 for images).
    `x_shape` and `x_dtype` describe the preprocessed x that on-policy rollouts store.
    Both stages take raw batched observations as the env returns them: a tensor or numpy array
    (B, *obs_shape), or for Dict / Tuple spaces a dict / tuple of them (a Gymnasium vector env's
    batched observations); `stack` batches a list of single observations."""

    def __init__(self, space: gym.Space, normalize: bool = False, composite: bool = True):
        super().__init__()
        self.space = space
        self.cnn = None
        self.parts = None
        if isinstance(space, COMPOSITE_SPACES):
            name = type(space).__name__
            if not composite:
                raise EnvError(
                    f"{name} observations ({space}) are not supported by the off-policy algorithms (DQN, SAC, TD3, "
                    "DDPG): their replay buffer stores each observation as one array; wrap the env in "
                    "gymnasium.wrappers.FlattenObservation, or use an on-policy algorithm (PPO, A2C, TRPO...), "
                    "whose encoder takes Dict/Tuple observations"
                )
            if _contains_image(space):
                raise EnvError(
                    f"{name} observations with an image entry ({space}) are not supported: rollouts store each "
                    "preprocessed observation as one tensor, uint8 pixels for images and flat floats otherwise, "
                    "not both; observe the image alone, or flatten it into a float Box entry"
                )
            if not _subspaces(space):
                raise EnvError(f"the {name} observation space {space} is empty: there is nothing to encode")
            self.kind = "dict" if isinstance(space, gym.spaces.Dict) else "tuple"
            self.keys = list(space.spaces) if self.kind == "dict" else list(range(len(space.spaces)))
            # (a legal-move mask stays 0/1 in x, unnormalized: the policy reads it there, `part_slice`)
            self.parts = nn.ModuleList(ObsEncoder(s, normalize and key != MASK_KEY)
                                       for key, s in zip(self.keys, _subspaces(space)))
            self.dim = sum(part.dim for part in self.parts)
        elif isinstance(space, gym.spaces.Discrete):
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
                f"observation space {space} is not supported (Box, Discrete, MultiDiscrete, MultiBinary, and Dict "
                "and Tuple spaces of them are); wrap the env in an observation wrapper that gives one of these"
            )
        self.x_shape, self.x_dtype = (tuple(space.shape), torch.uint8) if self.cnn else ((self.dim,), torch.float32)
        self.normalizer = RunningMeanStd((self.dim,)) if normalize and self.kind == "box" else None
        self.frozen = False  # True: the statistics stay as loaded (a policy started from another run's: init_from)
        # preprocess only flattens and casts to float: numpy acting can read raw observations
        self.flattens_only = self.kind == "box" and self.normalizer is None
        # Moves with the module (.to, or built under a device context) and is not saved: the device
        # preprocess puts observations on, whatever device they come from.
        self.register_buffer("anchor", torch.empty(0), persistent=False)

    def forward(self, obs: Any, update_stats: bool = False) -> torch.Tensor:
        return self.features(self.preprocess(obs, update_stats))

    def preprocess(self, obs: Any, update_stats: bool = False) -> torch.Tensor:
        """Raw batched observations (B, *obs_shape) -> x (B, *x_shape) on the encoder's device: a
        tensor or numpy array, for Dict / Tuple spaces a dict / tuple of them (see the class)."""
        if self.parts is None:  # on the encoder's device (on the CPU, shares a numpy array's memory)
            obs = torch.as_tensor(obs, device=self.anchor.device)
        if self.kind == "discrete":
            return F.one_hot(obs.long().reshape(-1), self.dim).float()
        if self.kind == "multidiscrete":
            obs = obs.long().reshape(-1, len(self.nvec))
            return torch.cat([F.one_hot(obs[:, i], n) for i, n in enumerate(self.nvec)], -1).float()
        if self.kind == "image":
            return obs
        if self.parts is not None:
            return torch.cat([part.preprocess(obs[key], update_stats) for key, part in zip(self.keys, self.parts)], -1)
        x = obs.reshape(obs.shape[0], -1).float()
        if self.normalizer is not None:
            if update_stats and not self.frozen:
                self.normalizer.update(x)
            x = self.normalizer(x)
        return x

    def part_slice(self, key: Any) -> slice | None:
        """Where a Dict observation's entry `key` lies in x (its preprocessed features), or None where
        the space has no such entry."""
        if self.parts is None or self.kind != "dict" or key not in self.keys:
            return None
        i = self.keys.index(key)
        start = sum(part.dim for part in self.parts[:i])
        return slice(start, start + self.parts[i].dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, *x_shape) -> (B, dim)."""
        return x if self.cnn is None else self.cnn(x)

    def stack(self, observations: Sequence[Any]) -> Any:
        """Single observations of this space -> one batch of them, as a vector env returns it (a
        numpy array; for Dict / Tuple spaces a dict / tuple of arrays), for `preprocess`."""
        return concatenate(self.space, list(observations), create_empty_array(self.space, len(observations)))

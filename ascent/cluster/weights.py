"""Versioned weight broadcasts: the learner puts its weights in the object store once per version
(numpy arrays, read zero-copy by actors on the same node) and actors load a version only when it
is newer than theirs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def numpy_state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A module's state_dict as numpy arrays in host memory (what travels through the object store)."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_numpy_state(module: torch.nn.Module, state: dict[str, np.ndarray]) -> None:
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})


class WeightBroadcast:
    """The learner's side: `publish(module)` makes a new version; `handle()` is what a call to an
    actor carries, (version, [ref]) (the ref boxed in a list so that Ray does not fetch it for an
    actor that already has that version). Only the newest version's object is kept alive here."""

    def __init__(self) -> None:
        self.version = -1
        self.ref: Any = None

    def publish(self, module: torch.nn.Module) -> int:
        import ray

        self.ref = ray.put(numpy_state(module))
        self.version += 1
        return self.version

    def handle(self) -> tuple[int, list]:
        return self.version, [self.ref]


class WeightReceiver:
    """The actor's side: loads a broadcast version into its module when it is new."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.version = -1

    def update(self, version: int, boxed_ref: list) -> bool:
        if version == self.version:
            return False
        import ray

        load_numpy_state(self.module, ray.get(boxed_ref[0]))
        self.version = version
        return True

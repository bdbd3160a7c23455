"""Weights on the wire. Versioned broadcasts: the learner puts its weights in the object store once
per version (numpy arrays, read zero-copy by actors on the same node) and actors load a version only
when it is newer than theirs. Flat copies: a model whose weights and gradients each travel as one
numpy array (what a parameter server and its workers exchange at every step)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ascent.nets.optim import FlatParameters


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


INLINE_BYTES = 64 * 1024  # below Ray's limit for arguments carried inside a call (100 KiB)


def on_the_wire(array: np.ndarray) -> Any:
    """What a call to several actors carries for `array`: the array itself when it is small (inlined
    in each call: no object-store round trip), else one object-store copy that all of them read."""
    if array.nbytes <= INLINE_BYTES:
        return array
    import ray

    return ray.put(array)


class FlatModel:
    """A module whose parameters and gradients are views of two flat buffers (FlatParameters), so
    that its weights and a loss's gradient each leave as one float32 array and weights arrive as
    one: one copy each way, inlined in a Ray call's arguments or reply for small networks."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.flat = FlatParameters(module)

    def weights(self) -> np.ndarray:
        return self.flat.numpy()

    def load(self, weights: np.ndarray) -> None:
        self.flat.param.data.copy_(torch.as_tensor(np.array(weights, dtype=np.float32)))  # (Ray's arrays are read-only)

    def gradient(self, loss: torch.Tensor) -> np.ndarray:
        """d loss / d parameters, flat (parameters that the loss does not reach get zeros)."""
        self.flat.zero_grad()
        loss.backward(inputs=list(self.module.parameters()))
        return self.flat.param.grad.detach().cpu().numpy().copy()

"""Process-wide torch settings, set in this one place when an agent is built, and the device an
agent's networks run on.

torch's thread count and its floating-point mode are global to the process, not to an agent: the
last agent built decides them for every agent of the process.
"""

from __future__ import annotations

import contextlib

import torch

from ascent.core.config import check_device_name
from ascent.errors import ConfigError


def configure_torch(threads: int) -> None:
    """torch intra-op threads (small MLPs run fastest on one), and subnormal floats flushed to zero:
    Adam's second moments of parameters whose gradient is often zero (dead ReLUs, unused inputs)
    decay into subnormals, which x86 computes ~100x slower; a DQN update spent 0.5 ms of its 1.7 ms
    in Adam until they were flushed (benchmarks/RESULTS.md)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def resolve_device(spec: str, image_observations: bool) -> torch.device:
    """The torch device named by a config's `device`.

    "auto" is the GPU where one is visible and the observations are images (the CNN's convolutions
    are what a GPU speeds up), the CPU otherwise: the small MLPs of vector observations are bound by
    per-operation latency, which a kernel launch only adds to, and ascent's CPU paths act in numpy
    between updates (ask for device=cuda to put them on the GPU anyway). "cuda" without a usable
    GPU is a ConfigError, not a silent fall-back."""
    check_device_name(spec)
    if spec == "auto":
        return torch.device("cuda" if image_observations and torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU is visible"
            raise ConfigError(f"device={spec!r} asks for a GPU, and this torch ({torch.__version__}, {build}) has none; "
                              "use device=cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={spec!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """A context in which tensors made without a device (torch.zeros, torch.tensor, arange...) are
    made on `device`: an algorithm's setup and updates run in it, so their intermediate tensors
    meet the networks there. Nothing on the CPU, where it would only add per-operation overhead."""
    return contextlib.nullcontext() if device.type == "cpu" else torch.device(device)

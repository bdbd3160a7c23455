"""ascent: deep reinforcement learning, faithful to the theory and fast (PyTorch + Gymnasium).

Every algorithm and class below is imported when first used (`ascent.PPO`, `ascent.load`), so that
`import ascent` and the CLI start without loading torch.
"""

from __future__ import annotations

import importlib

from ascent.errors import AscentError, CheckpointError, ConfigError, EnvError, TrainingDiverged
from ascent.registry import ALGORITHMS, get_algorithm, load
from ascent.version import __version__

_CLASSES = {spec.split(":")[1]: spec.split(":")[0] for spec in ALGORITHMS.values()}
_OTHERS = {"Agent": "ascent.core.agent"}

__all__ = ["__version__", "Agent", "ALGORITHMS", "get_algorithm", "load", "AscentError", "CheckpointError",
           "ConfigError", "EnvError", "TrainingDiverged",
           *(name + suffix for name in _CLASSES for suffix in ("", "Config"))]


def __getattr__(name: str):
    """`ascent.PPO`, `ascent.PPOConfig`, `ascent.Agent`: imported on first access."""
    base = name[: -len("Config")] if name.endswith("Config") else name
    module = _OTHERS.get(name) or _CLASSES.get(base)
    if module is None:
        raise AttributeError(f"module 'ascent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

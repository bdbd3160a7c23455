"""Errors a user can act on. Each message names the problem and the fix; the CLI prints it as one line."""

from __future__ import annotations

import difflib
from typing import Iterable


class AscentError(Exception):
    """Base class of every error ascent raises on bad input or a failed run."""


class ConfigError(AscentError, ValueError):
    """An unknown or invalid hyperparameter, preset or algorithm name."""


class EnvError(AscentError, ValueError):
    """An unknown environment, or a space the algorithm cannot handle."""


class CheckpointError(AscentError):
    """A missing, corrupt or foreign checkpoint or run directory."""


class ClusterError(AscentError, ConnectionError):
    """A Ray cluster that cannot be reached or joined, or actors that cannot be placed on it."""


class TrainingDiverged(AscentError, FloatingPointError):
    """NaN or inf appeared in a loss, a parameter or an observation."""


class TrainingInterrupted(AscentError):
    """SIGINT or SIGTERM stopped training after the iteration under way; the message says what was saved."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number


class DatasetError(AscentError, ValueError):
    """A demonstration dataset that is missing, empty, corrupt, or made for another env or space."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean: a, b?)' for close matches of `name` among `choices`, or ''."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.6)
    if not close:  # case-insensitive prefix/substring as a second chance ("cartpole" -> "CartPole-v1")
        low = name.lower()
        close = [c for c in choices if low in c.lower()][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""


"""Exploration schedules shared by the value-based algorithms (DQN, tabular Q-learning and SARSA)."""

from __future__ import annotations

from typing import Any


def exploration_epsilon(config: Any, progress: float) -> float:
    """Epsilon of an epsilon-greedy policy (SB3's names): linear from exploration_initial_eps to
    exploration_final_eps over the first exploration_fraction of training, then constant."""
    c = config
    done = min(1.0, progress / c.exploration_fraction) if c.exploration_fraction > 0 else 1.0
    return c.exploration_initial_eps + done * (c.exploration_final_eps - c.exploration_initial_eps)

"""Running statistics for observation normalization and reward scaling (saved with checkpoints)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def merge_moments(mean, var, count, batch_mean, batch_var, n):
    """Mean, variance and count of the union of two samples (Chan et al. 1979 parallel update)."""
    delta, total = batch_mean - mean, count + n
    new_var = (var * count + batch_var * n + delta * delta * count * n / total) / total
    return mean + delta * n / total, new_var, total


class RunningMeanStd(nn.Module):
    """Mean and variance of a stream of batches (Chan et al. parallel update), kept as module buffers
    so they travel with the policy's state_dict: a saved model normalizes exactly as it trained."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.clip, self.eps = clip, eps
        self._refresh()

    def _refresh(self) -> None:
        # float32 copies used on the hot path; recomputed only when the statistics change
        self._mean32 = self.mean.float()
        self._inv_std32 = (self.var + self.eps).rsqrt().float()

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).double()
        mean, var, count = merge_moments(self.mean, self.var, self.count, x.mean(0), x.var(0, unbiased=False), x.shape[0])
        self.mean.copy_(mean), self.var.copy_(var), self.count.copy_(count)
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self._mean32) * self._inv_std32).clamp_(-self.clip, self.clip)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh()


class RewardScaler:
    """Divides rewards by the running std of the discounted return, without shifting them (PPO
    implementation detail; shifting would change the optimal policy when episodes end)."""

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.ret = np.zeros(n_envs, dtype=np.float64)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4  # moments of the discounted return

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.ret = self.ret * self.gamma + reward
        self.mean, self.var, self.count = merge_moments(
            self.mean, self.var, self.count, float(self.ret.mean()), float(self.ret.var()), len(self.ret)
        )
        self.ret[done] = 0.0
        return np.clip(reward / np.sqrt(self.var + self.eps), -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict:
        return {"ret": self.ret.tolist(), "mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.ret = np.asarray(state["ret"], dtype=np.float64)
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]

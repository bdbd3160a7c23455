"""Returns and advantage estimators as pure functions of (T, N) tensors: time first, envs second.

They keep `terminated` (the MDP ended: no value after it) apart from `done` (the trajectory was cut,
by termination or truncation: no recursion across it). A truncated step still bootstraps from the
value of its final observation, which the caller passes in `next_values`.
"""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16), all inputs (T, N):

      delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)
      A_t     = delta_t + gamma lam (1 - done_t) A_{t+1}

    lam = 1 with zero values gives the discounted return; lam = 0 gives the TD(0) error.
    """
    not_terminated = 1.0 - terminated.float()
    deltas = rewards + gamma * not_terminated * next_values - values  # (T, N)
    decay = gamma * lam * (1.0 - dones.float())  # (T, N)
    advantages = torch.empty_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    return advantages


def discounted_returns(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    bootstrap: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reward-to-go G_t = r_t + gamma (1 - done_t) G_{t+1}, (T, N); `bootstrap` (N,) is the value
    after the last step (zero, or V(s_T) for a cut-off rollout)."""
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0]) if bootstrap is None else bootstrap.clone()
    keep = 1.0 - dones.float()
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * keep[t] * running
        returns[t] = running
    return returns


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target): 1 is a perfect value function, 0 no better than a
    constant, negative worse (NaN when the targets do not vary)."""
    var = target.var()
    return float(1 - (target - predicted).var() / var) if var > 0 else float("nan")


def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """(A - mean) / std over a batch (an implementation detail of PPO/A2C, not of the estimator)."""
    if advantages.numel() < 2:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)

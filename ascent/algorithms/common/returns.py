"""Returns and advantage estimators as pure functions of (T, N) tensors: time first, envs second.

They keep `terminated` (the MDP ended: no value after it) apart from `done` (the trajectory was cut,
by termination or truncation: no recursion across it). A truncated step still bootstraps from the
value of its final observation, which the caller passes in `next_values`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def backward_recursion(terms: torch.Tensor, decay: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
    """y_t = terms_t + decay_t y_{t+1} for t = T-1 .. 0, over (T, N), from y_T = `last` (zero by
    default): the recursion GAE, V-trace and discounted returns each are."""
    out = torch.empty_like(terms)
    running = torch.zeros_like(terms[0]) if last is None else last.clone()
    for t in range(terms.shape[0] - 1, -1, -1):
        running = terms[t] + decay[t] * running
        out[t] = running
    return out


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
    not_terminated = 1.0 - terminated.to(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values  # (T, N)
    return backward_recursion(deltas, gamma * lam * (1.0 - dones.to(values.dtype)))


class VTrace(NamedTuple):
    """V-trace's outputs, each (T, N): the value targets v_s and the policy-gradient advantages
    rho_s (r_s + gamma v_{s+1} - V(x_s)), and the truncated importance weights rho_s used."""

    vs: torch.Tensor
    pg_advantages: torch.Tensor
    clipped_rhos: torch.Tensor


@torch.no_grad()
def vtrace(
    behaviour_logprobs: torch.Tensor,
    target_logprobs: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    lam: float = 1.0,
) -> VTrace:
    """V-trace targets (Espeholt et al. 2018, IMPALA, eq. 1 and its recursion, remark 1), all inputs
    (T, N) over segments of experience collected by a behaviour policy mu:

      rho_t = min(rho_bar, pi(a_t|x_t) / mu(a_t|x_t)),   c_t = lam min(c_bar, pi(a_t|x_t) / mu(a_t|x_t))
      delta_t V = rho_t (r_t + gamma (1 - terminated_t) V(x_{t+1}) - V(x_t))
      v_s - V(x_s) = delta_s V + gamma (1 - done_s) c_s (v_{s+1} - V(x_{s+1}))
      pg advantage  rho_s (r_s + gamma (1 - terminated_s) v_{s+1} - V(x_s))

    where v_{s+1} after the segment's last step, or after a truncated step, is V(x_{s+1}) as given
    in `next_values` (V of the final observation where an episode was truncated and the env already
    reset), and a terminated step bootstraps from nothing. `done` (terminated or truncated) cuts
    the trace: no recursion runs across an episode's end. On-policy (pi = mu) with rho_bar = c_bar =
    lam = 1, v_s is the n-step bootstrapped return to the segment's end.
    """
    ratios = (target_logprobs - behaviour_logprobs).exp()
    rhos = ratios.clamp(max=rho_bar)
    cs = lam * ratios.clamp(max=c_bar)
    not_terminated = 1.0 - terminated.to(values.dtype)
    keep = 1.0 - dones.to(values.dtype)
    deltas = rhos * (rewards + gamma * not_terminated * next_values - values)
    vs = values + backward_recursion(deltas, gamma * keep * cs)  # v_s - V(x_s) by the recursion
    # v_{s+1}: the next target inside an episode; V(x_{s+1}) after the segment or a cut.
    vs_next = next_values.clone()
    vs_next[:-1] = torch.where(keep[:-1] > 0, vs[1:], next_values[:-1])
    pg_advantages = rhos * (rewards + gamma * not_terminated * vs_next - values)
    return VTrace(vs, pg_advantages, rhos)


def discounted_returns(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    bootstrap: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reward-to-go G_t = r_t + gamma (1 - done_t) G_{t+1}, (T, N); `bootstrap` (N,) is the value
    after the last step (zero, or V(s_T) for a cut-off rollout)."""
    return backward_recursion(rewards, gamma * (1.0 - dones.to(rewards.dtype)), bootstrap)


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

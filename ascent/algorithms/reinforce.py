"""REINFORCE (Williams 1992): the Monte Carlo policy gradient, with the variance reductions of the
theory as switches a user can compare.

One iteration collects `n_episodes` complete episodes with the current policy and ascends

  grad J ~= 1/N sum_i sum_t grad log pi(a_t|s_t) (w_t - b)

through the pseudo-loss -1/N sum_i sum_t log pi(a_t|s_t) (w_t - b) (autodiff computes the gradient):
  return_type = "full":         w_t = R(tau) = sum_t gamma^t r_t, the same weight at every step
                "reward_to_go": w_t = G_t = sum_{t' >= t} gamma^(t'-t) r_t'  (causality)
  baseline    = "none":         b = 0
                "mean":         b = the batch mean of the weights, leave-one-out (episode i's baseline
                                from the other episodes, so that it is independent of episode i)
                "optimal":      the variance-minimizing constant per parameter k, from per-episode gradients:
                                b_k = E[(d_k log p(tau))^2 R] / E[(d_k log p(tau))^2] for the full return,
                                b_k = E[A_k B_k] / E[B_k^2] with A = sum_t grad log pi_t G_t,
                                B = sum_t grad log pi_t for reward-to-go (the same formula when G_t = R);
                                leave-one-out too. A baseline computed from the episode it weights
                                would shrink the gradient by O(1/N) (measured by `ascent diagnose`).
                "value":        b = V(s_t), a learned state value regressed on G_t
Each env contributes a fixed quota of whole episodes per batch (taking the first to finish would
favour short episodes); episodes still running when the batch is full are discarded.
With gamma < 1 the reward-to-go weight omits the gamma^t factor of the discounted objective's exact
gradient, as is usual in practice; with gamma = 1 every variant is an unbiased estimate of grad J
(checked against the exact gradient of a small MDP in tests/test_reinforce.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ascent.core.agent import Agent
from ascent.core.config import NetworkConfig, param
from ascent.errors import ConfigError
from ascent.nets.optim import Adam, OptimizerStep
from ascent.nets.policies import ActorCritic
from ascent.algorithms.common.returns import discounted_returns
from ascent.algorithms.common.onpolicy import collect_agent_episodes

RETURN_TYPES = ("full", "reward_to_go")
BASELINES = ("none", "mean", "optimal", "value")


@dataclass
class REINFORCEConfig(NetworkConfig):
    n_envs: int = param(8)
    n_episodes: int = param(16, "complete episodes per gradient step", positive=True)
    learning_rate: float = param(1e-2, "Adam step size of the policy", range=(0.0, math.inf), low_open=True)
    return_type: str = param("reward_to_go", "full | reward_to_go", choices=RETURN_TYPES)
    baseline: str = param("value", "none | mean | optimal | value", choices=BASELINES)
    vf_learning_rate: float = param(1e-2, "Adam step size of the value baseline", range=(0.0, math.inf), low_open=True)
    n_critic_updates: int = param(5, "value-regression steps per iteration (baseline=value)", positive=True)
    normalize_advantage: bool = param(False, "normalize the weights w - b over the batch (not in the theory)")

    def validate(self) -> None:
        super().validate()
        if self.normalize_reward:
            raise ConfigError("normalize_reward is not supported by REINFORCE (it weights by raw Monte Carlo returns)")


class REINFORCE(Agent):
    """Monte Carlo policy gradient over batches of complete episodes."""

    algo = "reinforce"
    Config = REINFORCEConfig

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c)
        self.actor_params = self.policy.actor_parameters()
        self.optimizer = Adam(self.actor_params, lr=c.learning_rate)  # stepped along the estimate (train_iteration)
        self.critic_step = OptimizerStep(self.policy.critic_parameters(), c.vf_learning_rate, flat=False)

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.optimizer, "critic_optimizer": self.critic_step.optimizer}

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        episodes = collect_agent_episodes(self, c.n_episodes)
        metrics: dict[str, float] = {}
        grad = self.gradient_estimate(episodes, metrics)
        # Ascent on J: hand the optimizer minus the estimate as the gradient of a loss.
        for p, g in zip(self.actor_params, self.unflatten(-grad)):
            p.grad = g
        self.optimizer.step()
        if c.baseline == "value":  # fit V(s_t) to the reward-to-go
            x = torch.cat([ep["x"] for ep in episodes])
            returns = torch.cat([ep["returns"] for ep in episodes])
            for _ in range(c.n_critic_updates):
                value_loss = F.mse_loss(self.policy.value(x), returns)
                self.critic_step(value_loss)
            metrics["value_loss"] = value_loss.item()
        metrics["batch_return"] = float(np.mean([float(ep["returns"][0]) for ep in episodes]))
        return metrics

    def gradient_estimate(self, episodes: list[dict[str, torch.Tensor]], metrics: dict | None = None) -> torch.Tensor:
        """The policy-gradient estimate of grad J from complete episodes, as one flat vector over the
        policy's parameters (the configured return type and baseline; nothing is updated)."""
        c = self.config
        metrics = {} if metrics is None else metrics
        for ep in episodes:  # weights: the full discounted return at every step, or the reward-to-go G_t
            no_cut = torch.zeros(len(ep["rewards"]), 1, dtype=torch.bool)
            rtg = discounted_returns(ep["rewards"].unsqueeze(1), no_cut, c.gamma).squeeze(1)
            ep["weights"] = rtg if c.return_type == "reward_to_go" else rtg[:1].expand_as(rtg)
            ep["returns"] = rtg
        if c.baseline == "optimal":
            return self.optimal_baseline_gradient(episodes, metrics)
        x = torch.cat([ep["x"] for ep in episodes])
        weights = torch.cat([ep["weights"] for ep in episodes])
        if c.baseline == "mean":  # leave-one-out: episode i's baseline is the mean weight of the others
            lengths = torch.tensor([len(ep["weights"]) for ep in episodes])
            sums = torch.stack([ep["weights"].sum() for ep in episodes])
            others = (sums.sum() - sums) / (lengths.sum() - lengths).clamp(min=1)
            baseline = others.repeat_interleave(lengths) if len(episodes) > 1 else torch.zeros(())
        elif c.baseline == "value":
            with torch.no_grad():
                baseline = self.policy.value(x)
        else:
            baseline = torch.zeros(())
        adv = weights - baseline
        if c.normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        logprob = self.policy.distribution(x).log_prob(torch.cat([ep["actions"] for ep in episodes]))
        objective = (logprob * adv).sum() / len(episodes)  # pseudo-objective: its gradient is the estimate
        metrics["policy_loss"] = -objective.item()
        grads = torch.autograd.grad(objective, self.actor_params)
        return torch.cat([g.reshape(-1) for g in grads])

    def optimal_baseline_gradient(self, episodes: list[dict[str, torch.Tensor]], metrics: dict) -> torch.Tensor:
        """grad J estimate with the per-parameter variance-optimal constant baseline. Per episode i
        (two backward passes): A_i = grad sum_t log pi_t w_t and the score B_i = grad sum_t log pi_t;
        the estimate mean_i (A_i - b B_i) has least variance at b_k = sum_i A_ik B_ik / sum_i B_ik^2."""
        weighted, scores = [], []
        for ep in episodes:
            logprob = self.policy.distribution(ep["x"]).log_prob(ep["actions"])
            a = torch.autograd.grad((logprob * ep["weights"]).sum(), self.actor_params, retain_graph=True)
            b = torch.autograd.grad(logprob.sum(), self.actor_params)
            weighted.append(torch.cat([t.reshape(-1) for t in a]))
            scores.append(torch.cat([t.reshape(-1) for t in b]))
        A, B = torch.stack(weighted), torch.stack(scores)  # (N, P) each
        b = optimal_baseline(B, A, leave_one_out=len(episodes) > 1)  # (N, P): episode i's from the others
        metrics["baseline_mean"] = b.mean().item()
        return (A - B * b).mean(0)

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        out, i = [], 0
        for p in self.actor_params:
            out.append(flat[i:i + p.numel()].view_as(p).clone())
            i += p.numel()
        return out


def optimal_baseline(scores: torch.Tensor, weighted: torch.Tensor, leave_one_out: bool = False) -> torch.Tensor:
    """b_k = sum_i A_ik B_ik / sum_i B_ik^2 for per-episode score gradients B (N, P) and weighted score
    gradients A (N, P) (A = B R for the full return): the constant per parameter that minimizes the
    second moment of A_k - b_k B_k, hence the variance of the estimate (its mean does not depend on
    a b independent of the episode it weights, since E[B] = 0). With `leave_one_out`, row i is
    computed from the other episodes only (N, P), which keeps the estimate exactly unbiased."""
    num, den = weighted * scores, scores.square()
    if leave_one_out:
        return (num.sum(0) - num) / (den.sum(0) - den).clamp(min=1e-12)
    return num.sum(0) / den.sum(0).clamp(min=1e-12)

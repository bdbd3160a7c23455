"""Off-policy policy gradient with importance sampling: learning theta' from episodes drawn by an
older policy theta (or any logged behaviour policy whose log pi(a_t|s_t) was recorded).

Every estimator has the form of REINFORCE with a per-step weight psi_t,

  grad J(theta') ~= 1/N sum_i sum_t grad log pi_theta'(a_t|s_t) psi_t,   rho_t = pi_theta'(a_t|s_t) / pi_theta(a_t|s_t),

and is computed through the pseudo-objective 1/N sum_i sum_t log pi_theta'(a_t|s_t) psi_t with psi held
constant (autodiff gives the estimate; the ratios come from the same forward pass). With b the baseline:

  "trajectory"    psi_t = (prod_t' rho_t') (R(tau) - b),  R(tau) = sum_t gamma^t r_t
        The likelihood ratio of the whole trajectory, p_theta'(tau) / p_theta(tau) (the dynamics cancel).
        Unbiased for the exact grad J(theta') for any gamma; its variance can grow exponentially with T.
  "per_decision"  psi_t = sum_{t'' >= t} gamma^(t''-t) (prod_{t' <= t''} rho_t') r_t''  -  (prod_{t' <= t} rho_t') b
        Per-decision importance sampling (Precup, Sutton & Singh 2000) applied to the reward-to-go
        estimator. Derivation: on-policy, grad J = E_theta'[sum_t sum_{t''>=t} grad log pi_t gamma^(t''-t) r_t''].
        The term (t, t'') depends only on the trajectory up to step t'' (t <= t''), and for such an f,
        E_theta'[f] = E_theta[(prod_{t' <= t''} rho_t') f]: the ratios after t'' have conditional
        expectation 1 and drop out. So the reward r_t'' is weighted by the ratios of every action up to
        and including its own, not only up to t. Unbiased for the expectation of on-policy reward-to-go
        REINFORCE at theta' (grad J(theta') exactly when gamma = 1; ascent.algorithms.reinforce
        explains the gamma^t it omits). The baseline term has mean zero because its weight covers a_t.
        (The lecture's "causal" form (prod_{t' <= t} rho_t') G_t drops the ratios of t+1..t'' and is
        biased: it values the future of a_t under the behaviour policy. It is not implemented.)
  "first_order"   psi_t = rho_t (G_t - b),  G_t = sum_{t'' >= t} gamma^(t''-t) r_t''
        Drops the state-marginal ratio p_theta'(s_t) / p_theta(s_t) (= E[prod_{t' < t} rho_t' | s_t])
        and the future ratios. Since grad rho_t = rho_t grad log pi_t, it is the gradient of the
        surrogate sum_t rho_t (G_t - b) of conservative policy iteration (Kakade & Langford 2002) and
        TRPO (Schulman et al. 2015, eq. 14), which agrees with J(theta') to first order: exact at
        theta' = theta, biased for distant policies, and of far lower variance than the two above.
  baseline "none": b = 0; "mean": b = the mean of R(tau_j) ("trajectory") or of G_t (the others) over
        the other episodes of the batch (leave-one-out: b is independent of the episode it weights, so
        the estimate stays exactly unbiased; an in-batch mean would shrink it by O(1/N)).
  max_weight = c >= 1 truncates each importance weight w to min(c, w), w being the trajectory weight,
        the cumulative weight prod_{t' <= t''} rho_t' or the ratio rho_t (truncated importance sampling,
        Ionides 2008; Retrace and V-trace truncate per-step ratios alike): it bounds the variance and
        adds a bias towards the behaviour policy. 0 means no truncation.

At theta' = theta every rho_t = 1 and the three estimators are on-policy REINFORCE (full return,
reward-to-go, reward-to-go). The diagnostic logged each iteration is the effective sample size of
the trajectory weights, ESS = (sum_i w_i)^2 / sum_i w_i^2 (Kong 1992): N for on-policy data, near 1
when one episode carries all the weight.

The training loop collects `n_episodes` complete episodes with the current policy, keeps the last
`n_batches_kept` batches (each episode with the log-probs of the policy that collected it), and takes
`n_updates` Adam steps on all kept episodes. `update_from_episodes` does the same from logged data.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from ascent.core.agent import Agent
from ascent.core.config import NetworkConfig, param
from ascent.errors import ConfigError
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic
from ascent.algorithms.common.returns import discounted_returns
from ascent.algorithms.common.onpolicy import collect_agent_episodes

ESTIMATORS = ("trajectory", "per_decision", "first_order")
BASELINES = ("none", "mean")


@dataclass
class OffPolicyPGConfig(NetworkConfig):
    n_envs: int = param(8)
    n_episodes: int = param(16, "complete episodes collected per iteration with the current policy", positive=True)
    learning_rate: float = param(1e-3, "Adam step size (small: each batch is used n_updates x n_batches_kept times)",
                                 range=(0.0, math.inf), low_open=True)
    estimator: str = param("per_decision", "trajectory | per_decision | first_order (importance-weighted gradient)",
                           choices=ESTIMATORS)
    n_updates: int = param(4, "Adam steps per iteration, each on all kept episodes", positive=True)
    n_batches_kept: int = param(2, "the last this many batches of episodes are kept and reused (1: the newest only)",
                                positive=True)
    max_weight: float = param(0.0, "truncate each importance weight at this value, >= 1 (0: no truncation)")
    baseline: str = param("mean", "none | mean (mean return of the batch's other episodes)", choices=BASELINES)

    def validate(self) -> None:
        super().validate()
        if not (self.max_weight == 0 or 1 <= self.max_weight < math.inf):
            raise ConfigError(f"max_weight must be 0 (no truncation) or a number >= 1; got {self.max_weight}")
        if self.normalize_reward:
            raise ConfigError("normalize_reward is not supported by offpg (it weights by raw Monte Carlo returns)")


def off_policy_objective(logprob: torch.Tensor, batch: dict[str, torch.Tensor], estimator: str, gamma: float,
                         baseline: str = "none", max_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """The pseudo-objective whose gradient is the chosen estimate of grad J(theta') (module docstring),
    and the importance-weight diagnostics.

    logprob: log pi_theta'(a_t|s_t) of every step, episodes one after the other (sum T_i,), with grad.
    batch: from `pad_episodes`: mask, behaviour_logprob, rewards, returns, each (N, T) padded.
    """
    mask, rewards, returns = batch["mask"], batch["rewards"], batch["returns"]  # (N, T) each
    n = mask.shape[0]
    log_ratio = torch.zeros(mask.shape, dtype=torch.float64)  # log rho_t; 0 past the end of an episode
    log_ratio[mask] = logprob.detach().double() - batch["behaviour_logprob"][mask]
    cum_log_ratio = log_ratio.cumsum(1)  # log prod_{t' <= t} rho_t'; the last column is the whole trajectory's
    log_cap = math.log(max_weight) if max_weight else math.inf

    def weight(log_w: torch.Tensor) -> torch.Tensor:  # min(c, w), truncated in log space
        return log_w.clamp(max=log_cap).exp()

    trajectory_weight = weight(cum_log_ratio[:, -1])  # (N,)
    if estimator == "trajectory":
        b = leave_one_out_mean(returns[:, :1], mask[:, :1]) if baseline == "mean" else 0.0
        psi = trajectory_weight[:, None] * (returns[:, :1] - b)  # (N, 1): the same weight at every step
        psi = psi.expand_as(mask)
    elif estimator == "per_decision":
        b = leave_one_out_mean(returns, mask) if baseline == "mean" else 0.0
        w = weight(cum_log_ratio)  # (N, T) prod_{t' <= t} rho_t'
        psi = reward_to_go(w * rewards, gamma) - w * b  # sum_{t'' >= t} gamma^(t''-t) w_t'' r_t'' - w_t b
    else:  # first_order
        b = leave_one_out_mean(returns, mask) if baseline == "mean" else 0.0
        psi = weight(log_ratio) * (returns - b)
    objective = (logprob * psi[mask].to(logprob.dtype)).sum() / n
    ess = effective_sample_size(cum_log_ratio[:, -1].clamp(max=log_cap))
    metrics = {
        "policy_loss": -objective.item(),
        "ess": ess,
        "ess_fraction": ess / n,
        "step_ess_fraction": effective_sample_size(log_ratio[mask].clamp(max=log_cap)) / int(mask.sum()),
        "log_max_weight": cum_log_ratio[:, -1].max().item(),  # before truncation; in log space, as it can overflow
        "mean_log_ratio": log_ratio[mask].mean().item(),  # -KL(pi_theta || pi_theta') estimated on the data
    }
    return objective, metrics


def leave_one_out_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, 1): for episode i, the mean of `values` (N, T) over the valid steps of the other episodes
    (0 when there is no other episode)."""
    sums, counts = (values * mask).sum(1), mask.sum(1)
    return ((sums.sum() - sums) / (counts.sum() - counts).clamp(min=1))[:, None]


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """(sum_i w_i)^2 / sum_i w_i^2 from log w_i, computed with the weights scaled by their maximum
    (ESS does not change with the scale, and exp stays finite)."""
    w = (log_weights - log_weights.max()).exp()
    return (w.sum() ** 2 / w.square().sum()).item()


def pad_episodes(episodes: list[dict[str, torch.Tensor]], gamma: float) -> dict[str, torch.Tensor]:
    """Per-step quantities of N complete episodes, padded to (N, T_max) with a mask, and the
    reward-to-go G_t (zero past the end, so sums over the padding add nothing)."""
    lengths = torch.tensor([len(ep["rewards"]) for ep in episodes])
    mask = torch.arange(int(lengths.max()))[None] < lengths[:, None]  # (N, T)
    rewards = pad_sequence([torch.as_tensor(ep["rewards"], dtype=torch.float64) for ep in episodes], batch_first=True)
    behaviour_logprob = pad_sequence([torch.as_tensor(ep["logprobs"], dtype=torch.float64) for ep in episodes],
                                     batch_first=True)
    return {"mask": mask, "rewards": rewards, "behaviour_logprob": behaviour_logprob,
            "returns": reward_to_go(rewards, gamma)}


def reward_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """sum_{t'' >= t} gamma^(t''-t) r_t'' along each row of (N, T) zero-padded episodes."""
    return discounted_returns(rewards.T, torch.zeros(rewards.shape[::-1], dtype=torch.bool), gamma).T


class KeptBatches:
    """The last `n` batches of episodes (first in, first out), each episode with the log-probs of the
    policy that collected it. Checkpointed, so a resumed run reuses the same data."""

    def __init__(self, n: int):
        self.batches: collections.deque = collections.deque(maxlen=n)

    def append(self, episodes: list[dict[str, torch.Tensor]]) -> None:
        self.batches.append(episodes)

    def episodes(self) -> list[dict[str, torch.Tensor]]:
        return [ep for batch in self.batches for ep in batch]

    def state_dict(self) -> dict:
        return {"batches": [list(batch) for batch in self.batches]}

    def load_state_dict(self, state: dict) -> None:
        self.batches.clear()
        self.batches.extend(state["batches"])


class OffPolicyPG(Agent):
    """Importance-sampled policy gradient on the episodes of the last few policies (or logged data)."""

    algo = "offpg"
    Config = OffPolicyPGConfig

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c)
        self.actor_params = self.policy.actor_parameters()
        self.step = OptimizerStep(self.actor_params, c.learning_rate, flat=False)
        self.kept = KeptBatches(c.n_batches_kept)

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.step.optimizer, "kept_batches": self.kept}

    def train_iteration(self) -> dict[str, float]:
        self.kept.append(collect_agent_episodes(self, self.config.n_episodes))
        return self.update_from_episodes(self.kept.episodes())

    def update_from_episodes(self, episodes: list[dict], n_updates: int | None = None) -> dict[str, float]:
        """`n_updates` (default: the config's) Adam steps along the importance-weighted gradient
        estimated from `episodes`: complete episodes as dicts of `obs` (or encoded features `x`),
        `actions`, `rewards` and `logprobs`, the behaviour policy's log pi(a_t|s_t). Returns the
        metrics averaged over the steps."""
        n_updates = self.config.n_updates if n_updates is None else n_updates
        if n_updates <= 0:
            raise ConfigError(f"n_updates must be a positive integer, got {n_updates}")
        with self.on_device():  # (given logged data, this runs outside train_iteration)
            x, actions, batch = self.prepare(episodes)
            totals: collections.Counter = collections.Counter()
            for _ in range(n_updates):
                objective, metrics = self.objective(x, actions, batch)
                self.step(-objective)  # ascent on J
                totals.update(metrics)
        return {k: v / n_updates for k, v in totals.items()}

    def gradient_estimate(self, episodes: list[dict]) -> torch.Tensor:
        """The configured estimate of grad J at the current policy from `episodes` (as in
        update_from_episodes), one flat vector over the policy's parameters; nothing is updated."""
        with self.on_device():
            objective, _ = self.objective(*self.prepare(episodes))
            return torch.cat([g.reshape(-1) for g in torch.autograd.grad(objective, self.actor_params)])

    def objective(self, x: torch.Tensor, actions: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        c = self.config
        logprob = self.policy.distribution(x).log_prob(actions)  # log pi_theta'(a_t|s_t), (sum T_i,)
        return off_policy_objective(logprob, batch, c.estimator, c.gamma, c.baseline, c.max_weight)

    def prepare(self, episodes: list[dict]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Check the episode dicts; features and actions of every step, and the padded batch."""
        if not episodes:
            raise ConfigError("no episodes given; pass a list of dicts with obs (or x), actions, rewards, logprobs")
        xs, actions = [], []
        for i, ep in enumerate(episodes):
            missing = [k for k in ("actions", "rewards", "logprobs") if k not in ep]
            missing += [] if "x" in ep or "obs" in ep else ["obs (or x)"]
            if missing:
                raise ConfigError(f"episode {i} lacks {', '.join(missing)}; each episode needs obs (or x), actions, "
                                  "rewards and logprobs (the behaviour policy's log pi(a_t|s_t))")
            lengths = {k: len(ep[k]) for k in ("x", "obs", "actions", "rewards", "logprobs") if k in ep}
            if len(set(lengths.values())) != 1:
                raise ConfigError(f"episode {i} has fields of different lengths: {lengths}")
            if "x" in ep:
                xs.append(torch.as_tensor(ep["x"], dtype=torch.float32))
            else:
                with torch.no_grad():
                    xs.append(self.policy.encoder.preprocess(self.policy.encoder.stack(ep["obs"])))
            actions.append(torch.as_tensor(ep["actions"]))
        return torch.cat(xs), torch.cat(actions), pad_episodes(episodes, self.config.gamma)

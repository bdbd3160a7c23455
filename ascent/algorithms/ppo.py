"""Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347).

One iteration: collect n_steps x n_envs transitions with the current policy; estimate advantages
with GAE(lambda); then n_epochs passes of minibatch gradient steps on

  L(theta) = L_policy + vf_coef * L_value - ent_coef * H[pi_theta]

where L_policy is either the clipped surrogate (eq. 7)
  -E[min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)],   r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
or, with kl_penalty=True, the adaptive KL penalty (eq. 8)
  -E[r_t A_t] + beta * E[KL(pi_old || pi_theta)],  beta halved when KL < d_targ/1.5, doubled when > 1.5 d_targ.
Implementation details follow the reference implementation (Huang et al. 2022, "The 37
implementation details of PPO"): orthogonal init, Adam eps 1e-5, per-minibatch advantage
normalization, global gradient clipping, value clipping (optional), linear annealing, early stop at
target_kl.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ascent.core.agent import Agent, Counters
from ascent.core.config import GaussianPolicyConfig, check_batch_fits_rollout, param, schedule
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic
from ascent.algorithms.common.returns import explained_variance, normalize_advantages
from ascent.algorithms.common.onpolicy import agent_advantage_batch, rollout_parts
from ascent.algorithms.common.warm_start import load_policy_state
from ascent.buffers.rollout import minibatches


@dataclass
class PPOConfig(GaussianPolicyConfig):
    n_envs: int = param(8)
    n_steps: int = param(256, "steps per env per rollout (batch = n_steps * n_envs)", positive=True)
    batch_size: int = param(64, "minibatch size", positive=True)
    n_epochs: int = param(10, "passes over the rollout per iteration", positive=True)
    learning_rate: float | str = param(3e-4, "Adam step size; 'lin_X' decays linearly from X to 0", schedule=True)
    adam_eps: float = param(1e-5, "Adam epsilon", range=(0.0, math.inf))
    gae_lambda: float = param(0.95, "GAE lambda (1: Monte Carlo advantages, 0: TD error)", range=(0.0, 1.0))
    clip_range: float | str = param(0.2, "surrogate clipping epsilon; 'lin_X' decays linearly", schedule=True)
    clip_range_vf: float | None = param(None, "clip the value update around the old value (None: no clipping)",
                                        range=(0.0, math.inf), low_open=True)
    normalize_advantage: bool = param(True, "normalize advantages per minibatch")
    ent_coef: float = param(0.0, "entropy bonus coefficient", range=(0.0, math.inf))
    vf_coef: float = param(0.5, "value loss coefficient", range=(0.0, math.inf))
    max_grad_norm: float = param(0.5, "global gradient-norm clip", range=(0.0, math.inf), low_open=True)
    target_kl: float | None = param(None, "stop the epochs early when approx KL > 1.5 * target_kl (None: never)",
                                    range=(0.0, math.inf), low_open=True)
    kl_penalty: bool = param(False, "use the adaptive KL-penalty objective (eq. 8) instead of clipping")
    kl_target: float = param(0.01, "d_targ of the adaptive KL penalty", range=(0.0, math.inf), low_open=True)
    kl_beta: float = param(1.0, "initial KL penalty coefficient beta", range=(0.0, math.inf))
    share_torso: bool = param(False, "one torso for actor and critic")
    init_from: str = param("", "a run (BC, DAgger, PPO...) whose policy this one starts from ('': a fresh one)")
    critic_warmup: int = param(5, "with init_from: iterations that fit only the value function first", nonnegative=True)
    normalize_value: bool = param(False, "the critic learns standardized returns (running mean and std; MAPPO's "
                                  "value normalization)")
    keep_log_std: bool = param(False, "with init_from on Box actions: keep the loaded policy's log std (default: "
                               "log_std_init's, see setup)")

    def validate(self) -> None:
        super().validate()
        check_batch_fits_rollout(self)


# What `ascent tune ppo` searches (ascent.tuning.spaces' format): RL-Zoo's sample_ppo_params
# (rl_zoo3/hyperparams_opt.py) as the reference, gamma and gae_lambda as the categoricals of its
# earlier versions. A batch_size larger than the rollout is refused by validate(): that trial is
# pruned as invalid, and the sampler learns to avoid it.
SEARCH_SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 2e-3, "log": True},
    "n_steps": {"type": "categorical", "choices": [32, 64, 128, 256, 512, 1024, 2048]},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128, 256, 512]},
    "n_epochs": {"type": "categorical", "choices": [1, 5, 10, 20]},
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]},
    "gae_lambda": {"type": "categorical", "choices": [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]},
    "clip_range": {"type": "categorical", "choices": [0.1, 0.2, 0.3, 0.4]},
    "ent_coef": {"type": "float", "low": 1e-8, "high": 0.1, "log": True},
    "max_grad_norm": {"type": "float", "low": 0.3, "high": 2.0},
    "net_arch": {"type": "categorical", "choices": [[64], [64, 64], [256, 256]]},
    "activation": {"type": "categorical", "choices": ["tanh", "relu"]},
}


class PPO(Agent):
    """PPO with the clipped surrogate or the adaptive KL penalty."""

    algo = "ppo"
    Config = PPOConfig
    search_space = SEARCH_SPACE

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c,
                                              share_torso=c.share_torso, log_std_init=c.log_std_init,
                                              squash_actions=c.squash_actions, normalize_value=c.normalize_value,
                                              **self.policy_options())
        self.step = OptimizerStep(self.policy, schedule(c.learning_rate, 0.0), eps=c.adam_eps, max_grad_norm=c.max_grad_norm)
        self.storage, self.reward_scaler = rollout_parts(self)
        self.kl_coef = KLCoefficient(c.kl_beta)
        if c.init_from:
            load_policy_state(c.init_from, self.policy, c, ("policy",))
            if self.policy.action_kind == "box" and not c.keep_log_std:
                # The clone's spread is the demonstrator's, near 0 for a deterministic expert: PPO explores
                # with its own (measured: Pendulum from BC with the clone's std 0.07 fell from -133 to
                # -950 at the first policy update and never came back; with std 1, back to -135 at once).
                with torch.no_grad():
                    self.policy.log_std.fill_(c.log_std_init)
        self.counters = Counters(warmup_left=c.critic_warmup if c.init_from else 0)

    def policy_options(self) -> dict:
        """More ActorCritic options, for a subclass's own policy (MAPPO's centralized critic)."""
        return {}

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.step.optimizer, "kl_coef": self.kl_coef,
                "counters": self.counters}

    def train_iteration(self) -> dict[str, float]:
        # 1-2. Experience (n_steps x n_envs transitions), GAE(lambda) advantages, targets R = A + V.
        return self.update(agent_advantage_batch(self))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Steps 3-4 on a batch of x, actions, logprobs, values, advantages, returns (what an
        imitation algorithm that relabels the rewards hands its generator: GAIL, AIRL)."""
        c = self.config
        explained = explained_variance(batch["values"], batch["returns"])
        if self.policy.value_norm is not None:  # the critic's targets (and old values) in its standardized scale
            self.policy.value_norm.update(batch["returns"])
            norm = self.policy.value_norm
            batch = {**batch, "returns": norm(batch["returns"]), "values": norm(batch["values"])}
        if self.counters.warmup_left > 0:  # init_from: V first, the policy held (warm_start's docstring)
            self.counters.warmup_left -= 1
            metrics = self.fit_value(batch, explained)
            if self.counters.warmup_left == 0:
                # Adam restarts with the policy's first update: its step count and second moments would
                # otherwise include the warm-up's zero policy gradients, and its bias correction would
                # make the first policy steps several times the step size (measured: Pendulum from BC
                # fell from -133 to -1486 at the first update and stayed there).
                self.step.optimizer.reset_state()
            return metrics
        old_log_std = None
        if c.kl_penalty:  # pi_old's parameters, for the exact KL(pi_old || pi_theta)
            with torch.no_grad():
                batch["old_params"] = self.policy.dist_params(batch["x"])
            old_log_std = self.policy.log_std.detach().clone() if self.policy.action_kind == "box" else None
        # 3. Update: n_epochs passes of minibatch steps.
        progress = self.progress
        lr, clip = schedule(c.learning_rate, progress), schedule(c.clip_range, progress)
        self.step.lr = lr
        # When a minibatch is the whole batch, per-minibatch advantage normalization is the same
        # every epoch: do it once.
        full_batch = c.batch_size >= batch["x"].shape[0]
        if c.normalize_advantage and full_batch:
            batch["advantages"] = normalize_advantages(batch["advantages"])
        terms, log_ratios = [], []
        stop = False
        for _ in range(c.n_epochs):
            for mb in minibatches(batch, c.batch_size):
                old_dist = self.policy.make_dist(mb["old_params"], old_log_std) if c.kl_penalty else None
                loss, mb_terms, log_ratio = ppo_loss(
                    self.policy, mb, c, clip, self.kl_coef.beta, old_dist, c.normalize_advantage and not full_batch
                )
                self.step(loss)
                terms.append(mb_terms)
                log_ratios.append(log_ratio)
                if c.target_kl is not None and approx_kl(log_ratio).item() > 1.5 * c.target_kl:
                    stop = True  # the new policy left the trust region: stop this iteration's update
                    break
            if stop:
                break
        # 4. Statistics (computed once per iteration, off the gradient path).
        metrics = dict(zip(LOSS_TERMS, torch.stack(terms).mean(0).tolist()))
        if not c.kl_penalty:
            del metrics["kl"]  # (the clipped objective computes no exact KL; approx_kl below estimates it)
        log_ratio = torch.cat(log_ratios)
        metrics["approx_kl"] = approx_kl(log_ratio).item()
        metrics["clip_fraction"] = ((log_ratio.exp() - 1).abs() > clip).float().mean().item()
        with torch.no_grad():
            metrics["entropy"] = self.policy.distribution(batch["x"]).entropy().mean().item()
        if c.kl_penalty:  # adapt beta towards d_targ with the iteration's mean KL (eq. 8's rule)
            metrics["kl_beta"] = self.kl_coef.adapt(metrics["kl"], c.kl_target)
        metrics["explained_variance"] = explained
        metrics["learning_rate"] = lr
        metrics["clip_range"] = clip
        metrics["updates"] = float(len(terms))
        if self.policy.action_kind == "box":
            metrics["action_std"] = float(self.policy.log_std.detach().exp().mean())
        return metrics

    def fit_value(self, batch: dict[str, torch.Tensor], explained: float) -> dict[str, float]:
        """n_epochs passes of value regression on the returns alone (the policy's gradient is zero, so
        Adam leaves it where it is)."""
        c = self.config
        losses = []
        for _ in range(c.n_epochs):
            for mb in minibatches({"x": batch["x"], "returns": batch["returns"]}, c.batch_size):
                value_loss = F.mse_loss(self.policy.critic(mb["x"]), mb["returns"])
                self.step(c.vf_coef * value_loss)
                losses.append(value_loss.detach())
        return {"value_loss": torch.stack(losses).mean().item(), "critic_warmup": 1.0, "explained_variance": explained}


LOSS_TERMS = ("loss", "policy_loss", "value_loss", "kl")


def ppo_loss(policy: ActorCritic, mb: dict[str, torch.Tensor], c: PPOConfig, clip: float, beta: float,
             old_dist=None, normalize_advantage: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The PPO objective on one minibatch.

    Returns (loss, detached terms in LOSS_TERMS order, detached log-ratios log pi_theta - log pi_old).
    """
    dist, value = policy(mb["x"])
    log_ratio = dist.log_prob(mb["actions"]) - mb["logprobs"]
    ratio = log_ratio.exp()  # r_t(theta) = pi_theta(a|s) / pi_old(a|s)
    adv = normalize_advantages(mb["advantages"]) if normalize_advantage else mb["advantages"]
    if old_dist is None:
        # Clipped surrogate, eq. 7: pessimistic bound of the unclipped and clipped objectives.
        policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
        kl = torch.zeros(())
    else:
        # Adaptive KL penalty, eq. 8.
        kl = old_dist.kl(dist).mean()
        policy_loss = -(ratio * adv).mean() + beta * kl
    if c.clip_range_vf is None:
        value_loss = F.mse_loss(value, mb["returns"])
    else:  # pessimistic value clipping around the old prediction (baselines' ppo2)
        clipped = mb["values"] + (value - mb["values"]).clamp(-c.clip_range_vf, c.clip_range_vf)
        value_loss = torch.max((value - mb["returns"]).square(), (clipped - mb["returns"]).square()).mean()
    loss = policy_loss + c.vf_coef * value_loss
    if c.ent_coef > 0:  # entropy bonus (skipped from the graph when unused)
        loss = loss - c.ent_coef * dist.entropy().mean()
    return loss, torch.stack([loss, policy_loss, value_loss, kl]).detach(), log_ratio.detach()


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi_theta) estimated as E[(r - 1) - log r]: unbiased and never negative (Schulman 2020)."""
    return ((log_ratio.exp() - 1) - log_ratio).mean()


class KLCoefficient:
    """beta of the adaptive KL penalty, with its update rule (PPO paper, section 4)."""

    def __init__(self, beta: float):
        self.beta = float(beta)

    def adapt(self, kl: float, target: float) -> float:
        if kl < target / 1.5:
            self.beta /= 2.0
        elif kl > target * 1.5:
            self.beta *= 2.0
        return self.beta

    def state_dict(self) -> dict:
        return {"beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta = float(state["beta"])

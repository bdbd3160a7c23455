"""Advantage actor-critic, synchronous (A2C): A3C (Mnih et al. 2016, arXiv:1602.01783) with the
asynchronous workers replaced by a batch of vectorized envs, as in OpenAI baselines.

One iteration: n_steps x n_envs transitions from the current policy, then ONE gradient step on

  L(theta) = -E[log pi(a_t|s_t) A_t] + vf_coef * E[(V(s_t) - R_t)^2] - ent_coef * H[pi(.|s_t)]

with A_t from GAE(lambda) over the rollout: lambda = 1 (the default) gives the n-step advantage
A_t = sum_{k<n-t} gamma^k r_{t+k} + gamma^(n-t) V(s_n) - V(s_t) of the A3C paper; R_t = A_t + V(s_t).
Optimized with RMSprop (the paper's choice) or Adam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ascent.core.agent import Agent
from ascent.core.config import GaussianPolicyConfig, param, schedule
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic
from ascent.algorithms.common.returns import explained_variance, normalize_advantages
from ascent.algorithms.common.onpolicy import agent_advantage_batch, rollout_parts


@dataclass
class A2CConfig(GaussianPolicyConfig):
    n_envs: int = param(8)
    n_steps: int = param(5, "steps per env per update (the n of n-step returns)", positive=True)
    log_interval: int = param(10, "iterations per row of metrics (A2C's iterations are short)")
    learning_rate: float | str = param(7e-4, "step size; 'lin_X' decays linearly from X to 0", schedule=True)
    gae_lambda: float = param(1.0, "GAE lambda (1: n-step returns, as in A3C)", range=(0.0, 1.0))
    ent_coef: float = param(0.0, "entropy bonus coefficient", range=(0.0, math.inf))
    vf_coef: float = param(0.5, "value loss coefficient", range=(0.0, math.inf))
    max_grad_norm: float = param(0.5, "global gradient-norm clip", range=(0.0, math.inf), low_open=True)
    use_rms_prop: bool = param(True, "RMSprop (A3C paper) instead of Adam")
    rms_prop_eps: float = param(1e-5, "RMSprop epsilon (and Adam's, when use_rms_prop=False)", range=(0.0, math.inf),
                                low_open=True)
    rms_prop_alpha: float = param(0.99, "RMSprop smoothing constant", range=(0.0, 1.0), low_open=True)
    normalize_advantage: bool = param(False, "normalize advantages over the batch")
    share_torso: bool = param(False, "one torso for actor and critic")


# What `ascent tune a2c` searches (ascent.tuning.spaces' format): RL-Zoo's sample_a2c_params
# (rl_zoo3/hyperparams_opt.py) as the reference, with A2C's short rollouts (n_steps from 5) and the
# optimizer and advantage switches of its earlier versions.
SEARCH_SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 2e-3, "log": True},
    "n_steps": {"type": "categorical", "choices": [5, 8, 16, 32, 64, 128, 256, 512]},
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]},
    "gae_lambda": {"type": "categorical", "choices": [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]},
    "ent_coef": {"type": "float", "low": 1e-8, "high": 0.1, "log": True},
    "vf_coef": {"type": "float", "low": 0.0, "high": 1.0},
    "max_grad_norm": {"type": "float", "low": 0.3, "high": 2.0},
    "use_rms_prop": {"type": "categorical", "choices": [True, False]},
    "normalize_advantage": {"type": "categorical", "choices": [False, True]},
    "net_arch": {"type": "categorical", "choices": [[64, 64], [256, 256]]},
    "activation": {"type": "categorical", "choices": ["tanh", "relu"]},
}


class A2C(Agent):
    """Synchronous advantage actor-critic."""

    algo = "a2c"
    Config = A2CConfig
    search_space = SEARCH_SPACE

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c,
                                              share_torso=c.share_torso, log_std_init=c.log_std_init,
                                              squash_actions=c.squash_actions)
        self.step = OptimizerStep(self.policy, schedule(c.learning_rate, 0.0), "rmsprop" if c.use_rms_prop else "adam",
                                  eps=c.rms_prop_eps, max_grad_norm=c.max_grad_norm, alpha=c.rms_prop_alpha)
        self.storage, self.reward_scaler = rollout_parts(self)

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.step.optimizer}

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        # 1-2. Experience (n_steps x n_envs), advantages (n-step when lambda = 1), targets R = A + V.
        batch = agent_advantage_batch(self)
        adv = normalize_advantages(batch["advantages"]) if c.normalize_advantage else batch["advantages"]
        # 3. One gradient step on the actor-critic loss.
        lr = schedule(c.learning_rate, self.progress)
        self.step.lr = lr
        loss, metrics = actor_critic_loss(self.policy, batch, adv, c.vf_coef, c.ent_coef)
        self.step(loss)
        metrics["explained_variance"] = explained_variance(batch["values"], batch["returns"])
        metrics["learning_rate"] = lr
        return metrics


def actor_critic_loss(policy: ActorCritic, batch: dict[str, torch.Tensor], advantages: torch.Tensor, vf_coef: float,
                      ent_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The advantage actor-critic loss (the module docstring's L) on a batch of x, actions and
    returns with their advantages; and its terms as metrics."""
    dist, value = policy(batch["x"])
    policy_loss = -(dist.log_prob(batch["actions"]) * advantages).mean()  # policy gradient theorem, A as weight
    value_loss = F.mse_loss(value, batch["returns"])
    entropy = dist.entropy().mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return loss, dict(zip(("loss", "policy_loss", "value_loss", "entropy"),
                          torch.stack([loss, policy_loss, value_loss, entropy]).detach().tolist()))

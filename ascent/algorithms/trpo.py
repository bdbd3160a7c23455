"""Trust region policy optimization (Schulman et al. 2015, arXiv:1502.05477), and the natural policy
gradient it builds on (Kakade 2002), which is the same update without the line search.

One iteration: n_steps x n_envs transitions; GAE(lambda) advantages A (normalized); then
  1. g = grad_theta L(theta_old), L(theta) = E[pi_theta(a|s) / pi_old(a|s) A]  (the surrogate, eq. 14)
  2. x ~= F^-1 g by conjugate gradient on Fisher-vector products F v = grad((grad KL) . v), KL the
     mean KL(pi_old || pi_theta) (appendix C), with damping: no Fisher matrix is ever formed
  3. full step D = sqrt(2 delta / x^T F x) x: the step whose quadratic KL model D^T F D / 2 is delta
  4. TRPO: backtracking line search on D, accepting the first fraction whose sampled mean KL <= delta
     and whose surrogate improves (section 6); NPG: take D as is
  5. the value function by separate regression: n_critic_updates epochs of minibatch Adam on
     (V(s) - R)^2, R = A + V_old.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ascent.core.agent import Agent
from ascent.core.config import GaussianPolicyConfig, check_batch_fits_rollout, param
from ascent.errors import ConfigError
from ascent.nets.natural_gradient import backtracking_line_search, conjugate_gradient, fisher_vector_product, flat_grad
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic
from ascent.algorithms.common.returns import explained_variance, normalize_advantages
from ascent.algorithms.common.onpolicy import agent_advantage_batch, rollout_parts
from ascent.buffers.rollout import minibatches


@dataclass
class TRPOConfig(GaussianPolicyConfig):
    n_steps: int = param(2048, "steps per env per iteration", positive=True)
    batch_size: int = param(128, "minibatch size of the value-function regression", positive=True)
    learning_rate: float = param(1e-3, "Adam step size of the value function", range=(0.0, math.inf), low_open=True)
    gae_lambda: float = param(0.95, "GAE lambda", range=(0.0, 1.0))
    target_kl: float = param(0.01, "delta: the trust region's mean-KL radius", range=(0.0, math.inf), low_open=True)
    cg_max_steps: int = param(15, "conjugate gradient iterations", positive=True)
    cg_damping: float = param(0.1, "damping added to the Fisher matrix (F + damping I)", range=(0.0, math.inf))
    line_search: bool = param(True, "backtracking line search on the natural step (TRPO); off: NPG")
    line_search_shrinking_factor: float = param(0.8, "step fraction multiplier per backtrack", range=(0.0, 1.0),
                                                low_open=True)
    line_search_max_iter: int = param(10, "backtracks before the step is rejected", positive=True)
    n_critic_updates: int = param(10, "epochs of value-function regression per iteration", positive=True)
    normalize_advantage: bool = param(True, "normalize advantages over the batch")
    share_torso: bool = param(False, "must stay False: the policy and value steps need separate parameters")

    def validate(self) -> None:
        super().validate()
        check_batch_fits_rollout(self)
        if self.share_torso:
            raise ConfigError("share_torso=True is not supported: the natural-gradient step needs the policy's own parameters")


@dataclass
class NPGConfig(TRPOConfig):
    line_search: bool = param(False)


class TRPO(Agent):
    """TRPO: natural-gradient direction, step scaled to the KL radius, backtracking line search."""

    algo = "trpo"
    Config = TRPOConfig

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c,
                                              share_torso=c.share_torso, log_std_init=c.log_std_init,
                                              squash_actions=c.squash_actions)
        self.actor_params = self.policy.actor_parameters()
        self.critic_step = OptimizerStep(self.policy.critic_parameters(), c.learning_rate, flat=False)
        self.storage, self.reward_scaler = rollout_parts(self)

    def modules(self) -> dict:
        return {"policy": self.policy, "critic_optimizer": self.critic_step.optimizer}

    def train_iteration(self) -> dict[str, float]:
        # Experience, GAE(lambda) advantages and value targets R = A + V.
        return self.update(agent_advantage_batch(self))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Steps 1-5 on a batch of x, actions, logprobs, values, advantages, returns (as PPO.update)."""
        c = self.config
        x, actions, old_logprob = batch["x"], batch["actions"], batch["logprobs"]
        adv = normalize_advantages(batch["advantages"]) if c.normalize_advantage else batch["advantages"]
        policy = self.policy
        with torch.no_grad():
            old_log_std = policy.log_std.detach().clone() if policy.action_kind == "box" else None
            old_dist = policy.make_dist(policy.dist_params(x), old_log_std)

        def surrogate_and_kl(dist):
            ratio = torch.exp(dist.log_prob(actions) - old_logprob)
            return (ratio * adv).mean(), old_dist.kl(dist).mean()

        # 1. Policy gradient of the surrogate at theta_old (one forward pass serves steps 1 and 2).
        surrogate, kl = surrogate_and_kl(policy.distribution(x))
        g = flat_grad(surrogate, self.actor_params, retain_graph=True)
        # 2. Natural direction x = F^-1 g by CG on Fisher-vector products of the mean KL.
        fvp = fisher_vector_product(kl, self.actor_params, c.cg_damping)
        direction = conjugate_gradient(fvp, g, c.cg_max_steps)
        # 3. Scale so that the quadratic KL model 1/2 D^T F D equals delta.
        quad = (direction @ fvp(direction)).clamp(min=1e-12)
        full_step = math.sqrt(2 * c.target_kl / quad.item()) * direction
        theta_old = parameters_to_vector(self.actor_params).detach()

        def evaluate(step: torch.Tensor) -> tuple[float, float]:
            vector_to_parameters(theta_old + step, self.actor_params)
            with torch.no_grad():
                new_surrogate, new_kl = surrogate_and_kl(policy.distribution(x))
            return (new_surrogate - surrogate).item(), new_kl.item()

        # 4. TRPO: the largest fraction of the step that keeps KL <= delta and improves; NPG: all of it.
        if c.line_search:
            step, fraction, improve, kl_after = backtracking_line_search(
                evaluate, full_step, float(g @ full_step), c.target_kl, c.line_search_max_iter,
                shrink=c.line_search_shrinking_factor,
            )
            vector_to_parameters(theta_old + (step if step is not None else torch.zeros_like(theta_old)), self.actor_params)
            accepted = step is not None
        else:
            improve, kl_after = evaluate(full_step)
            fraction, accepted = 1.0, True
        # 5. Value function by regression on the returns.
        value_losses = []
        critic = {"x": x, "returns": batch["returns"]}
        for _ in range(c.n_critic_updates):
            for mb in minibatches(critic, c.batch_size):
                value_loss = F.mse_loss(policy.value(mb["x"]), mb["returns"])
                self.critic_step(value_loss)
                value_losses.append(value_loss.detach())
        return {
            "policy_objective": surrogate.item(),
            "surrogate_improvement": improve,
            "kl": kl_after,
            "step_fraction": fraction if accepted else 0.0,
            "step_accepted": float(accepted),
            "value_loss": torch.stack(value_losses).mean().item(),
            "entropy": old_dist.entropy().mean().item(),
            "explained_variance": explained_variance(batch["values"], batch["returns"]),
        }


class NPG(TRPO):
    """Natural policy gradient: TRPO's update without the line search (its config's only difference)."""

    algo = "npg"
    Config = NPGConfig

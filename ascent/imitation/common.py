"""What the imitation algorithms share: the policy they fit to an expert's actions, its likelihood
loss, and the expert itself (any trained ascent run).

The fitted policy is one of ascent's own, so that a cloned policy is a normal ascent policy: `eval`
runs it, and PPO/TRPO/A2C (an ActorCritic) or SAC (its squashed Gaussian actor) start from it with
`init_from=RUN`:
  policy=actor_critic  ascent.nets.policies.ActorCritic: categorical (Discrete), Gaussian with a
                       state-independent std (Box), or tanh-squashed (squash_actions=True)
  policy=sac           ascent.nets.actors.SquashedGaussianActor: SAC's tanh Gaussian with a
                       state-dependent std (Box only)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ascent.core.agent import Agent, load_agent
from ascent.core.config import NetworkConfig, param
from ascent.core.run import RunDirectory
from ascent.errors import ConfigError, EnvError
from ascent.nets.actors import ActionScale, SquashedGaussianActor
from ascent.nets.distributions import TanhGaussian
from ascent.nets.policies import ActorCritic

POLICY_KINDS = ("actor_critic", "sac")
SQUASH_EPS = 1e-6  # demonstrated actions at the bounds are pulled inside (-1, 1) by this much: atanh(+-1) is infinite


@dataclass
class ImitationConfig(NetworkConfig):
    """The settings of a policy fitted by maximum likelihood (BC, DAgger)."""

    dataset: str = param("", "demonstrations: a Minari dataset directory or the id of a local Minari dataset")
    n_episodes: int = param(0, "use the dataset's first this many episodes (0: all)", nonnegative=True)
    normalize_obs: bool = param(True, "standardize observations by the demonstrations' statistics, fixed once "
                                "read (measured: BC HalfCheetah 0.44 -> 0.90 of the expert, Pendulum -986 -> -222)")
    policy: str = param("actor_critic", "actor_critic (what PPO/TRPO/A2C start from) | sac (SAC's actor, Box only)",
                        choices=POLICY_KINDS)
    squash_actions: bool = param(False, "actor_critic on Box actions: tanh-squashed Gaussian instead of a clipped one")
    log_std_init: float = param(0.0, "actor_critic on Box actions: initial log std")
    learning_rate: float = param(1e-3, "Adam step size", range=(0.0, math.inf), low_open=True)
    batch_size: int = param(64, "minibatch of (state, expert action) pairs per gradient step", positive=True)
    ent_weight: float = param(1e-3, "entropy bonus weight in the loss (the `imitation` library's default)",
                              range=(0.0, math.inf))
    l2_weight: float = param(0.0, "L2 penalty on the policy's weights", range=(0.0, math.inf))
    max_grad_norm: float | None = param(None, "global gradient-norm clip (None: none)", range=(0.0, math.inf), low_open=True)


class ClonedPolicy(nn.Module):
    """The policy fitted to expert actions: `net` is an ascent ActorCritic or SAC actor (its state
    dict is what a checkpoint's "policy" holds); actions in the dataset are the env's."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, c: ImitationConfig):
        super().__init__()
        self.kind = c.policy
        self.box = isinstance(action_space, gym.spaces.Box)
        if c.policy == "sac":
            if not self.box:
                raise EnvError(f"policy=sac is SAC's actor for Box actions; this env has {action_space}: use "
                               "policy=actor_critic")
            self.scale = ActionScale(action_space, "policy=sac")
            self.net: nn.Module = SquashedGaussianActor(observation_space, self.scale.dim, c.net_arch, c.activation,
                                                        c.normalize_obs)
        else:
            self.net = ActorCritic.from_config(observation_space, action_space, c, log_std_init=c.log_std_init,
                                               squash_actions=c.squash_actions)
            self.scale = self.net if self.box and self.net.squash else None
        self.encoder = self.net.encoder
        if self.scale is not None:  # the bounds as tensors once (policy_action runs every gradient step)
            self.register_buffer("low", torch.as_tensor(self.scale.low), persistent=False)
            self.register_buffer("high", torch.as_tensor(self.scale.high), persistent=False)

    def fitted_parameters(self) -> list[nn.Parameter]:
        """The parameters the likelihood reaches (an ActorCritic's critic is left to PPO's warm-up)."""
        return self.net.actor_parameters() if self.kind == "actor_critic" else list(self.net.parameters())

    def distribution(self, x: torch.Tensor):
        return self.net.distribution(x)

    def policy_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Env actions -> the distribution's own: unit-box actions for the squashed policies, pulled
        SQUASH_EPS inside the bounds; the env's actions otherwise."""
        if self.scale is None:
            return actions
        unit = 2.0 * (actions - self.low) / (self.high - self.low) - 1.0
        return unit.clamp(-1.0 + SQUASH_EPS, 1.0 - SQUASH_EPS)

    @torch.no_grad()
    def env_action(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        if self.kind == "actor_critic":
            return self.net.env_action(obs, deterministic)
        dist = self.net.distribution(self.encoder.preprocess(obs))
        unit = dist.mode() if deterministic else dist.sample()
        return self.scale.to_env(unit.cpu().numpy())


def likelihood_loss(policy: ClonedPolicy, obs: torch.Tensor, actions: torch.Tensor, ent_weight: float = 0.0,
                    l2_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Behavioural cloning's objective: the negative log-likelihood of the expert's actions,
      L(theta) = -E_(s,a)~D [log pi_theta(a|s)] - ent_weight H[pi_theta(.|s)] + l2_weight ||theta||^2 / 2
    (maximum likelihood = min KL(pi_expert || pi_theta) on the expert's states). H of a squashed
    Gaussian has no closed form: -log pi of a reparameterized sample estimates it.
    `obs` are raw observations, standardized here by the policy's current statistics.
    Returns (loss, detached terms: neglogp, entropy, l2)."""
    dist = policy.distribution(policy.encoder.preprocess(obs))
    neglogp = -dist.log_prob(policy.policy_action(actions)).mean()
    if isinstance(dist, TanhGaussian):
        entropy = -dist.sample_with_log_prob()[1].mean() if ent_weight else torch.zeros(())
    else:
        entropy = dist.entropy().mean()
    loss = neglogp - ent_weight * entropy
    l2 = torch.zeros(())
    if l2_weight:
        l2 = sum(p.square().sum() for p in policy.fitted_parameters()) / 2
        loss = loss + l2_weight * l2
    return loss, {"neglogp": neglogp.detach(), "entropy": entropy.detach(), "l2": l2.detach()}


@torch.no_grad()
def action_agreement(policy: ClonedPolicy, obs: torch.Tensor, actions: torch.Tensor) -> dict[str, float]:
    """How the policy's deterministic actions agree with the expert's: accuracy (discrete) or the
    mean squared error in the env's action units (Box)."""
    dist = policy.distribution(policy.encoder.preprocess(obs))
    mode = dist.mode()
    if not policy.box:
        return {"accuracy": float((mode == actions).float().mean())}
    if policy.scale is not None:  # unit box -> env units
        mode = policy.low + (mode + 1.0) * 0.5 * (policy.high - policy.low)
    return {"action_mse": float((mode - actions).square().mean())}


def demonstration_tensors(policy: ClonedPolicy, obs: np.ndarray, actions: np.ndarray, update_stats: bool = False
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(obs, actions) tensors of demonstrations on the policy's device (a dataset is small next to a
    GPU's memory: minibatches need no copy). The observations stay raw: with `update_stats` they
    move the standardization's statistics, which every minibatch then applies (DAgger's statistics
    follow its aggregate as it grows beyond the expert's own states)."""
    x = policy.encoder.preprocess(obs, update_stats=update_stats)  # (for the statistics and the device)
    raw = torch.as_tensor(obs, dtype=torch.float32, device=x.device)
    return raw, torch.as_tensor(actions, dtype=torch.float32 if policy.box else torch.int64, device=x.device)


def load_expert(run_dir: str | os.PathLike, env_agent: Agent) -> Agent:
    """The agent of a trained run (`expert=RUN_DIR`), checked to act in `env_agent`'s env."""
    if not run_dir:
        raise ConfigError(f"{env_agent.algo} asks an expert for labels: pass --set expert=RUN_DIR (any trained ascent run)")
    expert = load_agent(RunDirectory(run_dir).trained_model())  # (on the env it was trained on)
    if expert.envs.observation_space != env_agent.envs.observation_space or \
            expert.envs.action_space != env_agent.envs.action_space:
        raise ConfigError(f"the expert {run_dir} acts in {expert.env_id} ({expert.envs.observation_space} -> "
                          f"{expert.envs.action_space}), not in this env ({env_agent.envs.observation_space} -> "
                          f"{env_agent.envs.action_space})")
    return expert


def best_state(module: nn.Module) -> dict[str, Any]:
    """A detached copy of a module's state (the best weights early stopping returns to)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}

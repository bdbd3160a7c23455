"""One-step actor-critic: the policy gradient weighted by a critic learned online by TD(0)
(Sutton & Barto 2018, section 13.5; the Q-critic form is Konda & Tsitsiklis 2000).

After EVERY step of the n_envs environments (n_envs transitions s, a, r, s'), one critic update and
one actor update, each on exactly those transitions; nothing is stored:

  critic = "v":  delta = r + gamma (1 - terminated) V(s') - V(s)          TD(0) on the state value
                 critic loss 1/2 delta^2 (target detached), actor weight delta
  critic = "q":  Q(s, a) by on-policy TD(0):
                   Discrete: expected SARSA, target r + gamma (1 - terminated) sum_a' pi(a'|s') Q(s', a')
                   Box:      SARSA, target r + gamma (1 - terminated) Q(s', a'), a' ~ pi(.|s')
                 critic loss 1/2 (target - Q(s, a))^2, actor weight Q(s, a) - V(s) with advantage=True
                 (V(s) = sum_a pi(a|s) Q(s, a) for Discrete; Q(s, a~) with a fresh a~ ~ pi(.|s) for Box),
                 Q(s, a) with advantage=False

  actor loss = -log pi(a|s) * weight (weight detached) - ent_coef * H[pi(.|s)]

Truncation is not termination: s' is the final observation of a truncated episode, whose value is
bootstrapped; only `terminated` zeroes V(s'). The autoreset step of next-step-autoreset envs
(step.valid False) is not a transition and is masked out of both losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from ascent.core.agent import Agent
from ascent.core.config import NetworkConfig, param, schedule
from ascent.envs.vector import Step
from ascent.errors import EnvError
from ascent.nets.layers import MLP
from ascent.nets.normalize import RewardScaler
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic

CRITICS = ("v", "q")


@dataclass
class ACConfig(NetworkConfig):
    n_envs: int = param(8, "number of parallel environments (one update per step of all of them)")
    log_interval: int = param(100, "iterations per row of metrics (an iteration is one env step)")
    critic: str = param("v", "v: state value, TD(0) | q: action value, (expected) SARSA", choices=CRITICS)
    advantage: bool = param(True, "critic=q: weight the actor by Q(s,a) - V(s) instead of Q(s,a)")
    # Two timescales (Konda & Tsitsiklis): the actor moves slower than the critic it follows. With
    # equal steps (1e-3) the policy collapsed onto one action on 2 of 3 CartPole seeds (q critic).
    learning_rate: float | str = param(1e-4, "Adam step size of the actor; 'lin_X' decays linearly from X to 0",
                                       schedule=True)
    vf_learning_rate: float | str = param(1e-3, "Adam step size of the critic; 'lin_X' decays linearly from X to 0",
                                          schedule=True)
    ent_coef: float = param(0.0, "entropy bonus coefficient", range=(0.0, math.inf))
    max_grad_norm: float = param(0.5, "gradient-norm clip, for the actor and the critic separately",
                                 range=(0.0, math.inf), low_open=True)
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy (Box actions)")


def next_obs(step: Step) -> np.ndarray:
    """s' of each env's transition: the final observation where the episode was truncated and the env
    reset in the same step (bootstrap from it), else the observation the step returned."""
    return step.obs if step.final_obs is None else step.final_obs


def td_target(reward: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """r + gamma (1 - terminated) v', all (N,): a terminated episode has no value after it, a truncated
    one keeps v' = V(final observation)."""
    return reward + gamma * (1.0 - terminated.float()) * next_value


class QCritic(torch.nn.Module):
    """Q(s, .) with one output per action (Discrete), or Q(s, a) as an MLP on [x, a] (1-D Box)."""

    def __init__(self, obs_dim: int, action_space: gym.Space, net_arch, activation: str, ortho_init: bool):
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.discrete = True
            self.net = MLP(obs_dim, net_arch, int(action_space.n), activation, 1.0, ortho_init)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.discrete = False
            self.net = MLP(obs_dim + action_space.shape[0], net_arch, 1, activation, 1.0, ortho_init)
        else:
            raise EnvError(f"critic='q' supports Discrete and 1-D Box actions, not {action_space}; use critic='v'")

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q(s, a), (B,)."""
        if self.discrete:
            return self.net(x).gather(1, action.long().unsqueeze(1)).squeeze(1)
        return self.net(torch.cat([x, action], 1)).squeeze(1)


class AC(Agent):
    """One-step TD actor-critic, online over a batch of vectorized envs."""

    algo = "ac"
    Config = ACConfig

    def setup(self) -> None:
        c = self.config
        # With critic="q" the policy's own V head is left unused; the actor's parameters are the same.
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c,
                                              log_std_init=c.log_std_init)
        if c.critic == "q":
            self.critic = QCritic(self.policy.encoder.dim, self.envs.action_space, c.net_arch, c.activation, c.ortho_init)
            critic_params = list(self.critic.parameters())
        else:
            critic_params = self.policy.critic_parameters()
        self.actor_step = OptimizerStep(self.policy.actor_parameters(), schedule(c.learning_rate, 0.0),
                                        max_grad_norm=c.max_grad_norm, flat=False)
        self.critic_step = OptimizerStep(critic_params, schedule(c.vf_learning_rate, 0.0),
                                         max_grad_norm=c.max_grad_norm, flat=False)
        self.reward_scaler = RewardScaler(c.n_envs, c.gamma) if c.normalize_reward else None

    def modules(self) -> dict:
        mods = {"policy": self.policy, "optimizer": self.actor_step.optimizer,
                "critic_optimizer": self.critic_step.optimizer}
        return mods | ({"critic": self.critic} if self.config.critic == "q" else {})

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        # 1. One step of every env: s, a ~ pi(.|s), r, s'.
        x = self.policy.encoder.preprocess(self.obs, update_stats=True)  # (N, d)
        with torch.no_grad():
            action = self.policy.distribution(x).sample()
        step = self.envs.step(self.policy.to_env_action(action))
        self.num_steps += c.n_envs
        if step.episodes:
            self.record_episodes(step.episodes)
        self.obs = step.obs
        reward = step.reward if self.reward_scaler is None else self.reward_scaler(step.reward, step.terminated | step.truncated)
        if not step.valid.any():  # only autoreset steps: no transition to learn from
            return {}
        on = x.device  # the env's answers meet the networks there
        batch = {"x": x, "action": action, "reward": torch.as_tensor(reward, device=on),
                 "next_x": self.policy.encoder.preprocess(next_obs(step)),  # (N, d)
                 "terminated": torch.as_tensor(step.terminated, device=on),
                 "valid": torch.as_tensor(step.valid, device=on).float()}
        # 2. The losses, then one step of each optimizer on its own loss.
        critic_loss, actor_loss, metrics = self.losses(batch)
        self.critic_step.lr = schedule(c.vf_learning_rate, self.progress)
        self.critic_step(critic_loss)
        self.actor_step.lr = schedule(c.learning_rate, self.progress)
        self.actor_step(actor_loss)
        return metrics

    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(critic loss, actor loss, metrics) on one step's transitions, each loss averaged over the
        valid ones. The critic's loss reaches only the critic, the actor's only the actor."""
        c = self.config
        valid = batch["valid"]  # (N,) 1.0 for transitions, 0.0 for autoreset steps

        def mean(v: torch.Tensor) -> torch.Tensor:
            return (v * valid).sum() / valid.sum()

        dist = self.policy.distribution(batch["x"])
        if c.critic == "v":
            value = self.policy.value(batch["x"])
            with torch.no_grad():
                target = td_target(batch["reward"], self.policy.value(batch["next_x"]), batch["terminated"], c.gamma)
            delta = target - value
            critic_loss = mean(0.5 * delta.square())
            # The TD error is an unbiased estimate of the advantage A(s, a) when V is the true value:
            # E[r + gamma V(s') | s, a] - V(s) = Q(s, a) - V(s).
            weight = delta.detach()
        else:
            q = self.critic(batch["x"], batch["action"])
            with torch.no_grad():
                target = td_target(batch["reward"], self.value_from_q(batch["next_x"]), batch["terminated"], c.gamma)
                weight = q - self.value_from_q(batch["x"]) if c.advantage else q.detach()
            critic_loss = mean(0.5 * (target - q).square())
        entropy = mean(dist.entropy())
        policy_loss = -mean(dist.log_prob(batch["action"]) * weight)  # policy gradient theorem
        actor_loss = policy_loss - c.ent_coef * entropy
        names = ("critic_loss", "policy_loss", "entropy", "weight")
        metrics = dict(zip(names, torch.stack([critic_loss, policy_loss, entropy, mean(weight)]).detach().tolist()))
        return critic_loss, actor_loss, metrics

    @torch.no_grad()
    def value_from_q(self, x: torch.Tensor) -> torch.Tensor:
        """V(s) = E_{a ~ pi(.|s)} Q(s, a), without gradient: exactly sum_a pi(a|s) Q(s, a) for Discrete
        actions (expected SARSA when taken at s'), one sample Q(s, a~), a~ ~ pi(.|s), for Box (SARSA at s';
        as a baseline at s the fresh a~ is independent of the action taken, so the gradient stays unbiased)."""
        dist = self.policy.distribution(x)
        if self.critic.discrete:
            return (dist.logits.exp() * self.critic.net(x)).sum(1)
        return self.critic(x, dist.sample())

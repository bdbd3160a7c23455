"""What the adversarial imitation algorithms (GAIL, AIRL) share: the generator (ascent's own PPO or
TRPO, its rollouts relabelled with a learned reward), the discriminator's inputs, its loss and
gradient penalty, the reward forms, and absorbing states.

Termination and the reward (Kostrikov et al. 2019, "Discriminator-Actor-Critic", section 4.2): an
episode that terminates gets no more reward, so a reward that is positive everywhere (-log(1-D))
pays for surviving and one that is negative everywhere (log D) pays for dying, whatever the expert
did: CartPole would be "imitated" by surviving even from a random expert. With `absorbing=True`
(the default) a termination leads to an absorbing state s_a that loops on itself forever; the
discriminator sees it (in the expert's data once per terminated expert episode, in the policy's
once per terminated policy episode) and learns a reward for it like for any other state, and the
generator bootstraps a terminated step from V(s_a) = r(s_a) / (1 - gamma) instead of 0. Dying is
then as good as the expert makes it: an expert that never terminates makes it bad, a random expert
that always does makes it good. Truncation stays truncation: it bootstraps from V(final obs).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ascent.algorithms.common.onpolicy import collect_rollout
from ascent.algorithms.common.returns import gae
from ascent.algorithms.ppo import PPO
from ascent.algorithms.trpo import TRPO
from ascent.buffers.rollout import RolloutStorage, to_device
from ascent.core.agent import Agent
from ascent.core.config import NetworkConfig, parse_set, param
from ascent.errors import ConfigError, EnvError
from ascent.imitation.datasets import Demonstrations
from ascent.nets.layers import MLP
from ascent.nets.normalize import RunningMeanStd

GENERATORS = {"ppo": PPO, "trpo": TRPO}
REWARD_FORMS = ("softplus", "log_d", "logit")


@dataclass
class AdversarialConfig(NetworkConfig):
    """Settings of GAIL and AIRL: the demonstrations, the generator, the discriminator."""

    n_envs: int = param(1, "parallel envs of the generator's rollouts; 1: the generator's own (its preset's, or "
                        "generator_set's n_envs)", positive=True)
    dataset: str = param("", "demonstrations: a Minari dataset directory or the id of a local Minari dataset")
    n_episodes: int = param(0, "use the dataset's first this many episodes (0: all)", nonnegative=True)
    generator: str = param("ppo", "ppo | trpo: the policy optimizer, trained on the learned reward",
                           choices=tuple(GENERATORS))
    generator_preset: str = param("", "the generator's preset ('': the one made for the env, as `ascent train` "
                                  "picks it; none: its defaults)")
    generator_set: str = param("", "the generator's hyperparameters, 'key=value;key=value' (e.g. 'n_steps=512;n_epochs=5')")
    absorbing: bool = param(True, "absorbing states at termination (Kostrikov et al. 2019); False: a terminated "
                            "step is worth 0 after it, which biases the agent to survive or to die by the reward's sign")
    net_arch: tuple = param((64, 64), "hidden layer widths of the discriminator")
    activation: str = param("relu")
    disc_learning_rate: float = param(3e-4, "Adam step size of the discriminator", range=(0.0, math.inf), low_open=True)
    n_disc_updates: int = param(4, "discriminator steps per iteration (one rollout)", positive=True)
    disc_batch_size: int = param(256, "expert pairs and as many policy pairs per discriminator step", positive=True)
    grad_penalty: float = param(0.0, "weight of the gradient penalty (||grad D(x_hat)|| - 1)^2 on expert-policy "
                                "interpolates (Gulrajani et al. 2017; 10 in DAC; 0: none)", range=(0.0, math.inf))
    log_every_steps: int = param(0)


class PairEncoder(nn.Module):
    """The discriminator's input: the observation standardized by running statistics of the expert's
    and the policy's observations (as the `imitation` library's RunningNorm; fixed where a learned
    reward is only read),
    the action (one-hot, or scaled to [-1, 1] by the bounds), and a flag that is 1 for the absorbing
    state (whose observation and action are zeros)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, demos: Demonstrations | None):
        super().__init__()
        if not isinstance(observation_space, gym.spaces.Box):
            raise EnvError(f"the discriminator reads Box observations; this env has {observation_space}")
        self.obs_dim = int(np.prod(observation_space.shape))
        if isinstance(action_space, gym.spaces.Discrete):
            self.n_actions, self.action_dim = int(action_space.n), int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1 and \
                np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all():
            self.n_actions, self.action_dim = 0, int(action_space.shape[0])
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))
        else:
            raise EnvError(f"the discriminator reads Discrete or bounded 1-D Box actions; this env has {action_space}")
        self.normalizer = RunningMeanStd((self.obs_dim,), clip=10.0)
        if demos is not None:
            self.update(torch.as_tensor(demos.obs))
        self.state_dim = self.obs_dim + 1
        self.dim = self.obs_dim + self.action_dim + 1

    def update(self, obs: torch.Tensor) -> None:
        """Move the standardization's statistics with observations seen (the expert's, each rollout's)."""
        self.normalizer.update(obs.reshape(len(obs), -1).float())

    def states(self, obs: torch.Tensor, absorbing: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim + 1): standardized obs, clipped to +-10 (zeros where absorbing), and the absorbing flag."""
        flag = absorbing.float().unsqueeze(-1)
        z = self.normalizer(obs.reshape(len(obs), -1).float())
        return torch.cat([z * (1 - flag), flag], -1)

    def actions(self, actions: torch.Tensor, absorbing: torch.Tensor) -> torch.Tensor:
        if self.n_actions:
            a = F.one_hot(actions.long().reshape(-1), self.n_actions).float()
        else:
            a = 2.0 * (actions.float().clamp(self.low, self.high) - self.low) / (self.high - self.low) - 1.0
        return a * (1 - absorbing.float().unsqueeze(-1))

    def pairs(self, obs: torch.Tensor, actions: torch.Tensor, absorbing: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.states(obs, absorbing), self.actions(actions, absorbing)], -1)


def scalar_net(in_dim: int, hidden: tuple, activation: str) -> MLP:
    """in_dim -> hidden... -> 1 (a discriminator's logit, AIRL's g and h), torch's default init."""
    return MLP(in_dim, hidden, 1, activation, init="torch_default")


def discriminator_loss(expert_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of D = sigmoid(logit) = P(expert | input) on a balanced batch:
      -E_expert[log D] - E_policy[log(1 - D)]    (Ho & Ermon 2016, eq. 17, with D's label flipped)"""
    return F.softplus(-expert_logits).mean() + F.softplus(policy_logits).mean()


def gradient_penalty(logit_fn, expert: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x logit(x_hat)||_2 - 1)^2] at x_hat = e x_expert + (1 - e) x_policy, e ~ U(0, 1) from
    torch's (checkpointed) stream (Gulrajani et al. 2017; on GAIL's discriminator: Kostrikov et al. 2019)."""
    eps = torch.rand(len(expert), 1)
    x_hat = (eps * expert + (1 - eps) * policy).requires_grad_(True)
    grad, = torch.autograd.grad(logit_fn(x_hat).sum(), x_hat, create_graph=True)
    return (grad.norm(dim=-1) - 1).square().mean()


def reward_from_logits(logits: torch.Tensor, form: str) -> torch.Tensor:
    """The generator's reward from D = sigmoid(logit):
      softplus  -log(1 - D) >= 0   (GAIL as commonly run: Ho & Ermon's cost log D(policy) turned around)
      log_d     log D <= 0
      logit     log D - log(1 - D) = logit (AIRL's reward; for GAIL the sum of the two above)"""
    if form == "softplus":
        return F.softplus(logits)
    if form == "log_d":
        return -F.softplus(-logits)
    return logits


class Generator:
    """ascent's PPO or TRPO as the policy optimizer of an adversarial imitation agent: its rollouts
    are collected as its own, their rewards replaced by the learned one, and its own update applied
    (PPO.update / TRPO.update)."""

    def __init__(self, owner: Agent, c: AdversarialConfig):
        try:
            overrides = parse_set([p for p in c.generator_set.split(";") if p.strip()])
        except ConfigError as err:
            raise ConfigError(f"generator_set: {err}") from None
        for fixed in ("device", "normalize_obs"):
            if fixed in overrides:
                raise ConfigError(f"generator_set may not set {fixed}: the generator runs on the agent's device, and "
                                  "the discriminator standardizes observations itself (normalize_obs stays false)")
        cls = GENERATORS[c.generator]
        if c.n_envs != 1:
            overrides.setdefault("n_envs", c.n_envs)
        self.agent = cls(owner.env_source(), seed=owner.seed, preset=c.generator_preset or None, verbose=0,
                         device=c.device, **overrides)
        g = self.agent
        # The owner steps the generator's envs and draws its actions from its own (checkpointed) stream.
        owner.envs.close()
        owner.envs, g.rng = g.envs, owner.rng
        owner.config = dataclasses.replace(owner.config, n_envs=g.config.n_envs)  # (recorded as it ran)
        if g.config.normalize_obs:
            raise ConfigError("the generator's preset normalizes observations; the discriminator reads raw ones: "
                              "pick another generator_preset or none")
        if not g.policy.encoder.flattens_only:
            raise EnvError("adversarial imitation reads flat Box observations")
        self.storage = RolloutStorage.for_policy(g.policy, g.config.n_steps, g.config.n_envs, keep_final_x=True)
        self.gamma = g.config.gamma

    def modules(self) -> dict:
        mods = {f"generator.{k}": v for k, v in self.agent.modules().items()}
        if self.agent.reward_scaler is not None:
            mods["generator.reward_scaler"] = self.agent.reward_scaler
        return mods

    def rollout(self, owner: Agent) -> dict[str, torch.Tensor]:
        """n_steps x n_envs steps of the generator's policy. Returns the (T, N) transitions: obs, actions
        (as the env received them), next_obs (the final observation where an episode was truncated;
        the next one otherwise; meaningless where terminated: the absorbing state follows), terminated,
        valid; the true env episodes go to `owner`'s statistics."""
        g, s = self.agent, self.storage
        g.target_steps = owner.target_steps  # (the generator's schedules follow the owner's progress)
        g.num_steps = owner.num_steps
        owner.obs, self.last_value = collect_rollout(owner.envs, g.policy, s, owner.obs, owner.record_episodes, None,
                                                     owner.rng)
        T, N = s.n_steps, s.n_envs
        owner.num_steps += T * N
        last_x = g.policy.encoder.preprocess(owner.obs).cpu()
        next_x = torch.cat([s.x[1:], last_x.unsqueeze(0)], 0)
        next_x = torch.where(s.bootstrap.reshape(T, N, *[1] * (s.x.dim() - 2)), s.final_x, next_x)
        env_actions = torch.as_tensor(g.policy.to_env_action(s.actions.numpy()))
        return {"obs": s.x, "actions": env_actions, "next_obs": next_x, "terminated": s.terminated.clone(),
                "valid": s.valid.clone()}

    def update(self, rewards: torch.Tensor, absorbing_value: torch.Tensor | None) -> dict[str, float]:
        """GAE(lambda) on the learned `rewards` (T, N) and the generator's own update. With absorbing
        states a terminated step bootstraps from `absorbing_value` = V(s_a) = r(s_a) / (1 - gamma)."""
        g, s = self.agent, self.storage
        if g.reward_scaler is not None:  # (its normalize_reward: the learned reward is scaled as the env's would be)
            rewards = torch.stack([torch.as_tensor(g.reward_scaler(r.numpy(), d.numpy()))
                                   for r, d in zip(rewards, s.dones)])
        next_values, terminated = s.next_values(self.last_value), s.terminated
        if absorbing_value is not None:
            next_values = torch.where(terminated, absorbing_value, next_values)
            terminated = torch.zeros_like(terminated)
        advantages = gae(rewards, s.values, next_values, terminated, s.dones, self.gamma, g.config.gae_lambda)
        batch = s.flatten(advantages=advantages, returns=advantages + s.values)
        with g.on_device():
            return {f"gen_{k}": v for k, v in g.update(to_device(batch, g.device)).items()}


def expert_pairs(demos: Demonstrations, absorbing: bool) -> dict[str, torch.Tensor]:
    """The expert's transitions as tensors (obs, actions, next_obs, terminated, is_absorbing), with one
    absorbing-state row per terminated episode where `absorbing` (its next state: absorbing too)."""
    out = {"obs": torch.as_tensor(demos.obs), "actions": torch.as_tensor(demos.actions),
           "next_obs": torch.as_tensor(demos.next_obs), "terminated": torch.as_tensor(demos.terminated),
           "is_absorbing": torch.zeros(len(demos), dtype=torch.bool)}
    n_abs = int(demos.terminated.sum()) if absorbing else 0
    if n_abs:
        out = append_absorbing(out, n_abs)
    return out


def policy_pairs(t: dict[str, torch.Tensor], absorbing: bool, encoder: PairEncoder | None = None) -> dict[str, torch.Tensor]:
    """A rollout's valid transitions, flat, with one absorbing-state row per terminated step; the
    `encoder`'s statistics see their observations."""
    valid = t["valid"]
    out = {"obs": t["obs"][valid], "actions": t["actions"][valid], "next_obs": t["next_obs"][valid],
           "terminated": t["terminated"][valid]}
    out["is_absorbing"] = torch.zeros(len(out["obs"]), dtype=torch.bool)
    if encoder is not None:
        encoder.update(out["obs"])
    n_abs = int(out["terminated"].sum()) if absorbing else 0
    if n_abs:
        out = append_absorbing(out, n_abs)
    return out


def append_absorbing(pairs: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    rows = {"obs": torch.zeros((n, *pairs["obs"].shape[1:]), dtype=pairs["obs"].dtype),
            "actions": torch.zeros((n, *pairs["actions"].shape[1:]), dtype=pairs["actions"].dtype),
            "next_obs": torch.zeros((n, *pairs["next_obs"].shape[1:]), dtype=pairs["next_obs"].dtype),
            "terminated": torch.ones(n, dtype=torch.bool), "is_absorbing": torch.ones(n, dtype=torch.bool)}
    return {k: torch.cat([pairs[k], rows[k]]) for k in pairs}


def flat_rows(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A rollout's (T, N) transitions as (T * N) rows (invalid steps included: their rewards are unused)."""
    T, N = t["valid"].shape
    rows = {k: t[k].reshape(T * N, *t[k].shape[2:]) for k in ("obs", "actions", "next_obs", "terminated")}
    rows["is_absorbing"] = torch.zeros(T * N, dtype=torch.bool)
    return rows


def absorbing_row(like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One absorbing-state row (its next state absorbing too), shaped as the rows of `like`."""
    return {"obs": torch.zeros_like(like["obs"][:1]), "actions": torch.zeros_like(like["actions"][:1]),
            "next_obs": torch.zeros_like(like["next_obs"][:1]), "terminated": torch.ones(1, dtype=torch.bool),
            "is_absorbing": torch.ones(1, dtype=torch.bool)}


def sample_rows(pairs: dict[str, torch.Tensor], n: int, rng: np.random.Generator, gamma: float) -> dict[str, torch.Tensor]:
    """n rows drawn with replacement, an absorbing-state row weighted as the absorbing tail's mass in
    the discounted occupancy measure, sum_k gamma^k = 1 / (1 - gamma) steps' worth (a step of an
    episode counts 1, as every implementation samples them): drawn as often as the discriminator
    must see it, or the generator bootstraps a termination from a reward nobody trained."""
    is_abs = pairs["is_absorbing"].numpy()
    if not is_abs.any():
        idx = rng.integers(len(is_abs), size=n)
    else:
        weights = np.where(is_abs, 1.0 / (1.0 - gamma), 1.0)
        idx = rng.choice(len(is_abs), size=n, p=weights / weights.sum())
    idx = torch.from_numpy(idx)
    return {k: v[idx] for k, v in pairs.items()}

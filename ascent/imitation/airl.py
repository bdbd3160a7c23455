"""Adversarial inverse reinforcement learning (Fu, Luo & Levine 2018, arXiv:1710.11248).

GAIL's discriminator with the structure of a maximum-entropy IRL solution:
  D(s, a, s') = exp f(s, a, s') / (exp f(s, a, s') + pi(a|s)),  so  logit D = f(s, a, s') - log pi(a|s)
  f(s, a, s') = g(s) + gamma h(s') - h(s)                          (section 5, the disentangled form)
g is the reward approximator (of the state only, `state_only=True`, which is what makes it
disentangled from the dynamics: Theorem 5.1), h a shaping potential that absorbs what depends on
the dynamics. D is trained with the same cross-entropy as GAIL's (balanced expert and policy
pairs), and the generator (ascent's PPO or TRPO) maximizes log D - log(1 - D) = f - log pi.
The learned reward g is saved with the discriminator; `reward_from=RUN` trains a fresh generator,
from scratch, on r(s) = g(s) of that AIRL run alone: no discriminator, no demonstrations (reward
transfer, section 6.1). Terminations: absorbing states, as GAIL (ascent.imitation.adversarial):
h(s') and g of a terminated step's next state are the absorbing state's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ascent.core.agent import Agent
from ascent.core.checkpoint import load_checkpoint
from ascent.core.config import param
from ascent.core.run import RunDirectory
from ascent.errors import CheckpointError
from ascent.imitation.adversarial import (AdversarialConfig, Generator, PairEncoder, absorbing_row, discriminator_loss,
                                          expert_pairs, flat_rows, gradient_penalty, policy_pairs, sample_rows,
                                          scalar_net)
from ascent.imitation.datasets import dataset_for
from ascent.nets.optim import OptimizerStep


@dataclass
class AIRLConfig(AdversarialConfig):
    state_only: bool = param(True, "g(s) of the state only (disentangled, transferable); False: g(s, a)")
    reward_from: str = param("", "an AIRL run directory: train a fresh generator on its learned reward g alone")


class AIRLDiscriminator(nn.Module):
    """f(s, a, s') = g(s) + gamma h(s') - h(s) on PairEncoder's inputs."""

    def __init__(self, encoder: PairEncoder, hidden: tuple, activation: str, state_only: bool, gamma: float):
        super().__init__()
        self.encoder, self.state_only, self.gamma = encoder, state_only, gamma
        self.g = scalar_net(encoder.state_dim if state_only else encoder.dim, hidden, activation)
        self.h = scalar_net(encoder.state_dim, hidden, activation)

    def reward_inputs(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.state_only:
            return self.encoder.states(rows["obs"], rows["is_absorbing"])
        return self.encoder.pairs(rows["obs"], rows["actions"], rows["is_absorbing"])

    def reward_of(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.g(inputs).squeeze(-1)

    def reward(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """g(s) (or g(s, a)): the learned reward."""
        return self.reward_of(self.reward_inputs(rows))

    def shaping(self, rows: dict[str, torch.Tensor], absorbing: bool) -> torch.Tensor:
        """gamma h(s') - h(s): s' is the absorbing state after a termination (absorbing=True), else
        h(s') counts 0 there."""
        enc = self.encoder
        h_s = self.h(enc.states(rows["obs"], rows["is_absorbing"])).squeeze(-1)
        ends = rows["terminated"] | rows["is_absorbing"]
        h_next = self.h(enc.states(rows["next_obs"], ends if absorbing else rows["is_absorbing"])).squeeze(-1)
        if not absorbing:
            h_next = h_next * (~rows["terminated"]).float()
        return self.gamma * h_next - h_s

    def forward(self, rows: dict[str, torch.Tensor], absorbing: bool) -> torch.Tensor:
        return self.reward(rows) + self.shaping(rows, absorbing)


class AIRL(Agent):
    """AIRL on ascent's PPO or TRPO; `reward_from=RUN`: a fresh generator on a learned reward."""

    algo = "airl"
    Config = AIRLConfig

    def setup(self) -> None:
        c = self.config
        self.generator = Generator(self, c)  # (checks the spaces before the dataset is read)
        self.transfer = bool(c.reward_from)
        demos = None if self.transfer else dataset_for(self, c.dataset, c.n_episodes)
        encoder = PairEncoder(self.envs.observation_space, self.envs.action_space, demos)
        self.discriminator = AIRLDiscriminator(encoder, c.net_arch, c.activation, c.state_only, self.generator.gamma)
        if self.transfer:
            self.discriminator.load_state_dict(learned_reward_state(c.reward_from, c))
            self.discriminator.requires_grad_(False)
        else:
            self.expert = expert_pairs(demos, c.absorbing)
            self.disc_step = OptimizerStep(self.discriminator, c.disc_learning_rate)

    def modules(self) -> dict:
        mods = {**self.generator.modules(), "discriminator": self.discriminator}
        if not self.transfer:
            mods["disc_optimizer"] = self.disc_step.optimizer
        return mods

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.generator.agent.act_batch(obs, deterministic)

    def log_pi(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """log pi(a|s) of the generator's current policy (0 for the absorbing state: one action)."""
        policy = self.generator.agent.policy
        actions = rows["actions"]
        if policy.action_kind == "box" and policy.squash:  # env actions -> the squashed distribution's (-1, 1)
            low, high = torch.as_tensor(policy.low), torch.as_tensor(policy.high)
            actions = 2.0 * (actions - low) / (high - low) - 1.0
        logp = policy.distribution(policy.encoder.preprocess(rows["obs"])).log_prob(actions)
        return torch.where(rows["is_absorbing"], torch.zeros_like(logp), logp)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        # 1. Experience from the generator's policy.
        t = self.generator.rollout(self)
        metrics: dict[str, float] = {}
        # 2. The discriminator logit f - log pi, expert pairs against the generator's (skipped in transfer).
        if not self.transfer:
            policy = policy_pairs(t, c.absorbing, self.discriminator.encoder)
            for _ in range(c.n_disc_updates):
                loss, terms = self.disc_loss(sample_rows(self.expert, c.disc_batch_size, self.rng, self.generator.gamma),
                                             sample_rows(policy, c.disc_batch_size, self.rng, self.generator.gamma))
                self.disc_step(loss)
            metrics.update({k: v.item() for k, v in terms.items()})
        # 3. The reward: log D - log(1 - D) = f - log pi while learning; g alone in transfer.
        with torch.no_grad():
            rows = flat_rows(t)
            absorbing = absorbing_row(rows)
            if self.transfer:
                rewards, r_abs = self.discriminator.reward(rows), self.discriminator.reward(absorbing)[0]
            else:
                rewards = self.discriminator(rows, c.absorbing) - self.log_pi(rows)
                r_abs = self.discriminator(absorbing, c.absorbing)[0]  # f(s_a, ., s_a) = g(s_a) + (gamma - 1) h(s_a)
            rewards = rewards.reshape(t["valid"].shape)
            absorbing_value = r_abs / (1.0 - self.generator.gamma) if c.absorbing else None
        metrics.update(self.generator.update(rewards, absorbing_value))
        metrics["learned_reward"] = rewards[t["valid"]].mean().item()
        if c.absorbing:
            metrics["absorbing_reward"] = r_abs.item()
        return metrics

    def disc_loss(self, expert: dict[str, torch.Tensor], policy: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of D with logit f(s, a, s') - log pi(a|s) (+ the gradient penalty on g's input)."""
        absorbing = self.config.absorbing
        with torch.no_grad():
            logpi_e, logpi_p = self.log_pi(expert), self.log_pi(policy)
        logits_e = self.discriminator(expert, absorbing) - logpi_e
        logits_p = self.discriminator(policy, absorbing) - logpi_p
        loss = discriminator_loss(logits_e, logits_p)
        terms = {"disc_loss": loss.detach(), "disc_expert_accuracy": (logits_e > 0).float().mean(),
                 "disc_policy_accuracy": (logits_p < 0).float().mean()}
        if self.config.grad_penalty:  # on g's input (h only shapes)
            disc = self.discriminator
            gp = gradient_penalty(disc.reward_of, disc.reward_inputs(expert), disc.reward_inputs(policy))
            loss = loss + self.config.grad_penalty * gp
            terms["grad_penalty"] = gp.detach()
        return loss, terms


def learned_reward_state(run_dir: str, c: AIRLConfig) -> dict:
    """The discriminator state (g, h, the input standardization) of an AIRL run, checked to fit `c`."""
    payload = load_checkpoint(RunDirectory(run_dir).trained_model())
    if payload.get("algo") != "airl":
        raise CheckpointError(f"reward_from={run_dir} is a {payload.get('algo')!r} run; it must be an airl run (its "
                              "learned reward g is what the fresh agent trains on)")
    source = payload["config"]
    for key in ("net_arch", "activation", "state_only"):
        mine, theirs = getattr(c, key), source.get(key)
        if (tuple(theirs) if isinstance(theirs, list) else theirs) != mine:
            raise CheckpointError(f"reward_from={run_dir} was trained with {key}={theirs!r}; set the same here "
                                  f"(--set {key}=...)")
    return payload["modules"]["discriminator"]

"""Generative adversarial imitation learning (Ho & Ermon 2016, arXiv:1606.03476, Algorithm 1).

The saddle point of occupancy-measure matching with a discriminator D(s, a) = P(expert | s, a):
  min_pi max_D  E_expert[log D(s, a)] + E_pi[log(1 - D(s, a))]  (- lambda H(pi))
One iteration:
  1. a rollout of the generator (ascent's PPO or TRPO: `generator=ppo|trpo`; its own hyperparameters
     from its preset for the env and `generator_set`);
  2. `n_disc_updates` steps of D on balanced batches, `disc_batch_size` expert pairs and as many of
     the rollout's (`adversarial.discriminator_loss`, eq. 17; an optional gradient penalty);
  3. the env's reward replaced by r(s, a) from the updated D (`reward`: -log(1 - D), log D, or
     log D - log(1 - D)), and the generator's own update on it (PPO.update / TRPO.update).
Terminations: absorbing states (`absorbing=True`, see ascent.imitation.adversarial), so that neither
reward form leaks "survive" or "die" on its own: a random expert is not imitated by balancing.
`--steps` counts the generator's env steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ascent.core.agent import Agent
from ascent.core.config import param
from ascent.imitation.adversarial import (REWARD_FORMS, AdversarialConfig, Generator, PairEncoder, absorbing_row,
                                          discriminator_loss, expert_pairs, flat_rows, gradient_penalty, policy_pairs,
                                          reward_from_logits, sample_rows, scalar_net)
from ascent.imitation.datasets import dataset_for
from ascent.nets.optim import OptimizerStep


@dataclass
class GAILConfig(AdversarialConfig):
    reward: str = param("softplus", "softplus: -log(1-D) | log_d: log D | logit: log D - log(1-D)", choices=REWARD_FORMS)


class Discriminator(torch.nn.Module):
    """logit D(s, a) on PairEncoder's input."""

    def __init__(self, encoder: PairEncoder, hidden: tuple, activation: str):
        super().__init__()
        self.encoder = encoder
        self.net = scalar_net(encoder.dim, hidden, activation)

    def logits_of(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs).squeeze(-1)

    def forward(self, pairs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.logits_of(self.encoder.pairs(pairs["obs"], pairs["actions"], pairs["is_absorbing"]))


class GAIL(Agent):
    """GAIL on ascent's PPO or TRPO, with absorbing states."""

    algo = "gail"
    Config = GAILConfig

    def setup(self) -> None:
        c = self.config
        self.generator = Generator(self, c)  # (checks the spaces before the dataset is read)
        demos = dataset_for(self, c.dataset, c.n_episodes)
        self.expert = expert_pairs(demos, c.absorbing)
        encoder = PairEncoder(self.envs.observation_space, self.envs.action_space, demos)
        self.discriminator = Discriminator(encoder, c.net_arch, c.activation)
        self.disc_step = OptimizerStep(self.discriminator, c.disc_learning_rate)

    def modules(self) -> dict:
        return {**self.generator.modules(), "discriminator": self.discriminator, "disc_optimizer": self.disc_step.optimizer}

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.generator.agent.act_batch(obs, deterministic)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        # 1. Experience from the generator's policy.
        t = self.generator.rollout(self)
        policy = policy_pairs(t, c.absorbing, self.discriminator.encoder)
        # 2. The discriminator: expert pairs against the generator's, balanced.
        for _ in range(c.n_disc_updates):
            expert_batch = sample_rows(self.expert, c.disc_batch_size, self.rng, self.generator.gamma)
            policy_batch = sample_rows(policy, c.disc_batch_size, self.rng, self.generator.gamma)
            loss, terms = self.disc_loss(expert_batch, policy_batch)
            self.disc_step(loss)
        # 3. The learned reward replaces the env's; the generator's own update.
        with torch.no_grad():
            flat = flat_rows(t)
            rewards = reward_from_logits(self.discriminator(flat), c.reward).reshape(t["valid"].shape)
            absorbing_value = None
            if c.absorbing:  # V(s_a) = r(s_a) / (1 - gamma): the absorbing state loops on itself
                r_abs = reward_from_logits(self.discriminator(absorbing_row(flat)), c.reward)[0]
                absorbing_value = r_abs / (1.0 - self.generator.gamma)
        metrics = self.generator.update(rewards, absorbing_value)
        metrics.update({k: v.item() for k, v in terms.items()})
        metrics["learned_reward"] = rewards[t["valid"]].mean().item()
        if absorbing_value is not None:
            metrics["absorbing_reward"] = r_abs.item()
        return metrics

    def disc_loss(self, expert: dict[str, torch.Tensor], policy: dict[str, torch.Tensor]
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's cross-entropy (+ the gradient penalty), and its detached terms."""
        enc = self.discriminator.encoder
        x_expert = enc.pairs(expert["obs"], expert["actions"], expert["is_absorbing"])
        x_policy = enc.pairs(policy["obs"], policy["actions"], policy["is_absorbing"])
        logits_e, logits_p = self.discriminator.logits_of(x_expert), self.discriminator.logits_of(x_policy)
        loss = discriminator_loss(logits_e, logits_p)
        terms = {"disc_loss": loss.detach(),
                 "disc_expert_accuracy": (logits_e > 0).float().mean(), "disc_policy_accuracy": (logits_p < 0).float().mean()}
        if self.config.grad_penalty:
            gp = gradient_penalty(self.discriminator.logits_of, x_expert, x_policy)
            loss = loss + self.config.grad_penalty * gp
            terms["grad_penalty"] = gp.detach()
        return loss, terms


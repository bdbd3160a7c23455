"""The cross-entropy method (Rubinstein 1999) as policy search, in its two classic forms:

variant="episodes" (Lapan 2018, Deep Reinforcement Learning Hands-On, chapter 4): each iteration
plays n_episodes episodes with the stochastic policy pi_theta(a|s), keeps the elite episodes, whose
return R is at least the `percentile`-th percentile of the batch's, and fits the policy to the elites'
(s, a) pairs by maximum likelihood,
    theta <- argmax_theta sum_{(s, a) in elites} log pi_theta(a|s),
taking `gradient_steps` Adam steps on the loss -mean log pi (cross-entropy for Discrete actions,
the Gaussian log-likelihood, log-std included, for Box actions).

variant="parameters" (Szita & Lorincz 2006, "Learning Tetris Using the Noisy Cross-Entropy
Method"): a diagonal Gaussian N(mu, diag(sigma^2)) over the flat vector of the actor's weights
(torso and action head; not a Gaussian policy's log-std). Each iteration draws `population`
candidates theta_i ~ N(mu, sigma^2), scores each by the mean return of its deterministic policy (the
most likely action, or the Gaussian's mean) over episodes_per_candidate episodes, and refits to the
best elite_frac of them:
    mu <- mean_elites theta,   sigma^2 <- var_elites theta + Z_{t+1}        (refit_elites)
with the paper's decreasing extra noise Z_t = max(5 - t/10, 0), here noise_start max(1 - t /
noise_decay_iterations, 0), the same line at the paper's 5 and 50 on any scale of weights
(noise_decay_iterations=0: the paper's constant noise Z_t = noise_start); without it the variance
collapses onto the first elites found. The policy network holds mu: acting and evaluation use the
distribution's mean. The envs play the population's episodes as a queue, env i playing one
candidate's episode with its own weights (batched matmuls, `candidate_outputs`).

Returns are the undiscounted sums of rewards (the score CEM ranks by; gamma is unused). Every
iteration's episodes start from resets seeded by the agent's own stream, so a run resumes exactly.
(The policy network is ascent's ActorCritic; its value head is unused here.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ascent.algorithms.common.onpolicy import collect_agent_episodes
from ascent.core.agent import Agent
from ascent.core.config import NetworkConfig, param
from ascent.errors import ConfigError
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic

VARIANTS = ("episodes", "parameters")


@dataclass
class CEMConfig(NetworkConfig):
    variant: str = param("episodes", "episodes (fit the policy to the elite episodes) | parameters (a Gaussian over "
                         "the weights)", choices=VARIANTS)
    n_envs: int = param(16)
    net_arch: tuple = param((128,))  # Lapan's CartPole network: one hidden layer of 128 ReLU units
    activation: str = param("relu")
    # variant=episodes
    n_episodes: int = param(16, "episodes per iteration (variant=episodes)", positive=True)
    percentile: float = param(70.0, "elite episodes: return >= this percentile of the batch's", range=(0.0, 100.0))
    learning_rate: float = param(1e-2, "Adam step size of the maximum-likelihood fit", range=(0.0, math.inf),
                                 low_open=True)
    gradient_steps: int = param(4, "Adam steps on the elites per iteration (variant=episodes; Lapan takes 1)",
                                positive=True)
    # variant=parameters
    population: int = param(50, "candidate weight vectors per iteration (variant=parameters)", positive=True)
    elite_frac: float = param(0.2, "fraction of the population that refits the distribution", range=(0.0, 1.0),
                              low_open=True)
    episodes_per_candidate: int = param(1, "episodes that score a candidate (their mean return)", positive=True)
    init_std: float = param(0.1, "initial std of the Gaussian over the weights (its mean: the network's initial "
                            "weights)", range=(0.0, math.inf), low_open=True)
    noise_start: float = param(0.01, "extra variance added at the first refit (Szita & Lorincz's Z_t: 5 for Tetris)",
                               range=(0.0, math.inf))
    noise_decay_iterations: float = param(50.0, "iterations over which the extra variance decays linearly to 0: "
                                          "Z_t = noise_start max(1 - t / this, 0); 0: constant noise_start",
                                          range=(0.0, math.inf))

    def validate(self) -> None:
        super().validate()
        if self.normalize_reward:
            raise ConfigError("normalize_reward does not apply to CEM (it ranks episodes by their raw return)")
        if self.variant == "parameters" and n_elites(self) < 1:
            raise ConfigError(f"elite_frac * population = {self.elite_frac * self.population:g} keeps no elite; "
                              "raise elite_frac or population")


def n_elites(c: CEMConfig) -> int:
    """The elites of a population: elite_frac of it, rounded down (50 * 0.2 = 10)."""
    return int(c.elite_frac * c.population + 1e-9)  # (0.29 * 100 is 28.999...)


def refit_elites(elites: torch.Tensor, extra_noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The CE update of a diagonal Gaussian from elite samples (K, D): their mean and their variance
    (maximum likelihood, divided by K) plus the extra noise Z (Szita & Lorincz 2006, eq. 2 with noise)."""
    mean = elites.mean(0)
    return mean, (elites - mean).square().mean(0) + extra_noise


def extra_noise(c: CEMConfig, t: int) -> float:
    """Z_t = noise_start max(1 - t / noise_decay_iterations, 0) (constant noise_start for decay 0)."""
    if c.noise_decay_iterations == 0:
        return c.noise_start
    return c.noise_start * max(1.0 - t / c.noise_decay_iterations, 0.0)


def candidate_outputs(policy: ActorCritic, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The action head's output for row i of x (N, *x_shape) under the actor weights thetas[i] (N, D), laid
    out as parameters_to_vector lays out the torso's and the head's parameters (weight, bias per layer)."""
    layers = [*policy.actor_torso.layers, policy.action_head]
    h, at = policy.encoder.features(x).unsqueeze(1), 0  # (N, 1, in)
    for k, layer in enumerate(layers):
        n_out, n_in = layer.weight.shape
        w = thetas[:, at:at + n_out * n_in].view(-1, n_out, n_in)
        b = thetas[:, at + n_out * n_in:at + n_out * (n_in + 1)].unsqueeze(1)
        h, at = torch.baddbmm(b, h, w.transpose(1, 2)), at + n_out * (n_in + 1)  # h W^T + b, per row
        if k < policy.actor_torso.n_activated:
            h = policy.actor_torso.activation(h)
    return policy.mask_logits(h.squeeze(1), x)


class WeightDistribution(torch.nn.Module):
    """The diagonal Gaussian N(mean, diag(var)) over the actor's flat weights (variant=parameters)."""

    def __init__(self, mean: torch.Tensor, std: float):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("var", torch.full_like(mean, std * std))


class CEM(Agent):
    """The cross-entropy method: elite episodes (variant=episodes) or a Gaussian over the weights
    (variant=parameters)."""

    algo = "cem"
    Config = CEMConfig

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c)
        if c.variant == "episodes":
            self.fit_step = OptimizerStep(self.policy.actor_parameters(), c.learning_rate, flat=False)
        else:  # the searched weights: the actor's torso and head, in parameters_to_vector's order
            self.searched = [*self.policy.actor_torso.parameters(), *self.policy.action_head.parameters()]
            self.search = WeightDistribution(parameters_to_vector(self.searched), c.init_std)

    def modules(self) -> dict:
        if self.config.variant == "episodes":
            return {"policy": self.policy, "optimizer": self.fit_step.optimizer}
        return {"policy": self.policy, "search": self.search}

    def train_iteration(self) -> dict[str, float]:
        return self.elite_episodes() if self.config.variant == "episodes" else self.elite_parameters()

    # ---- variant=episodes ------------------------------------------------------------------------
    def elite_episodes(self) -> dict[str, float]:
        c = self.config
        episodes = collect_agent_episodes(self, c.n_episodes)
        returns = np.array([float(ep["rewards"].sum()) for ep in episodes])
        threshold = float(np.percentile(returns, c.percentile))
        elites = [ep for ep, ret in zip(episodes, returns) if ret >= threshold]
        x = torch.cat([ep["x"] for ep in elites]).to(self.device)
        actions = torch.cat([ep["actions"] for ep in elites]).to(self.device)
        for _ in range(c.gradient_steps):  # maximum likelihood of the elites' actions
            loss = -self.policy.distribution(x).log_prob(actions).mean()
            self.fit_step(loss)
        return {"batch_return": float(returns.mean()), "elite_threshold": threshold,
                "elite_return": float(returns[returns >= threshold].mean()), "loss": loss.item()}

    # ---- variant=parameters ----------------------------------------------------------------------
    def elite_parameters(self) -> dict[str, float]:
        c, dist = self.config, self.search
        thetas = dist.mean + dist.var.sqrt() * torch.randn(c.population, len(dist.mean))  # (P, D)
        scores = self.score_candidates(thetas)  # (P,)
        order = np.argsort(-scores, kind="stable")[:n_elites(c)]  # best first; ties: the earlier candidate
        noise = extra_noise(c, self.iteration + 1)  # Z_{t+1} for the distribution of iteration t + 1
        dist.mean[:], dist.var[:] = refit_elites(thetas[torch.as_tensor(order, device=thetas.device)], noise)
        with torch.no_grad():
            vector_to_parameters(dist.mean.clone(), self.searched)  # the policy acts with mu (a copy, not a view)
        return {"batch_return": float(scores.mean()), "elite_threshold": float(scores[order[-1]]),
                "elite_return": float(scores[order].mean()), "param_std": dist.var.sqrt().mean().item(),
                "extra_noise": noise}

    @torch.no_grad()
    def score_candidates(self, thetas: torch.Tensor) -> np.ndarray:
        """The mean return of each candidate's deterministic policy over episodes_per_candidate
        episodes. Episode j of the P * E plays candidate j // E; the envs take the episodes in turn,
        each the next one when its own ends (the env steps of all envs count, idle ones included)."""
        c, envs, policy = self.config, self.envs, self.policy
        per, n_jobs = c.episodes_per_candidate, len(thetas) * c.episodes_per_candidate
        job = np.arange(envs.num_envs)  # the episode each env plays, -1: none left for it
        job[job >= n_jobs] = -1
        next_job, returns = envs.num_envs, np.zeros(n_jobs)
        obs = envs.reset(seed=int(self.rng.integers(2**31)))
        while (job >= 0).any():
            x = policy.encoder.preprocess(obs, update_stats=True)
            weights = thetas[torch.as_tensor(np.maximum(job, 0) // per, device=thetas.device)]  # (N, D)
            action = policy.make_dist(candidate_outputs(policy, weights, x)).mode()
            step = envs.step(policy.to_env_action(action))
            self.num_steps += envs.env_steps_per_step
            ended = [(ep, i) for ep, i in zip(step.episodes, step.episode_envs) if job[i] >= 0]
            for (ret, _), i in ended:
                returns[job[i]] = ret
                job[i], next_job = (next_job if next_job < n_jobs else -1), next_job + 1
            self.record_episodes([ep for ep, _ in ended])
            obs = step.obs
        return returns.reshape(-1, per).mean(1)

"""DPPO: distributed proximal policy optimization (Heess et al. 2017, arXiv:1707.02286; the book's
12.4.3), synchronous, on Ray.

Each iteration the chief (the driver) sends its weights to N workers; each collects its own shard
of n_steps x n_envs transitions and its GAE(lambda) advantages, and sends the advantages back. Then,
for n_epochs passes, minibatch by minibatch: the chief draws each worker's minibatch indices (its
shard's share of a global minibatch of batch_size), sends them with the weights and the mean and
std of the global minibatch's advantages; each worker returns the gradient of PPO's loss (clipped
surrogate or adaptive KL penalty, ascent.algorithms.ppo.ppo_loss) on its part; the chief averages
the gradients, clips, steps Adam, and sends the new weights with the next minibatch's indices
(weights and gradients travel as one flat array each: one round trip per step). With equal parts,
the average of the parts' mean losses is the global minibatch's mean loss: one DPPO step is the single-process PPO step on the
union of the parts (tests/distributed/test_dppo.py checks it to 1e-6).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ascent.algorithms.common.onpolicy import collect_advantage_batch
from ascent.algorithms.common.returns import explained_variance
from ascent.algorithms.ppo import LOSS_TERMS, KLCoefficient, PPOConfig, ppo_loss
from ascent.cluster.weights import FlatModel, on_the_wire
from ascent.core.agent import Agent
from ascent.core.config import param, schedule
from ascent.distributed.common import DistributedConfig, EnvRunner, policy_options, start_runners
from ascent.errors import ConfigError
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic


@dataclass
class DPPOConfig(DistributedConfig, PPOConfig):
    n_envs: int = param(4, "envs per worker")
    n_steps: int = param(256, "steps per env per rollout (a worker's shard: n_steps * n_envs)")
    batch_size: int = param(256, "global minibatch size, split evenly among the workers")

    def validate(self) -> None:
        super().validate()
        if self.batch_size % self.n_actors:
            raise ConfigError(f"batch_size ({self.batch_size}) must split evenly among n_actors={self.n_actors} "
                              "workers (each computes the gradient of an equal part)")


def part_gradient(policy: ActorCritic, part: dict[str, torch.Tensor], c: DPPOConfig, clip: float, beta: float,
                  adv_mean: float, adv_std: float, old_log_std: torch.Tensor | None) -> dict[str, Any]:
    """A worker's share of one step: the gradient of ppo_loss on its part of the global minibatch,
    its advantages normalized by the global minibatch's mean and std; one flat numpy array, in parameter order."""
    if c.normalize_advantage:
        part = dict(part, advantages=(part["advantages"] - adv_mean) / (adv_std + 1e-8))
    old_dist = policy.make_dist(part["old_params"], old_log_std) if c.kl_penalty else None
    loss, terms, log_ratio = ppo_loss(policy, part, c, clip, beta, old_dist, normalize_advantage=False)
    params = list(policy.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    gradient = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])
    return {"gradient": gradient.numpy(),
            "terms": terms.numpy(), "kl_sum": float(((log_ratio.exp() - 1) - log_ratio).sum()),  # (PPO's approx_kl, summed)
            "clipped": float(((log_ratio.exp() - 1).abs() > clip).float().sum()), "n": len(log_ratio)}


class DPPOWorker(EnvRunner):
    """An env runner that keeps its shard and computes gradients on parts of it."""

    shard: dict[str, torch.Tensor] | None = None

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.model = FlatModel(self.policy)

    def collect(self, weights: np.ndarray) -> dict[str, Any]:
        c = self.config
        self.model.load(weights)
        start = time.perf_counter()
        self.episodes = []
        with torch.no_grad():
            self.obs, shard = collect_advantage_batch(self.envs, self.policy, self.storage, self.obs,
                                                      self.episodes.extend, None, c.gamma, c.gae_lambda, self.rng)
            if c.kl_penalty:  # pi_old's parameters, for the exact KL(pi_old || pi_theta)
                shard["old_params"] = self.policy.dist_params(shard["x"])
        self.old_log_std = self.policy.log_std.detach().clone() if self.policy.action_kind == "box" else None
        self.shard = {k: v.clone() for k, v in shard.items()}  # (the storage is reused by the next rollout)
        return {"advantages": self.shard["advantages"].numpy(), "values": self.shard["values"].numpy(),
                "returns": self.shard["returns"].numpy(), "episodes": self.episodes,
                "steps": self.storage.n_steps * self.storage.n_envs, "seconds": time.perf_counter() - start}

    def gradient(self, weights: np.ndarray, indices: np.ndarray, clip: float, beta: float, adv_mean: float,
                 adv_std: float) -> dict[str, Any] | None:
        if self.shard is None:  # a worker that replaced a dead one has no shard this iteration
            return None
        self.model.load(weights)
        idx = torch.tensor(indices)
        part = {k: v[idx] for k, v in self.shard.items()}
        return part_gradient(self.policy, part, self.config, clip, beta, adv_mean, adv_std, self.old_log_std)


class DPPO(Agent):
    """PPO with data and gradients from N synchronous Ray workers, averaged by the chief."""

    algo = "dppo"
    Config = DPPOConfig

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c,
                                              **policy_options(c))
        self.step = OptimizerStep(self.policy, schedule(c.learning_rate, 0.0), eps=c.adam_eps,
                                  max_grad_norm=c.max_grad_norm)
        self.kl_coef = KLCoefficient(c.kl_beta)
        self.workers = None  # started by the first iteration of a learn(), released at its end

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.step.optimizer, "kl_coef": self.kl_coef}

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        if self.workers is None:
            self.workers = start_runners(self, c.n_steps, DPPOWorker)
        # 1. Every worker collects its shard with the current weights; advantages come back.
        shards = self.workers.call_all("collect", self.weights())
        for shard in shards:
            self.record_episodes(shard["episodes"])
            self.num_steps += shard["steps"]
        advantages = [torch.tensor(s["advantages"]) for s in shards]
        # 2. n_epochs passes of global minibatches, each the union of equal parts of every shard.
        progress = self.progress
        lr, clip = schedule(c.learning_rate, progress), schedule(c.clip_range, progress)
        self.step.lr = lr
        per_worker = c.batch_size // len(shards)
        shard_size = len(advantages[0])
        terms, kl_sum, clipped, count, stop = [], 0.0, 0.0, 0, False
        for _ in range(c.n_epochs):
            orders = [self.rng.permutation(shard_size) for _ in shards]
            for first in range(0, shard_size - per_worker + 1, per_worker):
                parts = [order[first:first + per_worker] for order in orders]
                union = torch.cat([adv[torch.from_numpy(p)] for adv, p in zip(advantages, parts)])
                mean, std = float(union.mean()), float(union.std()) if len(union) > 1 else 1.0
                results = self.gradient_round(parts, clip, mean, std)
                if not results:
                    continue
                self.step.apply(torch.from_numpy(np.mean([r["gradient"] for r in results], 0)))
                terms.append(np.mean([r["terms"] for r in results], 0))
                step_kl = sum(r["kl_sum"] for r in results) / sum(r["n"] for r in results)
                kl_sum += step_kl
                clipped += sum(r["clipped"] for r in results)
                count += sum(r["n"] for r in results)
                if c.target_kl is not None and step_kl > 1.5 * c.target_kl:
                    stop = True  # the policy left the trust region: stop this iteration's update
                    break
            if stop:
                break
        metrics = dict(zip(LOSS_TERMS, np.mean(terms, 0).tolist())) if terms else {}
        if not c.kl_penalty:
            metrics.pop("kl", None)
        else:
            metrics["kl_beta"] = self.kl_coef.adapt(metrics["kl"], c.kl_target)
        values = torch.cat([torch.tensor(s["values"]) for s in shards])
        returns = torch.cat([torch.tensor(s["returns"]) for s in shards])
        metrics.update(approx_kl=kl_sum / max(1, len(terms)), clip_fraction=clipped / max(1, count),
                       explained_variance=explained_variance(values, returns), learning_rate=lr, clip_range=clip,
                       updates=float(len(terms)), actor_restarts=float(self.workers.restarts),
                       actor_steps_per_s=float(np.mean([s["steps"] / max(s["seconds"], 1e-9) for s in shards])))
        if self.policy.action_kind == "box":
            metrics["action_std"] = float(self.policy.log_std.detach().exp().mean())
        return metrics

    def weights(self) -> Any:
        """The chief's weights as they go to the workers: one flat array (in the object store once
        when it is too large to travel inside each call)."""
        return on_the_wire(self.step.flat.numpy())

    def gradient_round(self, parts: list[np.ndarray], clip: float, mean: float, std: float) -> list[dict]:
        """Every worker's gradient on its part (those with a shard: a replaced worker has none)."""
        weights = self.weights()
        results = self.workers.call_each("gradient", [(weights, part, clip, self.kl_coef.beta, mean, std)
                                                      for part in parts])
        return [r for r in results if r is not None]

    def release(self) -> None:
        if self.workers is not None:
            self.workers.shutdown()
            self.workers = None


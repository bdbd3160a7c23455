"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016, arXiv:1602.01783, Algorithm S3), on Ray.

N workers, each with its own envs and its own copy theta' of the parameters, loop:
  pull theta' <- theta from the parameter server (with its version)
  run n_steps steps of its envs with pi(.|s; theta')
  R_t = r_t + gamma R_{t+1} from R = V(s_T; theta') (0 after a termination): the n-step returns
  d theta = grad of  -log pi(a_t|s_t) (R_t - V(s_t)) + vf_coef (R_t - V(s_t))^2 - ent_coef H(pi(.|s_t))
            (ascent.algorithms.a2c.actor_critic_loss, averaged over the steps)
  push d theta to the parameter server, which applies it to the global theta at once, with RMSprop
  statistics shared by all workers (the paper's "shared RMSProp"), counts a new version, and
  answers with the new theta: the push and the next pull are one round trip.
Workers never wait for each other: a gradient is applied to parameters that other workers may have
moved since it was pulled; that staleness (versions between pull and apply) is logged. The driver
only keeps the workers busy (each call to a worker is `rounds_per_call` pushes), counts, and
mirrors the server's state for checkpoints; a dead worker is replaced, a dead parameter server is
rebuilt from that mirror. The mirror is refreshed every `mirror_seconds` and when a learn() ends
(so a checkpoint may be that much behind the server).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ascent.algorithms.a2c import actor_critic_loss
from ascent.algorithms.common.onpolicy import collect_advantage_batch
from ascent.cluster.weights import FlatModel
from ascent.core.agent import Agent, Counters
from ascent.core.config import param, schedule
from ascent.distributed.common import DistributedConfig, EnvRunner, policy_options, start_runners
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic


@dataclass
class A3CConfig(DistributedConfig):
    n_actors: int = param(2, "asynchronous workers, each with n_envs envs and its own copy of the parameters")
    n_envs: int = param(4, "envs per worker")
    n_steps: int = param(16, "steps per env between a worker's gradient pushes (t_max)", positive=True)
    learning_rate: float | str = param("lin_7e-4", "RMSprop step size of the parameter server; 'lin_X' decays "
                                       "linearly from X to 0 over the learn() call, as the paper anneals it",
                                       range=(0.0, math.inf), low_open=True, schedule=True)
    rms_prop_alpha: float = param(0.99, "RMSprop smoothing constant (shared statistics)", range=(0.0, 1.0),
                                  low_open=True)
    rms_prop_eps: float = param(1e-5, "RMSprop epsilon", range=(0.0, math.inf), low_open=True)
    gae_lambda: float = param(1.0, "GAE lambda (1: the paper's n-step returns)", range=(0.0, 1.0))
    vf_coef: float = param(0.5, "value loss coefficient", range=(0.0, math.inf))
    ent_coef: float = param(0.01, "entropy bonus coefficient", range=(0.0, math.inf))
    max_grad_norm: float = param(0.5, "global gradient-norm clip of each pushed gradient", range=(0.0, math.inf),
                                 low_open=True)
    share_torso: bool = param(False, "one torso for actor and critic")
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy (Box actions)")
    mirror_seconds: float = param(1.0, "seconds between refreshes of the driver's copy of the server's state (what "
                                  "checkpoints and evaluation use; 0: every round)", range=(0.0, math.inf))
    rounds_per_call: int = param(8, "gradient pushes a worker makes per call from the driver (its episodes and "
                                 "metrics come back once per call)", positive=True)
    log_interval: int = param(20, "iterations per row of metrics")
    checkpoint_seconds: float = param(120.0)


def learner_parts(observation_space, action_space, c: A3CConfig) -> tuple[ActorCritic, OptimizerStep]:
    """The global parameters and their shared RMSprop, as the server and the driver's mirror hold them."""
    policy = ActorCritic.from_config(observation_space, action_space, c, **policy_options(c))
    return policy, OptimizerStep(policy, schedule(c.learning_rate, 0.0), "rmsprop", eps=c.rms_prop_eps, alpha=c.rms_prop_alpha,
                                 max_grad_norm=c.max_grad_norm)


class ParameterServer:
    """The global theta and the shared RMSprop statistics (a Ray actor)."""

    def __init__(self, observation_space, action_space, config: A3CConfig, state: dict | None = None):
        torch.set_num_threads(1)
        self.policy, self.step = learner_parts(observation_space, action_space, config)
        self.version = 0
        if state is not None:
            self.load(state)

    def weights(self) -> np.ndarray:
        return self.step.flat.numpy()

    def set_lr(self, lr: float) -> None:
        self.step.lr = lr

    def pull(self) -> tuple[int, np.ndarray]:
        return self.version, self.weights()

    def push(self, gradient: np.ndarray, pulled_version: int) -> tuple[int, int, np.ndarray]:
        """Apply a worker's (flat) gradient now; returns its staleness (versions applied since its
        pull), and the new version and weights (the worker's next pull, in the same reply)."""
        self.step.apply(torch.tensor(gradient))
        staleness = self.version - pulled_version
        self.version += 1
        return staleness, self.version, self.weights()

    def state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.step.optimizer.state_dict(), "version": self.version}

    def load(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.step.optimizer.load_state_dict(state["optimizer"])
        self.version = int(state["version"])


class A3CWorker(EnvRunner):
    """An env runner that computes the actor-critic gradient on its own copy and pushes it."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.model = FlatModel(self.policy)  # theta' and d theta as one array each

    def work(self, server, rounds: int) -> dict[str, Any]:
        import ray

        c = self.config
        start = time.perf_counter()
        version, weights = ray.get(server.pull.remote())
        self.episodes, rows, staleness = [], [], []
        for _ in range(rounds):
            self.model.load(weights)
            self.obs, batch = collect_advantage_batch(self.envs, self.policy, self.storage, self.obs,
                                                      self.episodes.extend, None, c.gamma, c.gae_lambda, self.rng)
            loss, metrics = actor_critic_loss(self.policy, batch, batch["advantages"], c.vf_coef, c.ent_coef)
            stale, version, weights = ray.get(server.push.remote(self.model.gradient(loss), version))
            rows.append(metrics)
            staleness.append(stale)
        metrics = {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
        metrics.update(staleness=float(np.mean(staleness)), staleness_max=float(max(staleness)))
        return {"metrics": metrics, "episodes": self.episodes,
                "steps": rounds * self.storage.n_steps * self.storage.n_envs, "seconds": time.perf_counter() - start}


class A3C(Agent):
    """Asynchronous workers pushing gradients to a parameter server."""

    algo = "a3c"
    Config = A3CConfig

    def setup(self) -> None:
        # The driver's mirror of the server (what checkpoints, evaluation and acting use).
        self.policy, self.step = learner_parts(self.envs.observation_space, self.envs.action_space, self.config)
        self.counters = Counters(version=0)
        self.workers = self.server = None  # started by the first iteration of a learn(), released at its end

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.step.optimizer, "counters": self.counters}

    def mirror_state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.step.optimizer.state_dict(),
                "version": self.counters.version}

    def mirror_server(self) -> None:
        """Mirror the server (weights, shared statistics, version); rebuild it from the mirror if it died."""
        import ray

        from ascent.cluster.pool import lost_errors

        try:
            state = ray.get(self.server.state.remote())
        except lost_errors():
            print(f"a3c: the parameter server died; rebuilt from the driver's copy at version {self.counters.version}",
                  flush=True)
            self.start_server()
            self.server_restarts += 1
            return
        self.policy.load_state_dict(state["policy"])
        self.step.optimizer.load_state_dict(state["optimizer"])
        self.counters.version = int(state["version"])
        self.mirrored_at = time.monotonic()

    def start_server(self) -> None:
        import ray

        self.server = ray.remote(ParameterServer).options(num_cpus=0, max_restarts=0).remote(
            self.envs.observation_space, self.envs.action_space, self.config, self.mirror_state())

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        if self.workers is None:
            from ascent.cluster.session import ensure_ray

            ensure_ray(c.ray_address)
            self.start_server()  # (its process starts while the workers' do)
            self.workers = start_runners(self, c.n_steps, A3CWorker)
            self.server_restarts, self.mirrored_at = 0, time.monotonic()
            for index in range(len(self.workers)):
                self.workers.submit(index, "work", self.server, c.rounds_per_call)
        # A round: as many calls answered as there are workers, each worker sent back to work at once.
        results = []
        while len(results) < len(self.workers):
            for res in self.workers.wait():
                if res.dependency_lost:  # the server died under the worker's push or pull
                    self.mirror_server()
                self.workers.submit(res.index, "work", self.server, c.rounds_per_call)
                if not (res.lost or res.dependency_lost):
                    results.append(res.value)
        lr = schedule(c.learning_rate, self.progress)
        if lr != self.step.lr:
            self.server.set_lr.remote(lr)  # (no wait: the next pushes see it)
            self.step.lr = lr
        if time.monotonic() - self.mirrored_at >= c.mirror_seconds:
            self.mirror_server()
        for r in results:
            self.record_episodes(r["episodes"])
            self.num_steps += r["steps"]
        metrics = {k: float(np.mean([r["metrics"][k] for r in results])) for k in results[0]["metrics"]}
        metrics["staleness_max"] = max(r["metrics"]["staleness_max"] for r in results)
        metrics["actor_steps_per_s"] = float(np.mean([r["steps"] / max(r["seconds"], 1e-9) for r in results]))
        metrics["actor_restarts"] = float(self.workers.restarts + self.server_restarts)
        metrics["version"] = float(self.counters.version)
        metrics["learning_rate"] = lr
        return metrics

    def release(self) -> None:
        if self.workers is not None:
            import ray

            self.mirror_server()  # (the final state, exactly)
            self.workers.shutdown()
            ray.kill(self.server, no_restart=True)
            self.workers = self.server = None

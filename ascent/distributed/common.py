"""What the distributed actor-critics share: their config (n_actors, ray_address), the env runner
(the body of a Ray actor: its own VecEnv and a copy of the policy, returning fixed-length segments
of experience with the behaviour policy's log-probs), the pool of runners an agent starts, and the
stacking of segments into one learner batch.

A segment is a dict of numpy arrays (they travel through Ray's object store, read zero-copy):
  x (T, N, *x_shape)  the policy's preprocessed input at each step; last_x (N, *x_shape) after the last
  actions, logprobs (log mu(a_t|x_t)), rewards, terminated, dones, valid, bootstrap (T, N)
  final_x (T, N, *x_shape)  the final observation's x where an episode was truncated (bootstrap)
and `episodes` [(return, length)], `version` (of the weights that acted), `steps`, `seconds`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ascent.algorithms.common.onpolicy import collect_rollout
from ascent.buffers.rollout import RolloutStorage
from ascent.cluster.pool import ActorPool, actor_cpus
from ascent.cluster.session import ensure_ray
from ascent.cluster.weights import WeightReceiver
from ascent.core.config import NetworkConfig, param
from ascent.core.process import configure_torch
from ascent.envs.vector import VecEnv, make_vec_env
from ascent.errors import ConfigError
from ascent.nets.policies import ActorCritic

RUNNER_STREAM = 0x72756E  # first word of a runner's seeds: apart from the agent's and the envs' streams


@dataclass
class DistributedConfig(NetworkConfig):
    n_actors: int = param(2, "Ray actors collecting experience, each with n_envs envs", positive=True)
    ray_address: str = param("", "Ray to run on: '' a local Ray (or the cluster RAY_ADDRESS names), 'auto' the "
                             "cluster started on this machine, HOST:PORT a cluster's head")

    def validate(self) -> None:
        super().validate()
        for name in ("normalize_obs", "normalize_reward"):
            if getattr(self, name):
                raise ConfigError(f"{name} is not supported by the distributed algorithms (each actor would keep "
                                  "statistics of its own, and the learner none); leave it false")


def policy_options(config: Any) -> dict[str, Any]:
    """The ActorCritic options a config sets beyond the network fields."""
    return {name: getattr(config, name) for name in ("share_torso", "log_std_init", "squash_actions")
            if hasattr(config, name)}


def actor_process(env_source: Any, config: Any, seed: int, index: int,
                  incarnation: int) -> tuple[np.random.Generator, VecEnv, int]:
    """What every actor of a run starts with, in its own process: one torch thread, streams of its own
    (seeded by the run's seed, its place and its incarnation: a replacement draws anew), and its
    n_envs envs. Returns (its numpy stream, its envs, the seed to reset them with)."""
    configure_torch(1)
    streams = np.random.SeedSequence([RUNNER_STREAM, seed, index, incarnation])
    torch_seed, env_seed = (int(s) for s in streams.generate_state(2) % (2**31))
    torch.manual_seed(torch_seed)
    envs = VecEnv(make_vec_env(env_source, config.n_envs, config.vectorization))
    return np.random.default_rng(streams), envs, env_seed


class EnvRunner:
    """The body of a Ray actor: n_envs envs and a CPU copy of the policy; `sample` returns one
    segment of n_steps steps of every env with the newest weights it has been sent."""

    def __init__(self, env_source: Any, config: Any, seed: int, index: int, incarnation: int, n_steps: int):
        self.config = config
        self.rng, self.envs, env_seed = actor_process(env_source, config, seed, index, incarnation)
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, config,
                                              **policy_options(config))
        self.receiver = WeightReceiver(self.policy)
        self.storage = RolloutStorage.for_policy(self.policy, n_steps, config.n_envs, keep_final_x=True)
        self.obs = self.envs.reset(seed=env_seed)
        self.episodes: list[tuple[float, int]] = []

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    @torch.inference_mode()
    def sample(self, version: int, boxed_weights: list) -> dict[str, Any]:
        self.receiver.update(version, boxed_weights)
        start = time.perf_counter()
        self.episodes = []
        self.obs, _ = collect_rollout(self.envs, self.policy, self.storage, self.obs, self.episodes.extend, None, self.rng)
        s = self.storage
        segment = {name: getattr(s, name).numpy() for name in
                   ("x", "actions", "logprobs", "rewards", "terminated", "dones", "valid", "bootstrap", "final_x")}
        segment["last_x"] = self.policy.encoder.preprocess(self.obs).numpy()
        segment.update(episodes=self.episodes, version=self.receiver.version, steps=s.n_steps * s.n_envs,
                       seconds=time.perf_counter() - start)
        return segment


def start_runners(agent: Any, n_steps: int, runner: type = EnvRunner, **extra: Any) -> ActorPool:
    """The agent's pool of config.n_actors runner actors (`runner(env source, config, seed, index,
    incarnation, n_steps, **extra)`), on the Ray its config names: a CPU each where the cluster has
    enough, an even share of them otherwise."""
    import ray

    c = agent.config
    ensure_ray(c.ray_address)
    remote = ray.remote(runner)
    cpus = actor_cpus(c.n_actors)
    source = agent.env_source()  # an id, a spec or a factory: what an actor makes its envs from
    # the run's seed, and where it is: a resumed run's actors draw streams of their own
    seed = int(np.random.SeedSequence([agent.seed, agent.iteration]).generate_state(1)[0] % (2**31))

    def make(index: int, incarnation: int):
        return remote.options(num_cpus=cpus, max_restarts=0).remote(source, c, seed, index, incarnation,
                                                                   n_steps, **extra)

    pool = ActorPool(make, c.n_actors)
    pool.ready()
    return pool


def stack_segments(segments: list[dict[str, Any]], device: torch.device) -> dict[str, torch.Tensor]:
    """Segments side by side along the env axis: (T, N_total, ...) tensors on `device`, and last_x."""
    names = ("x", "actions", "logprobs", "rewards", "terminated", "dones", "valid", "bootstrap", "final_x")
    batch = {name: torch.from_numpy(np.concatenate([seg[name] for seg in segments], axis=1)) for name in names}
    batch["last_x"] = torch.from_numpy(np.concatenate([seg["last_x"] for seg in segments], axis=0))
    return {k: v.to(device) for k, v in batch.items()}


def segment_metrics(segments: list[dict[str, Any]], learner_version: int) -> dict[str, float]:
    """Policy lag (learner versions between the weights that acted and the learner's now) and the
    actors' sampling speed (env steps per second of sampling, summed over the actors heard from)."""
    lags = [learner_version - seg["version"] for seg in segments]
    rate = sum(seg["steps"] / max(seg["seconds"], 1e-9) for seg in segments) / max(1, len(segments))
    return {"policy_lag": float(np.mean(lags)), "policy_lag_max": float(max(lags)), "actor_steps_per_s": rate}

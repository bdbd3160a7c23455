"""Ape-X: distributed prioritized experience replay (Horgan et al. 2018, arXiv:1803.00933), on Ray.

  actors     N actors, each with its envs and a copy of the network; actor i explores with
             epsilon_i = epsilon^(1 + alpha i / (N - 1))  (epsilon = 0.4, alpha = 7: the paper's), builds
             n-step transitions (s_t, a_t, R_t = sum_{k<L} gamma^k r_{t+k}, s_{t+L}, gamma^L) in a local
             buffer, and flushes it, `chunk` transitions at a time, to the replay with the priorities
             |delta| it computes itself from its copy (so that new data is not given the maximum)
  replay     one Ray actor around ascent's prioritized replay (the sum tree): adds chunks, samples in
             proportion to p^alpha with importance weights (beta), takes priority updates; snapshots of
             it are kept by the driver, and a replay that dies is restored from the last one (or
             rebuilt empty and refilled by the actors), the log says which
  learner    in the driver: prefetches `prefetch` minibatches, takes double-DQN steps with dueling
             heads on the n-step targets (ascent.algorithms.dqn: dqn_target, dqn_loss), sends the new
             |delta| back, copies the target network every `target_update_interval` updates and
             publishes its weights every `weight_sync_interval`
The learner takes at most one update per `steps_per_update` env steps (a replay ratio; actors
wait for their next request while it is ahead). Actors act in numpy where the network allows.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ascent.algorithms.dqn import dqn_loss, dqn_target
from ascent.buffers.prioritized import PrioritizedReplay
from ascent.buffers.replay import Batch, ReplayBuffer
from ascent.cluster.pool import lost_errors
from ascent.cluster.weights import WeightBroadcast, WeightReceiver
from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.core.process import configure_torch
from ascent.distributed.common import DistributedConfig, RUNNER_STREAM, start_runners
from ascent.envs.vector import VecEnv, make_vec_env
from ascent.errors import EnvError
from ascent.nets.optim import OptimizerStep, polyak_update
from ascent.nets.q_networks import QNetwork


@dataclass
class ApeXConfig(DistributedConfig):
    n_envs: int = param(1, "envs per actor")
    net_arch: tuple = param((64, 64), "hidden layer widths of the Q network")
    activation: str = param("relu")
    learning_rate: float = param(1e-3, "Adam step size of the learner", range=(0.0, math.inf), low_open=True)
    batch_size: int = param(64, "learner minibatch size", positive=True)
    buffer_size: int = param(100_000, "central replay capacity in transitions", positive=True)
    learning_starts: int = param(1_000, "transitions in the replay before the learner starts", nonnegative=True)
    n_step: int = param(3, "n-step returns, built by the actors", positive=True)
    chunk: int = param(50, "transitions an actor's local buffer holds before it flushes them to the replay",
                       positive=True)
    steps_per_update: float = param(2.0, "env steps per learner update at most (the replay ratio's inverse)",
                                    range=(0.0, math.inf), low_open=True)
    actor_steps: int = param(100, "env steps (of every env) an actor takes per request", positive=True)
    prefetch: int = param(8, "minibatches per request to the replay, one request kept ahead of the learner "
                          "(their priority updates go back together)", positive=True)
    weight_sync_interval: int = param(10, "learner updates between weight broadcasts to the actors", positive=True)
    target_update_interval: int = param(100, "learner updates between target network updates", positive=True)
    tau: float = param(1.0, "target network update coefficient (1: hard copy)", range=(0.0, 1.0), low_open=True)
    max_grad_norm: float = param(40.0, "gradient-norm clip", range=(0.0, math.inf), low_open=True)
    prioritized_replay_alpha: float = param(0.6, "priority exponent alpha", range=(0.0, 1.0))
    prioritized_replay_beta: float = param(0.4, "importance-sampling exponent beta (fixed, as in the paper)",
                                           range=(0.0, 1.0))
    prioritized_replay_eps: float = param(1e-6, "added to |delta| so that no priority is zero",
                                          range=(0.0, math.inf), low_open=True)
    replay_snapshot_seconds: float = param(60.0, "seconds between the driver's snapshots of the replay (what a "
                                           "replay that dies is restored from; 0: none)", range=(0.0, math.inf))
    save_replay_buffer: bool = param(True, "write the replay next to each checkpoint (resume continues with it)")
    log_interval: int = param(10, "iterations per row of metrics")
    checkpoint_seconds: float = param(120.0)


@dataclass
class ApeXDQNConfig(ApeXConfig):
    epsilon: float = param(0.4, "epsilon of the exploration schedule epsilon_i = epsilon^(1 + alpha i/(N-1))",
                           range=(0.0, 1.0))
    epsilon_alpha: float = param(7.0, "alpha of the exploration schedule", range=(0.0, math.inf))
    double_q: bool = param(True, "double DQN targets")
    dueling: bool = param(True, "dueling heads")


def actor_epsilons(n_actors: int, epsilon: float, alpha: float) -> np.ndarray:
    """epsilon_i = epsilon^(1 + alpha i / (N - 1)), i = 0..N-1 (one actor: epsilon)."""
    if n_actors == 1:
        return np.array([epsilon])
    i = np.arange(n_actors)
    return epsilon ** (1.0 + alpha * i / (n_actors - 1))


class NStep:
    """An actor's local buffer: per env the last n steps; emits (s, a, R, s', gamma^L, terminated)
    for the oldest once n steps follow it, and for all of them when the episode ends (L < n: a
    truncated episode bootstraps from its final observation, a terminated one from nothing)."""

    def __init__(self, n_envs: int, n: int, gamma: float):
        self.n, self.gamma = n, gamma
        self.pending: list[deque] = [deque() for _ in range(n_envs)]
        self.out: list[tuple] = []

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, valid: np.ndarray) -> None:
        for i, queue in enumerate(self.pending):
            if not valid[i]:
                continue
            queue.append((obs[i], action[i], float(reward[i])))
            if terminated[i] or truncated[i]:
                while queue:
                    self._emit(queue, next_obs[i], bool(terminated[i]))
            elif len(queue) == self.n:
                self._emit(queue, next_obs[i], False)

    def _emit(self, queue: deque, next_obs: np.ndarray, terminated: bool) -> None:
        ret = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(queue))
        s, a, _ = queue.popleft()
        self.out.append((s, a, ret, next_obs, self.gamma ** (len(queue) + 1), terminated))

    def take(self, k: int) -> list[tuple] | None:
        """The oldest k emitted transitions, or None while fewer are ready."""
        if len(self.out) < k:
            return None
        taken, self.out = self.out[:k], self.out[k:]
        return taken


class ReplayServer:
    """The central prioritized replay (a Ray actor): chunks of transitions as rows of an ascent
    ReplayBuffer with `chunk` columns, priorities in its sum tree, discounts gamma^L beside."""

    def __init__(self, config: ApeXConfig, observation_space: gym.Space, action_space: gym.Space, seed: int,
                 state: dict | None = None):
        c = config
        self.buffer = ReplayBuffer(max(c.buffer_size, c.chunk), c.chunk, observation_space, action_space)
        self.replay = PrioritizedReplay(self.buffer, c.prioritized_replay_alpha, c.prioritized_replay_eps)
        self.discounts = np.ones((self.buffer.rows, c.chunk), np.float32)
        self.rng = np.random.default_rng(seed)
        self.added = 0
        if state is not None:
            self.load_state_dict(state)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        row = self.buffer.pos
        zeros = np.zeros(len(chunk["rewards"]), bool)
        self.replay.add(chunk["obs"], chunk["actions"], chunk["rewards"], chunk["next_obs"], chunk["terminated"], zeros)
        self.replay.update_priorities(row * self.buffer.n_envs + np.arange(self.buffer.n_envs), chunk["priorities"])
        self.discounts[row] = chunk["discounts"]
        self.added += len(zeros)

    def size(self) -> int:
        return len(self.buffer)

    def sample(self, batch_size: int, beta: float, n: int) -> list[dict[str, np.ndarray]]:
        """n minibatches drawn from the current priorities."""
        out = []
        for _ in range(n):
            row, env, flat, weights = self.replay.sample_index(batch_size, beta, self.rng)
            b = self.buffer.batch(row, env)
            out.append({"obs": b.obs.numpy(), "actions": b.actions.numpy(), "rewards": b.rewards.numpy(),
                        "next_obs": b.next_obs.numpy(), "terminated": b.terminated.numpy(),
                        "discounts": self.discounts[row.numpy(), env.numpy()], "weights": weights.numpy(),
                        "slots": flat})
        return out

    def update_priorities(self, slots: list[np.ndarray], td_errors: list[np.ndarray]) -> None:
        """New |delta| of several minibatches, in the order they were learned from."""
        for index, td in zip(slots, td_errors):
            self.replay.update_priorities(index, td)

    def state_dict(self) -> dict:
        return {"replay": self.replay.state_dict(), "discounts": torch.from_numpy(self.discounts.copy()),
                "added": self.added}

    def load_state_dict(self, state: dict) -> None:
        self.replay.load_state_dict(state["replay"])
        self.discounts[:] = state["discounts"].numpy()
        self.added = int(state.get("added", 0))


class RemoteReplay:
    """The agent's `replay`: a handle on the replay actor that checkpoints like a local buffer. A
    state loaded before the actor exists (a resumed run) is handed to it when it starts."""

    def __init__(self):
        self.actor: Any = None
        self.pending: dict | None = None
        self.snapshot: dict | None = None
        self.snapshot_at = time.monotonic()
        self.known_size = 0

    def __len__(self) -> int:
        return self.known_size

    def state_dict(self) -> dict:
        import ray

        if self.actor is None:
            return self.pending or self.snapshot or {}
        return ray.get(self.actor.state_dict.remote())

    def load_state_dict(self, state: dict) -> None:
        self.pending = state
        self.known_size = len(state["replay"]["buffer"]["obs"]) * state["replay"]["buffer"]["n_envs"]

    def cut_episodes(self) -> None:
        """(Its transitions are whole n-step ones: nothing runs on into a resumed run's episodes.)"""


class QActor:
    """An Ape-X DQN actor (a Ray actor): epsilon_i-greedy on its copy of Q, n-step transitions,
    initial priorities |delta| from its copy (double-DQN target with its copy in both roles)."""

    def __init__(self, env_source: Any, config: ApeXDQNConfig, seed: int, index: int, incarnation: int,
                 n_steps: int):
        configure_torch(1)
        c = self.config = config
        streams = np.random.SeedSequence([RUNNER_STREAM, seed, index, incarnation])
        torch_seed, env_seed = (int(s) for s in streams.generate_state(2) % (2**31))
        torch.manual_seed(torch_seed)
        self.rng = np.random.default_rng(streams)
        self.envs = VecEnv(make_vec_env(env_source, c.n_envs, c.vectorization))
        self.q_net = q_network(self.envs.observation_space, self.envs.action_space, c)
        self.greedy = self.q_net.numpy_greedy()
        self.receiver = WeightReceiver(self.q_net)
        self.epsilon = float(actor_epsilons(c.n_actors, c.epsilon, c.epsilon_alpha)[index])
        self.local = NStep(c.n_envs, c.n_step, c.gamma)
        self.obs = self.envs.reset(seed=env_seed)
        self.n_actions = int(self.envs.action_space.n)

    def pid(self) -> int:
        import os

        return os.getpid()

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.greedy is not None:
            greedy = self.greedy(obs)
        else:
            with torch.no_grad():
                greedy = self.q_net(torch.as_tensor(obs)).argmax(1).numpy()
        explore = self.rng.random(len(obs)) < self.epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=len(obs)), greedy)

    @torch.no_grad()
    def priorities(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        q = self.q_net(torch.as_tensor(chunk["obs"]))
        q_next = self.q_net(torch.as_tensor(chunk["next_obs"]))
        taken = q.gather(1, torch.as_tensor(chunk["actions"]).long().view(-1, 1)).squeeze(1)
        bootstrap = q_next.max(1).values * torch.as_tensor(chunk["discounts"] * (1.0 - chunk["terminated"]))
        return (torch.as_tensor(chunk["rewards"]) + bootstrap - taken).abs().numpy()

    def run(self, version: int, boxed_weights: list, replay: Any) -> dict[str, Any]:
        self.receiver.update(version, boxed_weights)
        start, episodes, flushed = time.perf_counter(), [], 0
        for _ in range(self.config.actor_steps):
            action = self.act(self.obs)
            step = self.envs.step(action)
            next_obs = step.obs
            if step.bootstrap is not None:  # a truncated episode bootstraps from the observation it was cut at
                next_obs = next_obs.copy()
                next_obs[step.bootstrap] = step.final_obs[step.bootstrap]
            self.local.add(self.obs, action, step.reward, next_obs, step.terminated, step.truncated, step.valid)
            episodes.extend(step.episodes)
            self.obs = step.obs
            while (taken := self.local.take(self.config.chunk)) is not None:
                s, a, r, s2, d, term = zip(*taken)
                chunk = {"obs": np.stack(s), "actions": np.asarray(a), "rewards": np.asarray(r, np.float32),
                         "next_obs": np.stack(s2), "discounts": np.asarray(d, np.float32),
                         "terminated": np.asarray(term, np.float32)}
                chunk["priorities"] = self.priorities(chunk)
                replay.add.remote(chunk)  # (not waited for: the replay takes it when it can)
                flushed += len(a)
        return {"episodes": episodes, "steps": self.config.actor_steps * self.envs.num_envs, "flushed": flushed,
                "seconds": time.perf_counter() - start, "epsilon": self.epsilon}


def q_network(observation_space: gym.Space, action_space: gym.Space, c: ApeXDQNConfig) -> QNetwork:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise EnvError(f"apex needs a Discrete action space; this env has {action_space}: use apex-dpg for "
                       "continuous actions")
    return QNetwork(observation_space, int(action_space.n), c.net_arch, c.activation, c.dueling)


class ApeXDQN(Agent):
    """Ape-X with the double, dueling, n-step DQN learner."""

    algo = "apex"
    Config = ApeXDQNConfig

    def setup(self) -> None:
        c = self.config
        self.q_net = q_network(self.envs.observation_space, self.envs.action_space, c)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.step = OptimizerStep(self.q_net, c.learning_rate, max_grad_norm=c.max_grad_norm)
        self.target_pairs = (list(self.q_target.parameters()), list(self.q_net.parameters()))
        self.counters = Counters(n_updates=0)
        self.broadcast = WeightBroadcast()
        self.replay, self.save_replay = RemoteReplay(), c.save_replay_buffer
        self.actors = None  # started by the first iteration of a learn(), released at its end
        self.samples: deque = deque()

    def modules(self) -> dict:
        return {"q_net": self.q_net, "q_target": self.q_target, "optimizer": self.step.optimizer,
                "counters": self.counters}

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        with torch.no_grad():
            return self.q_net(torch.as_tensor(obs)).argmax(1).cpu().numpy()

    # ---- the replay actor ---------------------------------------------------------------------------
    def start_replay(self, state: dict | None) -> None:
        import ray

        self.replay.actor = ray.remote(ReplayServer).options(num_cpus=0, max_restarts=0).remote(
            self.config, self.envs.observation_space, self.envs.action_space, self.seed + self.iteration, state)
        self.samples.clear()
        self.sample_request, self.priority_updates = None, []

    def request_samples(self):
        c = self.config
        self.sample_request = self.replay.actor.sample.remote(c.batch_size, c.prioritized_replay_beta, c.prefetch)
        return self.sample_request

    def replace_replay(self) -> None:
        snapshot = self.replay.snapshot
        if snapshot is not None:
            print("apex: the replay actor died; restored from its snapshot of "
                  f"{len(snapshot['replay']['buffer']['obs']) * self.config.chunk} transitions", file=sys.stderr, flush=True)
        else:
            print("apex: the replay actor died and there is no snapshot; rebuilt empty, refilled by the actors",
                  file=sys.stderr, flush=True)
        self.start_replay(snapshot)
        self.replay_restarts += 1

    def replay_call(self, method: str, *args: Any, wait: bool = True) -> Any:
        """A call to the replay actor; one that finds it dead replaces it (and returns None)."""
        import ray

        try:
            ref = getattr(self.replay.actor, method).remote(*args)
            return ray.get(ref) if wait else ref
        except lost_errors():
            self.replace_replay()
            return None

    # ---- training ----------------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        if self.actors is None:
            self.start_replay(self.replay.pending)
            self.replay.pending, self.replay_restarts = None, 0
            self.actors = start_runners(self, c.actor_steps, QActor)
            self.broadcast.publish(self.q_net)
            for index in range(len(self.actors)):
                self.actors.submit(index, "run", *self.broadcast.handle(), self.replay.actor)
        # 1. The actors that finished since the last iteration (at least one).
        finished = self.actors.wait(at_least=1)
        if self.actors.in_flight():
            finished += self.actors.wait(timeout=0, at_least=self.actors.in_flight())
        results = [r for r in finished if not (r.lost or r.dependency_lost)]
        for r in results:
            self.record_episodes(r.value["episodes"])
            self.num_steps += r.value["steps"]
        metrics: dict[str, float] = {}
        size = self.replay_call("size")
        self.replay.known_size = size or 0
        # 2. Learner steps up to the replay ratio, on prefetched minibatches.
        if self.replay.known_size >= max(c.learning_starts, c.batch_size):
            allowed = int((self.num_steps - c.learning_starts) / c.steps_per_update) - self.counters.n_updates
            for _ in range(max(0, allowed)):
                step_metrics = self.learner_step()
                if step_metrics is None:  # the replay died: restored, learning goes on next iteration
                    break
                metrics = step_metrics
        # 3. The finished actors go back to acting (with the newest weights; a replaced one too) only
        #    now: while the learner catches up with the replay ratio they wait, and leave it the CPU.
        for r in finished:
            self.actors.submit(r.index, "run", *self.broadcast.handle(), self.replay.actor)
        if c.replay_snapshot_seconds and time.monotonic() - self.replay.snapshot_at >= c.replay_snapshot_seconds:
            self.replay.snapshot = self.replay_call("state_dict")
            self.replay.snapshot_at = time.monotonic()
        metrics.update(replay_size=float(self.replay.known_size), updates=float(self.counters.n_updates),
                       actor_restarts=float(self.actors.restarts + self.replay_restarts))
        if results:
            metrics["actor_steps_per_s"] = float(np.mean([r.value["steps"] / max(r.value["seconds"], 1e-9)
                                                          for r in results]))
        return metrics

    def learner_step(self) -> dict[str, float] | None:
        import ray

        c = self.config
        if not self.samples:  # the request ahead arrives; the next one goes out at once
            try:
                request = self.sample_request or self.request_samples()
                self.samples.extend(ray.get(request))
            except lost_errors():
                self.replace_replay()
                return None
            self.request_samples()
        data = self.samples.popleft()
        batch = Batch(*(torch.tensor(data[k]) for k in ("obs", "actions", "rewards", "next_obs", "terminated")),
                      truncated=torch.zeros(len(data["rewards"])), discount=torch.tensor(data["discounts"]))
        batch = batch.to(self.device)
        weights = torch.tensor(data["weights"], device=self.device)
        target = dqn_target(self.q_net, self.q_target, None, batch, c.gamma, c.double_q)
        loss, td_error, stats = dqn_loss(self.q_net, None, batch, target, weights)
        self.step(loss)
        self.priority_updates.append((data["slots"], td_error.cpu().numpy()))
        if len(self.priority_updates) >= c.prefetch:
            self.replay.actor.update_priorities.remote(*map(list, zip(*self.priority_updates)))
            self.priority_updates = []
        self.counters.n_updates += 1
        if self.counters.n_updates % c.target_update_interval == 0:
            polyak_update(*self.target_pairs, c.tau)
        if self.counters.n_updates % c.weight_sync_interval == 0:
            self.broadcast.publish(self.q_net)
        return {name: value.item() for name, value in stats.items()}

    def release(self) -> None:
        if self.actors is not None:
            import ray

            if self.save_replay:  # what a checkpoint after this learn() writes
                self.replay.pending = self.replay_call("state_dict")
            self.actors.shutdown()
            ray.kill(self.replay.actor, no_restart=True)
            self.replay.actor = None
            self.actors = None


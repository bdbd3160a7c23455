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
  learner    in the driver: prefetches `prefetch` minibatches at a time (one request kept ahead),
             steps on the n-step targets, sends the new |delta| back with its next request, and
             sends an actor its newest weights with its next request when it has taken
             `weight_sync_interval` updates since the last ones it published:
             Ape-X DQN (`apex`): double DQN with dueling heads (ascent.algorithms.dqn: dqn_target,
               dqn_loss), the target network copied every `target_update_interval` updates;
             Ape-X DPG (`apex-dpg`): the DDPG/TD3 learner (ascent.algorithms.td3.td3_update: twin
               critics, delayed policy updates, target smoothing, Polyak targets), its actors
               exploring with Gaussian noise of std sigma_i from action_noise_std_max down to _min
The learner takes at most one update per `steps_per_update` env steps (a replay ratio; actors
wait for their next request while it is ahead). Until the replay holds learning_starts
transitions the DPG actors act uniformly at random (TD3's warm-up).
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
from ascent.algorithms.td3 import set_td3_learner, td3_modules, td3_update
from ascent.buffers.prioritized import PrioritizedReplay
from ascent.buffers.replay import Batch, ReplayBuffer
from ascent.cluster.pool import lost_errors
from ascent.cluster.weights import WeightBroadcast, WeightReceiver
from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.distributed.common import DistributedConfig, actor_process, start_runners
from ascent.errors import EnvError
from ascent.nets.optim import OptimizerStep, polyak_update
from ascent.nets.actors import ActionScale, DeterministicActor
from ascent.nets.q_networks import QEnsemble, QNetwork


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
    target_update_interval: int = param(100, "learner updates between target network updates", positive=True)


@dataclass
class ApeXDPGConfig(ApeXConfig):
    net_arch: tuple = param((400, 300), "hidden layer widths of the actor and the critics")
    steps_per_update: float = param(1.0)
    tau: float = param(0.005, "Polyak coefficient of the target networks")
    action_noise_std_max: float = param(0.3, "exploration noise std of actor 0 (unit-box scale)",
                                        range=(0.0, math.inf))
    action_noise_std_min: float = param(0.05, "exploration noise std of the last actor (geometric in between)",
                                        range=(0.0, math.inf))
    n_critics: int = param(2, "Q critics; the target takes their minimum (TD3; 1: DDPG)", positive=True)
    policy_delay: int = param(2, "critic steps per actor step and target update (TD3; 1: DDPG)", positive=True)
    target_policy_noise: float = param(0.2, "std of the smoothing noise on the target action (0: none, DDPG)",
                                       range=(0.0, math.inf))
    target_noise_clip: float = param(0.5, "the smoothing noise is clipped to +-this", range=(0.0, math.inf))


def actor_noise_stds(n_actors: int, high: float, low: float) -> np.ndarray:
    """Exploration noise std of each DPG actor: from `high` (actor 0) down to `low`, geometrically."""
    if n_actors == 1:
        return np.array([high])
    return high * (low / high) ** (np.arange(n_actors) / (n_actors - 1)) if high > 0 else np.zeros(n_actors)


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

    def sample(self, batch_size: int, beta: float, n: int, slots: list[np.ndarray] = (),
               td_errors: list[np.ndarray] = ()) -> dict[str, np.ndarray]:
        """n minibatches drawn from the current priorities, one after the other along the first
        axis (n * batch_size rows: one array per field travels, and the learner slices); the new
        |delta| of the minibatches learned from since the last request are applied first (one call
        each way per group)."""
        self.update_priorities(slots, td_errors)
        draws = [self.replay.sample_index(batch_size, beta, self.rng) for _ in range(n)]
        row, env = (torch.cat([d[i] for d in draws]) for i in (0, 1))
        b = self.buffer.batch(row, env)
        return {"obs": b.obs.numpy(), "actions": b.actions.numpy(), "rewards": b.rewards.numpy(),
                "next_obs": b.next_obs.numpy(), "terminated": b.terminated.numpy(),
                "discounts": self.discounts[row.numpy(), env.numpy()],
                "weights": torch.cat([d[3] for d in draws]).numpy(), "slots": np.concatenate([d[2] for d in draws])}

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


class ApeXActor:
    """The body of an Ape-X actor (a Ray actor): its envs, its copy of the learner's networks, its
    local n-step buffer; `run` takes actor_steps steps and flushes full chunks to the replay with
    the priorities its copy gives them. A learner's actor fills in build, act and priorities."""

    def __init__(self, env_source: Any, config: ApeXConfig, seed: int, index: int, incarnation: int, n_steps: int):
        c = self.config = config
        self.rng, self.envs, env_seed = actor_process(env_source, config, seed, index, incarnation)
        self.receiver = WeightReceiver(self.build(index))
        self.local = NStep(c.n_envs, c.n_step, c.gamma)
        self.obs = self.envs.reset(seed=env_seed)

    def build(self, index: int) -> torch.nn.Module:
        """The networks the learner broadcasts, and this actor's exploration."""
        raise NotImplementedError

    def act(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        """(the action as stored, the action the env receives)."""
        raise NotImplementedError

    def priorities(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def pid(self) -> int:
        import os

        return os.getpid()

    def run(self, version: int, boxed_weights: list, replay: Any, warmup: bool = False) -> dict[str, Any]:
        self.receiver.update(version, boxed_weights)
        start, episodes, flushed = time.perf_counter(), [], 0
        for _ in range(self.config.actor_steps):
            stored, env_action = self.act(self.obs, warmup)
            step = self.envs.step(env_action)
            next_obs = step.obs
            if step.bootstrap is not None:  # a truncated episode bootstraps from the observation it was cut at
                next_obs = next_obs.copy()
                next_obs[step.bootstrap] = step.final_obs[step.bootstrap]
            self.local.add(self.obs, stored, step.reward, next_obs, step.terminated, step.truncated, step.valid)
            episodes.extend(step.episodes)
            self.obs = step.obs
            while (taken := self.local.take(self.config.chunk)) is not None:
                s, a, r, s2, d, term = zip(*taken)
                chunk = {"obs": np.stack(s), "actions": np.stack(a), "rewards": np.asarray(r, np.float32),
                         "next_obs": np.stack(s2), "discounts": np.asarray(d, np.float32),
                         "terminated": np.asarray(term, np.float32)}
                with torch.no_grad():
                    chunk["priorities"] = self.priorities(chunk)
                replay.add.remote(chunk)  # (not waited for: the replay takes it when it can)
                flushed += len(a)
        return {"episodes": episodes, "steps": self.config.actor_steps * self.envs.num_envs, "flushed": flushed,
                "seconds": time.perf_counter() - start}


class QActor(ApeXActor):
    """Ape-X DQN's actor: epsilon_i-greedy on its copy of Q (in numpy where the network allows);
    priorities |delta| of the double-DQN target with its copy in both roles."""

    def build(self, index: int) -> torch.nn.Module:
        c = self.config
        self.q_net = q_network(self.envs.observation_space, self.envs.action_space, c)
        self.greedy = self.q_net.numpy_greedy()
        self.epsilon = float(actor_epsilons(c.n_actors, c.epsilon, c.epsilon_alpha)[index])
        self.n_actions = int(self.envs.action_space.n)
        return self.q_net

    def act(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.greedy is not None:
            greedy = self.greedy(obs)
        else:
            with torch.no_grad():
                greedy = self.q_net(torch.as_tensor(obs)).argmax(1).numpy()
        explore = self.rng.random(len(obs)) < self.epsilon
        action = np.where(explore, self.rng.integers(self.n_actions, size=len(obs)), greedy)
        return action, action

    def priorities(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        q = self.q_net(torch.as_tensor(chunk["obs"]))
        q_next = self.q_net(torch.as_tensor(chunk["next_obs"]))
        taken = q.gather(1, torch.as_tensor(chunk["actions"]).long().view(-1, 1)).squeeze(1)
        bootstrap = q_next.max(1).values * torch.as_tensor(chunk["discounts"] * (1.0 - chunk["terminated"]))
        return (torch.as_tensor(chunk["rewards"]) + bootstrap - taken).abs().numpy()


class DPGActor(ApeXActor):
    """Ape-X DPG's actor: mu(s) + N(0, sigma_i^2) on its copy of the actor, clipped to the unit box;
    priorities |r + gamma^L Q_1(s', mu(s')) - Q_1(s, a)| with its copies of the actor and critic."""

    def build(self, index: int) -> torch.nn.Module:
        c = self.config
        self.scale = ActionScale(self.envs.action_space, "apex-dpg")
        self.nets = dpg_networks(self.envs.observation_space, self.scale.dim, c)
        self.noise_std = float(actor_noise_stds(c.n_actors, c.action_noise_std_max, c.action_noise_std_min)[index])
        return self.nets

    def act(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        if warmup:
            unit = self.scale.random(len(obs), self.rng)
        else:
            with torch.no_grad():
                actor = self.nets["actor"]
                unit = actor(actor.encoder(torch.as_tensor(obs))).numpy()
            unit = np.clip(unit + self.noise_std * self.rng.standard_normal(unit.shape).astype(np.float32), -1.0, 1.0)
        return unit, self.scale.to_env(unit)

    def priorities(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        actor, critic = self.nets["actor"], self.nets["critic"]
        x, x_next = actor.encoder(torch.as_tensor(chunk["obs"])), actor.encoder(torch.as_tensor(chunk["next_obs"]))
        q = critic(x, torch.as_tensor(chunk["actions"]), n=1)[0]
        q_next = critic(x_next, actor(x_next), n=1)[0]
        target = torch.as_tensor(chunk["rewards"]) + torch.as_tensor(chunk["discounts"] * (1.0 - chunk["terminated"])) * q_next
        return (target - q).abs().numpy()


def dpg_networks(observation_space: gym.Space, action_dim: int, c: ApeXDPGConfig) -> torch.nn.ModuleDict:
    """The DPG learner's actor and critics (what its actors get copies of)."""
    actor = DeterministicActor(observation_space, action_dim, c.net_arch, c.activation)
    critic = QEnsemble(c.n_critics, actor.encoder.dim + action_dim, c.net_arch, c.activation)
    return torch.nn.ModuleDict({"actor": actor, "critic": critic})


def q_network(observation_space: gym.Space, action_space: gym.Space, c: ApeXDQNConfig) -> QNetwork:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise EnvError(f"apex needs a Discrete action space; this env has {action_space}: use apex-dpg for "
                       "continuous actions")
    return QNetwork(observation_space, int(action_space.n), c.net_arch, c.activation, c.dueling)


class ApeX(Agent):
    """What both Ape-X learners share: the replay actor, the actors and the loop held to the replay
    ratio. A learner fills in setup (its networks, then `setup_apex(broadcast module)`), modules,
    act_batch, `actor_class` and `learn_from(batch, weights, part, report) -> (|delta| per sample,
    metrics)`, and may use `new_group` (minibatches arrive `prefetch` at a time, as one group)."""

    actor_class: type

    def setup_apex(self, broadcast_module: torch.nn.Module) -> None:
        self.broadcast_module = broadcast_module  # what the actors get copies of
        self.broadcast = WeightBroadcast()
        self.replay, self.save_replay = RemoteReplay(), self.config.save_replay_buffer
        self.actors = None  # started by the first iteration of a learn(), released at its end
        self.group: dict[str, torch.Tensor] | None = None  # the prefetched minibatches being learned from

    def learn_from(self, batch: Batch, weights: torch.Tensor, part: slice,
                   report: bool) -> tuple[torch.Tensor, dict[str, float]]:
        """A step on minibatch `part` of the group; its metrics when `report`."""
        raise NotImplementedError

    def new_group(self, group: dict[str, torch.Tensor]) -> None:
        """A prefetched group of minibatches arrived (a learner may compute what it can for all at once)."""

    # ---- the replay actor ---------------------------------------------------------------------------
    def start_replay(self, state: dict | None) -> None:
        import ray

        self.replay.actor = ray.remote(ReplayServer).options(num_cpus=0, max_restarts=0).remote(
            self.config, self.envs.observation_space, self.envs.action_space, self.seed + self.iteration, state)
        self.group, self.group_next = None, 0
        self.sample_request, self.priority_updates = None, []

    def request_samples(self):
        """The next group's request, carrying the new priorities of the minibatches learned from."""
        c = self.config
        slots, td_errors = (list(x) for x in zip(*self.priority_updates)) if self.priority_updates else ([], [])
        self.priority_updates = []
        self.sample_request = self.replay.actor.sample.remote(c.batch_size, c.prioritized_replay_beta, c.prefetch,
                                                              slots, td_errors)
        return self.sample_request

    def replace_replay(self) -> None:
        snapshot = self.replay.snapshot
        if snapshot is not None:
            print(f"{self.algo}: the replay actor died; restored from its snapshot of "
                  f"{len(snapshot['replay']['buffer']['obs']) * self.config.chunk} transitions", file=sys.stderr, flush=True)
        else:
            print(f"{self.algo}: the replay actor died and there is no snapshot; rebuilt empty, refilled by the actors",
                  file=sys.stderr, flush=True)
        self.start_replay(snapshot)
        self.replay.known_size = 0 if snapshot is None else len(snapshot["replay"]["buffer"]["obs"]) * self.config.chunk
        self.replay_restarts += 1

    def replay_call(self, method: str, *args: Any) -> Any:
        """A call to the replay actor, waited for; one that finds it dead replaces it (and returns None)."""
        import ray

        try:
            return ray.get(getattr(self.replay.actor, method).remote(*args))
        except lost_errors():
            self.replace_replay()
            return None

    def send_actor(self, index: int) -> None:
        """An actor's next request, with the newest weights: published when the learner has taken
        weight_sync_interval updates since the last (actors load weights only as a request starts,
        so none is put in the object store that no actor would read)."""
        c = self.config
        if self.published_at is None or self.counters.n_updates - self.published_at >= c.weight_sync_interval:
            self.broadcast.publish(self.broadcast_module)
            self.published_at = self.counters.n_updates
        warmup = self.replay.known_size < c.learning_starts
        self.actors.submit(index, "run", *self.broadcast.handle(), self.replay.actor, warmup)

    # ---- training ----------------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        if self.actors is None:
            self.start_replay(self.replay.pending)
            self.replay.pending, self.replay_restarts = None, 0
            self.actors = start_runners(self, c.actor_steps, self.actor_class)
            self.published_at = None  # (the new actors get the learner's weights with their first request)
            for index in range(len(self.actors)):
                self.send_actor(index)
        # 1. The actors that finished since the last iteration (at least one).
        finished = self.actors.wait(at_least=1)
        if self.actors.in_flight():
            finished += self.actors.wait(timeout=0, at_least=self.actors.in_flight())
        results = [r for r in finished if not (r.lost or r.dependency_lost)]
        for r in results:
            self.record_episodes(r.value["episodes"])
            self.num_steps += r.value["steps"]
        metrics: dict[str, float] = {}
        if self.replay.known_size < max(c.learning_starts, c.batch_size):  # until learning starts, the replay says
            self.replay.known_size = self.replay_call("size") or 0
        else:  # then the actors' flushes count (no round trip per iteration)
            flushed = sum(r.value["flushed"] for r in results)
            self.replay.known_size = min(c.buffer_size, self.replay.known_size + flushed)
        # 2. Learner steps up to the replay ratio, on prefetched minibatches.
        if self.replay.known_size >= max(c.learning_starts, c.batch_size):
            allowed = int((self.num_steps - c.learning_starts) / c.steps_per_update) - self.counters.n_updates
            for i in range(max(0, allowed)):
                step_metrics = self.learner_step(report=i == allowed - 1)
                if step_metrics is None:  # the replay died: restored, learning goes on next iteration
                    break
                metrics = step_metrics
        # 3. The finished actors go back to acting (with the newest weights; a replaced one too) only
        #    now: while the learner catches up with the replay ratio they wait, and leave it the CPU.
        for r in finished:
            self.send_actor(r.index)
        if c.replay_snapshot_seconds and time.monotonic() - self.replay.snapshot_at >= c.replay_snapshot_seconds:
            self.replay.snapshot = self.replay_call("state_dict")
            self.replay.snapshot_at = time.monotonic()
        metrics.update(replay_size=float(self.replay.known_size), updates=float(self.counters.n_updates),
                       actor_restarts=float(self.actors.restarts + self.replay_restarts))
        if results:
            metrics["actor_steps_per_s"] = float(np.mean([r.value["steps"] / max(r.value["seconds"], 1e-9)
                                                          for r in results]))
        return metrics

    def learner_step(self, report: bool = True) -> dict[str, float] | None:
        import ray

        c = self.config
        if self.group is None or self.group_next == c.prefetch:  # the request ahead arrives; the next goes out
            try:
                data = ray.get(self.sample_request or self.request_samples())
            except lost_errors():
                self.replace_replay()
                return None
            self.request_samples()
            self.group = {k: torch.tensor(v, device=self.device) for k, v in data.items() if k != "slots"}
            self.group["slots"], self.group_next = data["slots"], 0
            self.new_group(self.group)
        g, part = self.group, slice(self.group_next * c.batch_size, (self.group_next + 1) * c.batch_size)
        self.group_next += 1
        batch = Batch(g["obs"][part], g["actions"][part], g["rewards"][part], g["next_obs"][part],
                      g["terminated"][part], truncated=None, discount=g["discounts"][part])
        td_error, metrics = self.learn_from(batch, g["weights"][part], part, report)
        self.priority_updates.append((g["slots"][part], td_error.cpu().numpy()))  # (sent with the next request)
        return metrics

    def release(self) -> None:
        if self.actors is not None:
            import ray

            if self.save_replay:  # what a checkpoint after this learn() writes
                self.replay.pending = self.replay_call("state_dict")
            self.actors.shutdown()
            ray.kill(self.replay.actor, no_restart=True)
            self.replay.actor = None
            self.actors = None


class ApeXDQN(ApeX):
    """Ape-X with the double, dueling, n-step DQN learner."""

    algo = "apex"
    Config = ApeXDQNConfig
    actor_class = QActor

    def setup(self) -> None:
        c = self.config
        self.q_net = q_network(self.envs.observation_space, self.envs.action_space, c)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.step = OptimizerStep(self.q_net, c.learning_rate, max_grad_norm=c.max_grad_norm)
        self.target_pairs = (list(self.q_target.parameters()), list(self.q_net.parameters()))
        self.counters = Counters(n_updates=0)
        self.target_updates = 0  # (since this process started: what tells a group's Q'(s') pass is stale)
        self.setup_apex(self.q_net)

    def modules(self) -> dict:
        return {"q_net": self.q_net, "q_target": self.q_target, "optimizer": self.step.optimizer,
                "counters": self.counters}

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        with torch.no_grad():
            return self.q_net(torch.as_tensor(obs)).argmax(1).cpu().numpy()

    def new_group(self, group: dict[str, torch.Tensor]) -> None:
        """Q'(s', .) of the whole group in one pass (as DQN's rounds do): valid for its minibatches
        until the next target update."""
        with torch.no_grad():
            group["target_out"] = self.q_target(group["next_obs"])
        group["target_of"] = self.target_updates

    def learn_from(self, batch: Batch, weights: torch.Tensor, part: slice,
                   report: bool) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        fresh = self.group["target_of"] == self.target_updates  # (no target update since the group's pass)
        target = dqn_target(self.q_net, self.q_target, None, batch, c.gamma, c.double_q,
                            self.group["target_out"][part] if fresh else None)
        loss, td_error, stats = dqn_loss(self.q_net, None, batch, target, weights)
        self.step(loss)
        self.counters.n_updates += 1
        if self.counters.n_updates % c.target_update_interval == 0:
            polyak_update(*self.target_pairs, c.tau)
            self.target_updates += 1
        return td_error, {name: value.item() for name, value in stats.items()} if report else {}


class ApeXDPG(ApeX):
    """Ape-X with the DDPG/TD3 learner."""

    algo = "apex-dpg"
    Config = ApeXDPGConfig
    actor_class = DPGActor

    def setup(self) -> None:
        c = self.config
        self.scale = ActionScale(self.envs.action_space, self.algo)
        nets = dpg_networks(self.envs.observation_space, self.scale.dim, c)
        set_td3_learner(self, nets["actor"], nets["critic"], c.learning_rate)
        self.counters = Counters(n_updates=0, last_actor_loss=None)
        self.setup_apex(nets)

    def modules(self) -> dict:
        return td3_modules(self)

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        unit = self.actor(self.actor.encoder(obs)).cpu().numpy()
        if not deterministic:
            unit = np.clip(unit + self.config.action_noise_std_min * self.rng.standard_normal(unit.shape), -1.0, 1.0)
        return self.scale.to_env(unit.astype(np.float32))

    def learn_from(self, batch: Batch, weights: torch.Tensor, part: slice,
                   report: bool) -> tuple[torch.Tensor, dict[str, float]]:
        metrics, td_error = td3_update(self, batch, self.config, weights)
        return td_error, metrics

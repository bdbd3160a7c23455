"""Dyna-Q and Dyna-Q+ (Sutton & Barto 2018, sections 8.2-8.3) and prioritized sweeping (section 8.4):
tabular Q-learning that also learns a model of the env from its real steps and plans with it.

Every real step, the book's "Tabular Dyna-Q" box:
  (b-c) A = epsilon-greedy(S, Q); take it, observe R, S'
  (d)   Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)]      direct RL (one-step Q-learning)
  (e)   Model(S, A) <- R, S'                                                  a deterministic model: the last outcome
  (f)   n times (planning_steps): S <- a random previously observed state, A <- a random action
        previously taken in S, R, S' <- Model(S, A), and update (d) on them.
Dyna-Q+ (plus=true, section 8.3) plans with the reward R + kappa sqrt(tau), tau the real steps since
(S, A) was last tried, and (the book's footnote) lets planning pick any action of an observed state,
an untried one modelled as leading back to S with reward 0. The bonus is for planning only, but Q
holds it: Dyna-Q+'s greedy policy can prefer a long-untried bump into a wall, which acting (no
update) never corrects; its epsilon-greedy behaviour does.
Prioritized sweeping (prioritized=true, the box of section 8.4) replaces (d) and (f): the real
transition is queued with priority P = |R + gamma max_a Q(S', a) - Q(S, A)| when P > theta; then up to
n times the first pair of the queue gets update (d) from the model, and every pair the model predicts
to lead to its state S is queued with its own |TD error| when that exceeds theta (a pair already
queued keeps the higher of its priorities; equal priorities leave in table order).

Terminal transitions do not bootstrap (the model keeps `terminated`); a truncated episode's last
transition bootstraps from the state it was cut at. With n_envs > 1 the transitions of one step are
learned one after another, each followed by its n planning updates. The tables hold L independent
learners (L = 1 for the agent): benchmarks/dyna_figures.py averages the book's 30 runs by stepping
30 learners through these same functions at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ascent.algorithms.tabular import discrete_n, epsilon_greedy
from ascent.core.agent import Agent
from ascent.core.config import CommonConfig, param
from ascent.errors import ConfigError


@dataclass
class DynaQConfig(CommonConfig):
    # The defaults are the book's for Figure 8.2 (alpha 0.1, epsilon 0.1; its gamma 0.95 is the mazes'
    # preset, ascent/presets/dynaq.toml: gamma is declared once, in CommonConfig).
    learning_rate: float = param(0.1, "step size alpha of the direct and the planning updates",
                                 range=(0.0, 1.0), low_open=True)
    epsilon: float = param(0.1, "epsilon of the epsilon-greedy behaviour policy (constant)", range=(0.0, 1.0))
    planning_steps: int = param(5, "n: planning updates from the model per real step (0: one-step Q-learning)",
                                nonnegative=True)
    plus: bool = param(False, "Dyna-Q+: the planning reward r + kappa sqrt(tau) and untried actions in planning")
    kappa: float = param(1e-3, "Dyna-Q+'s exploration bonus scale", range=(0.0, math.inf))
    prioritized: bool = param(False, "prioritized sweeping: plan from a queue of the largest TD errors")
    theta: float = param(1e-4, "prioritized sweeping's threshold: pairs queue when |TD error| > theta",
                         range=(0.0, math.inf))
    q_init: float = param(0.0, "initial value of every Q(s, a)", range=(-math.inf, math.inf))
    log_interval: int = param(100, "iterations (env steps per env) per row of metrics")

    def validate(self) -> None:
        super().validate()
        if self.normalize_reward:
            raise ConfigError("normalize_reward does not apply to Dyna-Q (the model learns the env's own rewards); "
                              "leave it false")
        if self.plus and self.prioritized:
            raise ConfigError("plus=true and prioritized=true: Dyna-Q+'s bonus is defined for random planning, not "
                              "for prioritized sweeping; choose one")


def q_update(q: np.ndarray, rows: np.ndarray, s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray,
             terminated: np.ndarray, alpha: float, gamma: float) -> np.ndarray:
    """Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)] (no bootstrap where terminated) for
    one pair of each learner `rows` of q (L, S, A), in place. Returns the TD errors (len(rows),)."""
    td = r + gamma * ~terminated * q[rows, s2].max(1) - q[rows, s, a]
    q[rows, s, a] += alpha * td
    return td


def pick(counts: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row of running counts (..., R, K) of a boolean mask (its cumsum over K), the index of its
    True entry number floor(u * total) for u (..., R): uniform among the True entries for u uniform
    in [0, 1)."""
    k = np.floor(u * counts[..., -1])
    return (counts > k[..., None]).argmax(-1)


class DynaTables(torch.nn.Module):
    """Q, the deterministic model and the planning bookkeeping of L independent learners, as (L, S, A)
    buffers (a checkpoint holds them like weights; the methods work on numpy views of them)."""

    def __init__(self, learners: int, n_states: int, n_actions: int, q_init: float = 0.0):
        super().__init__()
        shape = (learners, n_states, n_actions)
        self.register_buffer("q", torch.full(shape, float(q_init), dtype=torch.float64))
        # Model(s, a): the last outcome; an untried pair leads back to s with reward 0 (Dyna-Q+'s initial model)
        self.register_buffer("next_state", torch.arange(n_states).view(1, -1, 1).expand(shape).clone())
        self.register_buffer("reward", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("terminated", torch.zeros(shape, dtype=torch.bool))
        self.register_buffer("tried", torch.zeros(shape, dtype=torch.bool))
        self.register_buffer("last_tried", torch.zeros(shape, dtype=torch.int64))  # the real step it was last tried
        self.register_buffer("time", torch.zeros(learners, dtype=torch.int64))  # real steps taken
        self.register_buffer("priority", torch.zeros(shape, dtype=torch.float64))  # the queue: > 0 where queued

    def learn(self, s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray, terminated: np.ndarray,
              c: DynaQConfig, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """One real transition of every learner (arrays (L,)): steps (d)-(f) of the module docstring.
        Returns the transitions' TD errors (before the update) and the number of planning updates."""
        q, rows = self.q.numpy(), np.arange(len(s))
        time = self.time.numpy()
        time += 1
        self.tried.numpy()[rows, s, a] = True
        self.last_tried.numpy()[rows, s, a] = time
        self.next_state.numpy()[rows, s, a], self.reward.numpy()[rows, s, a] = s2, r  # (e)
        self.terminated.numpy()[rows, s, a] = terminated
        if c.prioritized:
            td = r + c.gamma * ~terminated * q[rows, s2].max(1) - q[rows, s, a]
            queue = self.priority.numpy()
            queue[rows, s, a] = np.where(np.abs(td) > c.theta, np.maximum(queue[rows, s, a], np.abs(td)),
                                         queue[rows, s, a])
            return td, self.sweep(c)
        td = q_update(q, rows, s, a, r, s2, terminated, c.learning_rate, c.gamma)  # (d)
        return td, self.plan(c, rng)

    def plan(self, c: DynaQConfig, rng: np.random.Generator) -> int:
        """(f): planning_steps random one-step updates from the model, for every learner that has
        tried something. Returns the updates made (over all learners)."""
        q, tried, time = self.q.numpy(), self.tried.numpy(), self.time.numpy()
        model_next, model_reward, model_term = self.next_state.numpy(), self.reward.numpy(), self.terminated.numpy()
        rows = np.flatnonzero(tried.any((1, 2)))
        if c.planning_steps == 0 or len(rows) == 0:
            return 0
        # The model does not change while planning: every draw's (S, A) and outcome is known up front.
        n, n_actions, cols = c.planning_steps, q.shape[2], np.arange(len(rows))
        u = rng.random((2, n, len(rows)))
        s = pick(tried[rows].any(2).cumsum(1), u[0])  # (n, R) previously observed states
        if c.plus:  # any action; the untried ones lead back to s with reward 0 (the initial model)
            a = np.minimum((u[1] * n_actions).astype(np.int64), n_actions - 1)
        else:  # an action previously taken in s
            a = pick(tried[rows].cumsum(2)[cols, s], u[1])
        r, s2, term = model_reward[rows, s, a], model_next[rows, s, a], model_term[rows, s, a]
        if c.plus:  # Dyna-Q+'s bonus: tau real steps since (s, a) was last tried
            r = r + c.kappa * np.sqrt(time[rows] - self.last_tried.numpy()[rows, s, a])
        for k in range(n):
            q_update(q, rows, s[k], a[k], r[k], s2[k], term[k], c.learning_rate, c.gamma)
        return c.planning_steps * len(rows)

    def sweep(self, c: DynaQConfig) -> int:
        """Prioritized sweeping's planning: up to planning_steps updates of the queue's first pair, each
        queueing the predecessors of its state. Returns the updates made (over all learners)."""
        q, queue = self.q.numpy(), self.priority.numpy()
        model_next, model_reward, model_term = self.next_state.numpy(), self.reward.numpy(), self.terminated.numpy()
        tried = self.tried.numpy()
        n_actions, flat, updates = q.shape[2], queue.reshape(len(q), -1), 0
        for _ in range(c.planning_steps):
            rows = np.flatnonzero(flat.max(1) > 0)
            if len(rows) == 0:
                break
            first = flat[rows].argmax(1)
            flat[rows, first] = 0.0  # popped
            s, a = np.divmod(first, n_actions)
            q_update(q, rows, s, a, model_reward[rows, s, a], model_next[rows, s, a], model_term[rows, s, a],
                     c.learning_rate, c.gamma)
            updates += len(rows)
            # the pairs (s_bar, a_bar) predicted to lead to s, and their TD errors with the new Q(s, .)
            leads = tried[rows] & ~model_term[rows] & (model_next[rows] == s[:, None, None])  # (R, S, A)
            p = np.abs(model_reward[rows] + c.gamma * q[rows, s].max(1)[:, None, None] - q[rows])
            queue[rows] = np.where(leads & (p > c.theta), np.maximum(queue[rows], p), queue[rows])
        return updates


class DynaQ(Agent):
    """Tabular Dyna-Q, Dyna-Q+ (plus=true) and prioritized sweeping (prioritized=true). The runner's
    episode_length metric is Figure 8.2's steps per episode."""

    algo = "dynaq"
    Config = DynaQConfig

    def setup(self) -> None:
        envs, env_id = self.envs, self.env_id
        self.n_states, self.obs_start = discrete_n(
            envs.observation_space, "observation", env_id,
            "Dyna-Q's model is a table over states; for continuous observations use a model-free method "
            "(dqn, ppo, or cem)")
        self.n_actions, self.action_start = discrete_n(envs.action_space, "action", env_id,
                                                       "use sac, td3, ppo or cem for continuous actions")
        self.tables = DynaTables(1, self.n_states, self.n_actions, self.config.q_init)

    def modules(self) -> dict:
        return {"tables": self.tables}

    def q_table(self) -> np.ndarray:
        """A copy of Q as a (S, A) numpy array."""
        return self.tables.q.numpy()[0].copy()

    def states(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.int64).reshape(-1) - self.obs_start

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Greedy argmax_a Q(s, a) (ties to the lowest action), or epsilon-greedy."""
        q_s = self.tables.q.numpy()[0][self.states(obs)]
        a = q_s.argmax(1) if deterministic else epsilon_greedy(q_s, self.config.epsilon, self.rng)
        return a + self.action_start

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        s = self.states(self.obs)
        a = epsilon_greedy(self.tables.q.numpy()[0][s], c.epsilon, self.rng)
        step = self.envs.step(a + self.action_start)
        if step.episodes:
            self.record_episodes(step.episodes)
        # S': where an episode was truncated, the state it was cut at (a terminated transition's S' is
        # never read: it does not bootstrap)
        s2 = self.states(step.obs)
        if step.bootstrap is not None:
            s2[step.bootstrap] = self.states(step.final_obs)[step.bootstrap]
        td, updates = [], 0
        for i in np.flatnonzero(step.valid):  # one transition after another, each with its planning
            one = slice(i, i + 1)
            err, n = self.tables.learn(s[one], a[one], step.reward[one].astype(np.float64), s2[one],
                                       step.terminated[one], c, self.rng)
            td.append(abs(float(err[0])))
            updates += n
        self.obs = step.obs
        self.num_steps += self.envs.num_envs
        return {"td_error": float(np.mean(td)) if td else 0.0, "planning_updates": float(updates)}

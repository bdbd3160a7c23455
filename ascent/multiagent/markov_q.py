"""Q-learning in two-player Markov games with tables: Minimax-Q (Littman 1994), Nash-Q (Hu & Wellman
2003), and independent Q-learning (each player treats the other as part of the env) as the baseline.
On ascent's Markov games (`--env soccer`, `grid_game`, `two_step`; ascent/envs/markov_games.py).

Minimax-Q and Nash-Q learn values of joint actions, Q_i(s, a_i, a_-i) for each learning player i,
and after every step (s, a, r, s') move them towards the value of the stage game at s':

  Q_i(s, a) <- (1 - alpha) Q_i(s, a) + alpha (r_i + gamma V_i(s'))        (V_i(s') = 0 where the game ended)

  Minimax-Q   V_i(s) = max_pi min_o sum_a pi(a) Q_i(s, a, o)   (the LP of ascent.multiagent.normal_form.maximin),
              and the player's policy in s is the maximising pi (a mixed strategy);
  Nash-Q      V_i(s) = pi_0(s)^T Q_i(s) pi_1(s) for a Nash equilibrium (pi_0, pi_1) of the bimatrix game
              (Q_0(s), Q_1(s)) (support enumeration; of several, the largest total payoff, which Hu & Wellman's
              coordination assumption asks all players to pick alike; where none is found, the pure profile
              whose best deviation gains least);
  IQL         Q_i(s, a_i) <- (1 - alpha) Q_i(s, a_i) + alpha (r_i + gamma max_a' Q_i(s', a')).

Behaviour: with probability `exploration` a uniformly random action, else the player's policy (Littman:
explor = 0.2). Littman starts every Q and V at 1 (`q_init`, the soccer presets): optimism that makes a
joint action not yet tried look good. Started at 0, Minimax-Q's worst case over the opponent's actions
is an untried entry's 0, unvisited ball-carrying states tie at 0, and the LP's tie (the first action:
N) walks the carrier into the top wall: at 10^6 steps it won 30% against random, at 3 x 10^5 from 1, 95%. alpha decays geometrically from learning_rate to learning_rate_final over the run
(Littman: from 1 to 0.01 over 10^6 steps), or as 1 / n(s, a) with n the updates of the entry so far
(Hu & Wellman; `learning_rate_decay = "visits"`, Nash-Q's default). `opponent = "self"`: both seats learn (Littman's MM, QQ);
`"random"`: seat 1 plays uniformly at random (MR, QR). A mixed strategy is the policy: acting, even
"deterministically", draws from it (its most probable action alone is no equilibrium strategy).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch

from ascent.core.agent import Agent, Counters
from ascent.core.config import CommonConfig, param
from ascent.envs.markov_games import MarkovGame, check_markov_game
from ascent.errors import ConfigError
from ascent.multiagent.normal_form import NormalFormGame, maximin, support_enumeration


@dataclass
class MarkovQConfig(CommonConfig):
    learning_rate: float = param(1.0, "alpha at the start", range=(0.0, 1.0), low_open=True)
    learning_rate_final: float = param(0.01, "alpha at the end (geometric decay)", range=(0.0, 1.0), low_open=True)
    learning_rate_decay: str = param("geometric", "geometric: from learning_rate to learning_rate_final over the run "
                                     "(Littman) | visits: alpha = learning_rate / n(s, a), n the updates of that entry "
                                     "(Hu & Wellman)", choices=("geometric", "visits"))
    exploration: float = param(0.2, "probability of a uniformly random action", range=(0.0, 1.0))
    q_init: float = param(0.0, "initial Q and V of every entry (Littman's Minimax-Q starts them at 1: optimism that "
                          "tries every joint action)", range=(-math.inf, math.inf))
    opponent: str = param("self", "self: both seats learn | random: seat 1 plays uniformly at random",
                          choices=("self", "random"))
    log_interval: int = param(1000, "iterations (joint steps) per row of metrics")

    def validate(self) -> None:
        super().validate()
        if self.n_envs != 1:
            raise ConfigError("the tabular Markov-game learners step one game: leave n_envs at 1")
        if self.normalize_reward:
            raise ConfigError("normalize_reward does not apply to tabular methods; leave it false")


class Tables(torch.nn.Module):
    """Q, the policies and the values as float64 buffers (checkpointed like weights)."""

    def __init__(self, q_shape: tuple[int, ...], n_states: int, n_actions: int, q_init: float = 0.0):
        super().__init__()
        self.register_buffer("q", torch.full(q_shape, q_init, dtype=torch.float64))
        self.register_buffer("pi", torch.full((2, n_states, n_actions), 1.0 / n_actions, dtype=torch.float64))
        self.register_buffer("v", torch.full((2, n_states), q_init, dtype=torch.float64))
        self.register_buffer("n", torch.zeros(q_shape, dtype=torch.float64))  # (updates of each entry)


class MarkovQ(Agent):
    """The loop the three share: one joint step per iteration, both learning seats updated."""

    Config = MarkovQConfig
    joint: ClassVar[bool] = True  # Q over joint actions (Minimax-Q, Nash-Q) or over one's own (IQL)

    def setup(self) -> None:
        self.game: MarkovGame = check_markov_game(
            self._env_source if isinstance(self._env_source, MarkovGame) else self.env_id, self.algo,
            f"(observations {self.envs.observation_space}, actions {self.envs.action_space}) ")
        S, A = self.game.n_states, self.game.n_actions
        self.tables = Tables((2, S, A, A) if self.joint else (2, S, A), S, A, self.config.q_init)
        self.counters = Counters(returns=np.zeros(2))  # (the game under way's returns so far)
        self.learners = (0, 1) if self.config.opponent == "self" else (0,)

    def modules(self) -> dict:
        return {"tables": self.tables, "counters": self.counters}

    @property
    def q(self) -> np.ndarray:
        return self.tables.q.numpy()  # (a view: writing it writes the checkpointed buffer)

    def strategy(self, seat: int, s: int) -> np.ndarray:
        """The player's policy in state s (a distribution over its actions)."""
        return self.tables.pi.numpy()[seat, s]

    def policy(self, seat: int, seed: int | None = None) -> Callable[[int], int]:
        """The learnt policy of `seat` as a function of the state (for OneSeatEnv's opponent), frozen."""
        pi, rng = self.tables.pi.numpy()[seat].copy(), np.random.default_rng(seed)
        return lambda s: int(rng.choice(len(pi[s]), p=pi[s]))

    def play(self, seed: int, rng: np.random.Generator) -> np.ndarray:
        """One game of a fresh copy of the game, every seat drawing from its learnt strategy; the
        players' rewards at each step (steps, 2)."""
        game = copy.deepcopy(self.game)
        game.reset(seed=seed)
        rewards = []
        while game.agents:
            s = game.state()
            _, rew, _, _, _ = game.step({a: int(rng.choice(game.n_actions, p=self.strategy(i, s)))
                                         for i, a in enumerate(game.possible_agents)})
            rewards.append([rew[a] for a in game.possible_agents])
        return np.array(rewards)

    def act_batch(self, obs, deterministic: bool) -> np.ndarray:
        """Seat 0's actions (the base's env is seat 0 against a random player): drawn from its policy."""
        pi = self.tables.pi.numpy()[0]
        return np.array([self.rng.choice(pi.shape[1], p=pi[int(s)]) for s in np.asarray(obs).reshape(-1)])

    def alpha(self) -> float:
        c = self.config
        return c.learning_rate * (c.learning_rate_final / c.learning_rate) ** self.progress

    def behaviour(self, seat: int, s: int) -> int:
        A = self.game.n_actions
        if seat not in self.learners or self.rng.random() < self.config.exploration:
            return int(self.rng.integers(A))
        return int(self.rng.choice(A, p=self.strategy(seat, s)))

    def train_iteration(self) -> dict[str, float]:
        game, c = self.game, self.config
        if not game.agents:  # (a new game: at the start, after one ended, and in a loaded agent)
            game.reset(seed=int(self.rng.integers(2**31)))
            self.counters.returns = np.zeros(2)
        s = game.state()
        joint = [self.behaviour(seat, s) for seat in (0, 1)]
        obs, rew, term, trunc, _ = game.step(dict(zip(game.agents, joint)))
        r = np.array([rew[a] for a in game.possible_agents])
        s2, ended = obs[game.possible_agents[0]], term[game.possible_agents[0]]
        alpha, changes = self.alpha(), []
        for seat in self.learners:
            own, other = joint[seat], joint[1 - seat]
            target = r[seat] + (0.0 if ended else c.gamma * self.next_value(seat, s2))
            index = (seat, s, own, other) if self.joint else (seat, s, own)
            changes.append(abs(target - self.q[index]))
            if c.learning_rate_decay == "visits":
                n = self.tables.n.numpy()
                n[index] += 1
                alpha = c.learning_rate / n[index]
            self.q[index] += alpha * (target - self.q[index])
        self.solve_stage(s)  # (the policies and values in s, from its new Q)
        self.counters.returns = self.counters.returns + r
        self.num_steps += 1
        metrics = {"td_error": float(np.mean(changes)), "learning_rate": alpha}
        if ended or trunc[game.possible_agents[0]]:
            returns = self.counters.returns
            self.record_episodes([(float(returns[0]), game.steps)])
            metrics.update({"return_player_0": float(returns[0]), "return_player_1": float(returns[1])})
            if game.cooperative:
                metrics["team_return"] = float(returns[0])
        return metrics

    # ---- each algorithm's stage game ---------------------------------------------------------------
    def next_value(self, seat: int, s: int) -> float:
        return float(self.tables.v.numpy()[seat, s])

    def solve_stage(self, s: int) -> None:
        raise NotImplementedError


class MinimaxQ(MarkovQ):
    """Minimax-Q: each learning seat plays the maximin strategy of its Q(s, ., .)."""

    algo = "minimaxq"

    def solve_stage(self, s: int) -> None:
        pi, v = self.tables.pi.numpy(), self.tables.v.numpy()
        for seat in self.learners:
            pi[seat, s], v[seat, s] = maximin(self.q[seat, s])


def nash_equilibrium(row: np.ndarray, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Nash equilibrium of the bimatrix game (row, column): of those support enumeration finds,
    the largest total payoff (first found on ties); where it finds none (a degenerate game), the pure
    profile whose most profitable deviation gains least."""
    found = support_enumeration(NormalFormGame("stage", row, column, ((),) * 2))
    if found:
        totals = [x @ (row + column) @ y for x, y in found]
        return found[int(np.argmax(np.round(totals, 9)))]
    regret = np.maximum(row.max(axis=0, keepdims=True) - row, column.max(axis=1, keepdims=True) - column)
    i, j = np.unravel_index(int(np.argmin(regret)), row.shape)
    x, y = np.zeros(row.shape[0]), np.zeros(row.shape[1])
    x[i], y[j] = 1.0, 1.0
    return x, y


@dataclass
class NashQConfig(MarkovQConfig):
    learning_rate_decay: str = param("visits")


class NashQ(MarkovQ):
    """Nash-Q: both seats' Q tables, and in every state a Nash equilibrium of the stage game they make."""

    algo = "nashq"
    Config = NashQConfig

    def setup(self) -> None:
        super().setup()
        if self.config.opponent != "self":
            raise ConfigError("nashq learns both players' Q (a Nash equilibrium needs both): opponent must be 'self'")

    def solve_stage(self, s: int) -> None:
        row, column = self.q[0, s], self.q[1, s].T  # (player 0's action, player 1's) for both
        x, y = nash_equilibrium(row, column)
        pi, v = self.tables.pi.numpy(), self.tables.v.numpy()
        pi[0, s], pi[1, s] = x, y
        v[0, s], v[1, s] = x @ row @ y, x @ column @ y


class IndependentQ(MarkovQ):
    """Independent Q-learners: Q_i(s, a_i) each, epsilon-greedy (ties at random), the other player
    part of the env."""

    algo = "iql"
    joint = False

    def next_value(self, seat: int, s: int) -> float:
        return float(self.q[seat, s].max())

    def solve_stage(self, s: int) -> None:
        pi = self.tables.pi.numpy()
        for seat in self.learners:
            best = np.flatnonzero(self.q[seat, s] >= self.q[seat, s].max() - 1e-12)
            pi[seat, s] = 0.0
            pi[seat, s, best] = 1.0 / len(best)


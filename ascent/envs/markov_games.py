"""Markov games shipped by ascent, on PettingZoo's parallel API (no library has them):

- `soccer`: Littman's grid soccer (1994). A 4 x 5 field, players A (`player_0`) and B (`player_1`),
  one ball. Each step both choose N, S, E, W or stand; the two moves are executed in random order.
  A move onto the other player's square does not happen, and the ball goes to the player standing
  there. The player with the ball scores by carrying it into the goal it attacks (A: left of
  column 0, B: right of column 4, in the two middle rows): +1 to it, -1 to the other, and the game
  ends. Carrying it into the goal it defends scores for the other (Greenwald & Hall 2003's rule;
  Littman's paper does not say). A and B start at (1, 3) and (2, 1) (row, column; the board turned
  half a turn maps one onto the other), the ball with one of them at random. Games longer than
  `max_steps` are cut (a draw).
- `grid_game`: Hu & Wellman's Grid Game 1 (2003), general-sum. A 3 x 3 grid; player 0 starts at the
  bottom left and heads for the top right, player 1 the mirror image. Each step both move up, down,
  left or right at once; into the same square, both bounce back and get -1; off the grid, a player
  stays where it is. Reaching its goal gives +100, and the game ends when a player has reached its goal.
- `two_step`: the two-step cooperative game of the QMIX paper (Rashid et al. 2018, fig. 3). In the
  first state agent 0's action picks the second: 2A, where every joint action pays 7, or 2B, which
  pays [[0, 1], [1, 8]]; one team reward, then the end. The optimum is 8 (2B, then both B); a value
  decomposition that is a sum (VDN) cannot represent 2B's payoffs and settles for 7.

The games are fully observed and small: every agent observes the whole state as one integer
(Discrete(n_states)), which the tabular learners index their tables with; `state()` is the same
integer. (ascent/envs/multiagent.py's `OneSeatEnv` is one player's seat as a Gymnasium env against a
fixed opponent: `--env soccer` for every single-agent algorithm, and evaluation.)
"""

from __future__ import annotations

import functools
import re
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from ascent.errors import EnvError, did_you_mean


class MarkovGame(ParallelEnv):
    """What the three games share: agents, Discrete spaces, the state as one integer, seeding."""

    metadata = {"render_modes": ["ansi"], "name": "markov_game", "is_parallelizable": True}
    n_states: int
    n_actions: int
    action_names: tuple[str, ...]
    zero_sum: bool = False
    cooperative: bool = False

    def __init__(self, render_mode: str | None = None, max_steps: int = 100):
        if render_mode not in (None, "ansi"):
            raise EnvError(f"{self.metadata['name']} renders as text only: render_mode='ansi' (got {render_mode!r})")
        self.render_mode, self.max_steps = render_mode, int(max_steps)
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self.state_space = gym.spaces.Discrete(self.n_states)
        self.rng = np.random.default_rng()
        self.steps = 0

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> gym.Space:
        return gym.spaces.Discrete(self.n_states)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> gym.Space:
        return gym.spaces.Discrete(self.n_actions)

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents, self.steps = list(self.possible_agents), 0
        self.start()
        s = self.state()
        return {a: s for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]):
        if not self.agents:
            raise EnvError(f"{self.metadata['name']}: step() after the game ended; call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise EnvError(f"{self.metadata['name']}: no action for {missing} (every agent moves every step)")
        joint = [int(actions[a]) for a in self.possible_agents]
        for a, action in zip(self.possible_agents, joint):
            if not 0 <= action < self.n_actions:
                raise EnvError(f"{self.metadata['name']}: {a}'s action {action} is not in 0..{self.n_actions - 1}")
        rewards, done = self.move(joint)
        self.steps += 1
        cut = not done and self.steps >= self.max_steps
        s = self.state()
        obs = {a: s for a in self.agents}
        rew = {a: float(r) for a, r in zip(self.agents, rewards)}
        term = {a: done for a in self.agents}
        trunc = {a: cut for a in self.agents}
        infos = {a: {} for a in self.agents}
        if done or cut:
            self.agents = []
        return obs, rew, term, trunc, infos

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self.board()
        return None

    def close(self) -> None:
        pass

    # ---- each game's ----------------------------------------------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    def move(self, joint: list[int]) -> tuple[list[float], bool]:
        """Apply the joint action; the players' rewards and whether the game ended."""
        raise NotImplementedError

    def state(self) -> int:
        raise NotImplementedError

    def board(self) -> str:
        raise NotImplementedError


MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, 1), 3: (0, -1), 4: (0, 0)}  # N, S, E, W, stand (row, column)


class Soccer(MarkovGame):
    metadata = {**MarkovGame.metadata, "name": "soccer"}
    rows, columns, goal_rows = 4, 5, (1, 2)
    n_actions, action_names = 5, ("N", "S", "E", "W", "stand")
    n_states = (4 * 5) ** 2 * 2  # A's square, B's square, who has the ball
    zero_sum = True
    starts = ((1, 3), (2, 1))

    def start(self) -> None:
        self.pos = [list(p) for p in self.starts]
        self.ball = int(self.rng.integers(2))

    def state(self) -> int:
        a, b = (r * self.columns + c for r, c in self.pos)
        return (a * self.rows * self.columns + b) * 2 + self.ball

    def move(self, joint: list[int]) -> tuple[list[float], bool]:
        for player in self.rng.permutation(2):
            dr, dc = MOVES[joint[player]]
            r, c = self.pos[player][0] + dr, self.pos[player][1] + dc
            if self.ball == player and r in self.goal_rows and c in (-1, self.columns):
                scorer = player if (c == -1) == (player == 0) else 1 - player  # (A attacks the left goal)
                return ([1.0, -1.0] if scorer == 0 else [-1.0, 1.0]), True
            if not (0 <= r < self.rows and 0 <= c < self.columns):
                continue
            if [r, c] == self.pos[1 - player]:
                self.ball = 1 - player  # (the player standing there has it, or gets it)
                continue
            self.pos[player] = [r, c]
        return [0.0, 0.0], False

    def board(self) -> str:
        cells = [["." for _ in range(self.columns)] for _ in range(self.rows)]
        for player, (r, c) in enumerate(self.pos):
            cells[r][c] = "AB"[player] if self.ball != player else "ab"[player]
        edge = lambda r: "|" if r in self.goal_rows else " "  # noqa: E731
        return "\n".join(f"{edge(r)}{''.join(row)}{edge(r)}" for r, row in enumerate(cells)) + \
            "\n(A attacks the left goal, B the right; lower case: has the ball)"


class GridGame(MarkovGame):
    metadata = {**MarkovGame.metadata, "name": "grid_game"}
    size = 3
    n_actions, action_names = 4, ("up", "down", "right", "left")
    n_states = 9 * 9
    starts, goals = ((2, 0), (2, 2)), ((0, 2), (0, 0))

    def start(self) -> None:
        self.pos = [tuple(p) for p in self.starts]

    def state(self) -> int:
        a, b = (r * self.size + c for r, c in self.pos)
        return a * self.size * self.size + b

    def move(self, joint: list[int]) -> tuple[list[float], bool]:
        wanted = []
        for player in range(2):
            dr, dc = MOVES[joint[player]]
            r, c = self.pos[player][0] + dr, self.pos[player][1] + dc
            wanted.append((r, c) if 0 <= r < self.size and 0 <= c < self.size else self.pos[player])
        if wanted[0] == wanted[1]:
            return [-1.0, -1.0], False  # (both bounce back)
        self.pos = wanted
        arrived = [self.pos[p] == self.goals[p] for p in range(2)]
        return [100.0 if a else 0.0 for a in arrived], any(arrived)

    def board(self) -> str:
        cells = [["." for _ in range(self.size)] for _ in range(self.size)]
        for p, (r, c) in enumerate(self.goals):
            cells[r][c] = "ab"[p]
        for p, (r, c) in enumerate(self.pos):
            cells[r][c] = "AB"[p] if cells[r][c] != "AB"[1 - p] else "X"
        return "\n".join("".join(row) for row in cells) + "\n(A, B the players; a, b their goals)"


class TwoStep(MarkovGame):
    metadata = {**MarkovGame.metadata, "name": "two_step"}
    n_actions, action_names = 2, ("A", "B")
    n_states = 3  # 1, 2A, 2B
    cooperative = True
    payoffs = {1: np.full((2, 2), 7.0), 2: np.array([[0.0, 1.0], [1.0, 8.0]])}

    def __init__(self, render_mode: str | None = None, max_steps: int = 2):
        super().__init__(render_mode, max_steps)
        self.possible_agents = ["agent_0", "agent_1"]

    def start(self) -> None:
        self.s = 0

    def state(self) -> int:
        return self.s

    def move(self, joint: list[int]) -> tuple[list[float], bool]:
        if self.s == 0:
            self.s = 1 + joint[0]  # agent 0 picks the matrix game of the second step
            return [0.0, 0.0], False
        team = float(self.payoffs[self.s][joint[0], joint[1]])
        return [team, team], True

    def board(self) -> str:
        return ["state 1", "state 2A (every joint action pays 7)", "state 2B (pays [[0, 1], [1, 8]])"][self.s]


MARKOV_GAMES: dict[str, type[MarkovGame]] = {"soccer": Soccer, "grid_game": GridGame, "two_step": TwoStep}


def markov_game_names() -> list[str]:
    return sorted(MARKOV_GAMES)


def is_markov_game_id(env_id: Any) -> bool:
    return isinstance(env_id, str) and env_id.split("(", 1)[0].strip() in MARKOV_GAMES


def make_markov_game(spec: str, render_mode: str | None = None) -> MarkovGame:
    """A game by name, with parameters as OpenSpiel spells them: `soccer`, `soccer(max_steps=50)`."""
    m = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", spec)
    name = m.group(1) if m else spec
    if name not in MARKOV_GAMES:
        raise EnvError(f"unknown Markov game {spec!r}{did_you_mean(name, list(MARKOV_GAMES))}; ascent's Markov games: "
                       f"{', '.join(markov_game_names())}")
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (m.group(2) or "").split(","))):
        key, _, value = part.partition("=")
        if key.strip() != "max_steps" or not value.strip().isdigit() or int(value) < 1:
            raise EnvError(f"{name}: bad parameter {part!r}; the one parameter is max_steps=N (N >= 1), "
                           f"e.g. {name}(max_steps=50)")
        kwargs["max_steps"] = int(value)
    return MARKOV_GAMES[name](render_mode=render_mode, **kwargs)


def check_markov_game(env: Any, algo: str, spaces: str = "") -> MarkovGame:
    """The game an algorithm for ascent's two-player Markov games was given (a name or a game), or a
    clear error; `spaces` describes a single-agent env's spaces for the message."""
    if isinstance(env, MarkovGame):
        return env
    if is_markov_game_id(env):
        return make_markov_game(env)
    raise EnvError(f"{algo} learns in ascent's two-player Markov games ({', '.join(markov_game_names())}), whose "
                   f"states it counts; {env if isinstance(env, str) else 'this env'} {spaces}is a single-agent env: "
                   "use a single-agent algorithm (qlearning for finite ones)")

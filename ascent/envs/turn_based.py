"""Turn-based two-player games: PettingZoo's classic AEC envs (`pettingzoo:tictactoe_v3`,
`pettingzoo:connect_four_v3`), played from one seat against an opponent.

- `TurnBasedGame`: a game by name; `new_initial_state()` gives a `TurnState`, one AEC env behind the
  interface of OpenSpiel's states that the arena plays on (current_player, legal_actions,
  apply_action, is_terminal, returns), plus `observation(player)`, PettingZoo's own dict
  {"observation", "action_mask"} for that player. Games with an OpenSpiel twin (tictactoe_v3 <->
  tic_tac_toe, connect_four_v3 <-> connect_four) map a state onto it (`to_openspiel`) so that
  ascent's search players (MCTS, minimax) can play them.
- `TurnBasedVecEnv`: n copies of a game as a Gymnasium vector env for one learner: in each copy the
  learner moves from one seat, its seat alternating between the copy's episodes (copy k starts in
  seat k % 2), and an opponent drawn per episode from a table (uniformly random by default) makes
  the other seat's moves, batched over the copies that share it. The learner sees its observation
  dict, with its legal moves in `action_mask`, and the game's outcome at the end: +1 win, 0 draw,
  -1 loss. What `--env pettingzoo:tictactoe_v3` gives every algorithm (against random), and the
  self-play algorithm's env (ascent/multiagent/selfplay.py sets its opponents).
- `play_games`: a match of two movers over n games, alternating seats (evaluation, Elo).

A mover is a function (batched observation dicts, numpy Generator) -> actions. The envs are PettingZoo's
`raw_env` where the module has one: this layer checks every move against the mask itself, so the
order-enforcing and illegal-move wrappers only cost time (tic-tac-toe: 30 against 100 us a move).
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from ascent.envs.multiagent import PETTINGZOO_FAMILIES, env_kwargs
from ascent.errors import EnvError

Mover = Callable[[dict, np.random.Generator], np.ndarray]
TERMINAL = -4  # what pyspiel's current_player() says in a finished game (pyspiel.PlayerId.TERMINAL)


def _tictactoe_cell(action: int) -> int:
    # PettingZoo numbers the cells column by column (0 3 6 / 1 4 7 / 2 5 8: tictactoe/board.py), OpenSpiel
    # row by row (row * 3 + column): the transpose, which is its own inverse.
    return 3 * (action % 3) + action // 3


# PettingZoo name -> (OpenSpiel game, PettingZoo action -> OpenSpiel action, and back). The first
# PettingZoo agent moves first, as OpenSpiel's player 0.
OPENSPIEL_TWINS: dict[str, tuple[str, Callable[[int], int], Callable[[int], int]]] = {
    "tictactoe_v3": ("tic_tac_toe", _tictactoe_cell, _tictactoe_cell),
    "connect_four_v3": ("connect_four", int, int),  # (both number the columns 0..6, left to right)
}


def _parse(spec: str) -> tuple[str, dict[str, Any]] | None:
    m = re.fullmatch(r"\s*pettingzoo:(\w+)\s*(?:\((.*)\))?\s*", spec) if isinstance(spec, str) else None
    if not m:
        return None
    return m.group(1), env_kwargs(m.group(2), spec)


@functools.lru_cache(maxsize=None)
def _aec_module(name: str):
    """The PettingZoo module of an AEC-only game (no parallel_env), or None."""
    for family in PETTINGZOO_FAMILIES:
        try:
            module = importlib.import_module(f"pettingzoo.{family}.{name}")
        except ImportError:
            continue
        return None if hasattr(module, "parallel_env") else module
    return None


def is_turn_based_id(spec: Any) -> bool:
    """Whether `spec` names a PettingZoo game that has only the AEC (turn-based) API."""
    parsed = _parse(spec)
    return parsed is not None and _aec_module(parsed[0]) is not None


class TurnState:
    """One game under way: an AEC env seen as an OpenSpiel state (module docstring). Players are the
    indices of the env's possible_agents (0 moves first)."""

    def __init__(self, game: "TurnBasedGame", env: Any = None):
        self.game, self.env = game, env if env is not None else game.make_env()
        self.env.reset()
        self.agents = list(self.env.possible_agents)
        self.history: list[int] = []  # the moves so far, as PettingZoo numbers them
        self._moved()

    def __deepcopy__(self, memo: dict) -> "TurnState":
        # (PettingZoo's envs copy as new, unplayed ones: EzPickle pickles the constructor's arguments only)
        twin = TurnState(self.game)
        for action in self.history:
            twin.apply_action(action)
        return twin

    def _moved(self) -> None:
        env = self.env
        self.terminal = any(env.terminations.values()) or any(env.truncations.values())
        self.player = TERMINAL if self.terminal else self.agents.index(env.agent_selection)
        self._observations: dict[int, dict] = {}  # (observe() builds arrays: once per player and position)

    def current_player(self) -> int:
        return self.player

    def is_terminal(self) -> bool:
        return self.terminal

    def observation(self, player: int) -> dict[str, np.ndarray]:
        if player not in self._observations:
            self._observations[player] = self.env.observe(self.agents[player])
        return self._observations[player]

    def legal_actions(self) -> list[int]:
        if self.terminal:
            return []
        return np.flatnonzero(self.observation(self.player)["action_mask"]).tolist()

    def apply_action(self, action: int) -> None:
        action = int(action)
        if self.terminal or not self.observation(self.player)["action_mask"][action]:
            raise EnvError(f"{self.game}: the illegal move {action} in\n{self}\n(legal: {self.legal_actions()})")
        self.env.step(action)
        self.history.append(action)
        self._moved()

    def returns(self) -> list[float]:
        """Each player's outcome: the rewards the game gave at its end (classic games reward only there)."""
        if not self.is_terminal():
            return [0.0, 0.0]
        return [float(self.env.rewards[a]) for a in self.agents]

    def __str__(self) -> str:
        if self.game.twin is not None:
            return str(self.game.to_openspiel(self))
        planes = np.asarray(self.observation(0)["observation"])  # (rows, columns, 2): player 0's marks, then 1's
        return "\n".join("".join("x" if p[0] else "o" if p[1] else "." for p in row) for row in planes)


class TurnBasedGame:
    """A PettingZoo AEC two-player game by name (`pettingzoo:tictactoe_v3`, optionally with keyword
    arguments as `pettingzoo:NAME(key=value)`), checked for what this layer plays: two agents with the
    same Dict observation {"observation", "action_mask"} and the same Discrete actions."""

    def __init__(self, spec: str):
        parsed = _parse(spec)
        if parsed is None:
            raise EnvError(f"{spec!r} is not a PettingZoo game name: write pettingzoo:NAME, e.g. pettingzoo:tictactoe_v3")
        self.name, self.kwargs = parsed
        if _aec_module(self.name) is None:
            raise EnvError(f"{spec} is not a turn-based PettingZoo game (one with the AEC API only, as the classic "
                           "games tictactoe_v3 and connect_four_v3): it is unknown, or a parallel env, which the "
                           "multi-agent learners (ippo, mappo) play")
        self.spec = spec.strip()
        env = self.make_env()
        agents = list(env.possible_agents)
        if len(agents) != 2:
            raise EnvError(f"{self.spec} has {len(agents)} agents ({', '.join(agents)}); turn-based play here is for "
                           "two-player games")
        obs, acts = [env.observation_space(a) for a in agents], [env.action_space(a) for a in agents]
        if obs[0] != obs[1] or acts[0] != acts[1]:
            raise EnvError(f"{self.spec}: the two agents' spaces differ (observations {dict(zip(agents, obs))}, actions "
                           f"{dict(zip(agents, acts))}; mismatched agent spaces): one policy plays both seats here")
        space = obs[0]
        if (not isinstance(space, gym.spaces.Dict) or set(space.spaces) != {"observation", "action_mask"}
                or not isinstance(acts[0], gym.spaces.Discrete)):
            raise EnvError(f"{self.spec}: turn-based play needs Dict observations {{observation, action_mask}} and "
                           f"Discrete actions, as PettingZoo's classic games have; it has {space} and {acts[0]}")
        self.observation_space, self.action_space, self.agents = space, acts[0], agents
        self.twin = OPENSPIEL_TWINS.get(self.name) if not self.kwargs else None
        self._twin_game = None

    def __deepcopy__(self, memo: dict) -> "TurnBasedGame":
        return self  # (a description of the game, never changed: shared by copies)

    def make_env(self):
        module = _aec_module(self.name)  # (not kept: a module cannot be copied, and an env may be, with its game)
        make = getattr(module, "raw_env", None) or module.env
        try:
            return make(**self.kwargs)
        except TypeError as err:
            raise EnvError(f"{self.spec}: {err}") from None

    def new_initial_state(self, env: Any = None) -> TurnState:
        """A new game; on `env` (one of make_env's, reset: cheaper than a new one) where given."""
        return TurnState(self, env)

    def num_players(self) -> int:
        return 2

    def num_distinct_actions(self) -> int:
        return int(self.action_space.n)

    def __str__(self) -> str:
        return self.spec

    # ---- the OpenSpiel twin -------------------------------------------------------------------------
    def openspiel_game(self):
        """The pyspiel game this one is (OPENSPIEL_TWINS), or an EnvError."""
        if self.twin is None:
            raise EnvError(f"{self.spec} has no OpenSpiel twin for search players to play on (those that have: "
                           f"{', '.join('pettingzoo:' + k for k in OPENSPIEL_TWINS)})")
        if self._twin_game is None:
            from ascent.envs.board_games import load_game

            self._twin_game = load_game(self.twin[0])
        return self._twin_game

    def to_openspiel(self, state: TurnState):
        """The pyspiel state of the same position: the moves so far replayed on the twin."""
        twin = self.openspiel_game().new_initial_state()
        for action in state.history:
            twin.apply_action(self.twin[1](action))
        return twin

    def from_openspiel_action(self, action: int) -> int:
        return self.twin[2](int(action))


def random_mover(obs: dict, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random legal moves (one per row of the batched masks)."""
    mask = np.asarray(obs["action_mask"], dtype=np.float64)
    cdf = np.cumsum(mask, 1)
    u = rng.random(len(mask)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(1), mask.shape[1] - 1)


class TurnBasedVecEnv(gym.vector.VectorEnv):
    """n copies of a turn-based game for one learner, against opponents (module docstring).

    `set_opponents(table, probs)`: the movers an episode's opponent is drawn from (key -> mover) with
    their probabilities; an episode under way keeps its opponent, rebound to the table's mover of
    the same key where there is one (so a table of live policies is refreshed by setting it again).
    `opponent_keys[k]` is copy k's opponent, `seats[k]` the learner's seat there. `random_opening`: a
    game starts after a number of uniformly random moves drawn from 0..random_opening (both players',
    made by the env: varied openings that the learner and its opponent then play on from)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, spec: str | TurnBasedGame, n_envs: int = 1):
        self.game = spec if isinstance(spec, TurnBasedGame) else TurnBasedGame(spec)
        self.num_envs = int(n_envs)
        self.single_observation_space = self.game.observation_space
        self.single_action_space = self.game.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.rng = np.random.default_rng()
        self.table: dict[Any, Mover] = {"random": random_mover}
        self.keys, self.probs = ["random"], np.ones(1)
        self.states: list[TurnState | None] = [None] * self.num_envs  # (a copy's env is reset for its next game)
        self.seats = np.arange(self.num_envs) % 2
        self.opponent_keys: list[Any] = ["random"] * self.num_envs
        self.movers: list[Mover] = [random_mover] * self.num_envs
        self.random_opening = 0

    def set_opponents(self, table: dict[Any, Mover], probs: list[float] | np.ndarray) -> None:
        probs = np.asarray(probs, dtype=np.float64)
        if len(probs) != len(table) or not np.isclose(probs.sum(), 1.0) or (probs < 0).any():
            raise ValueError(f"set_opponents: {len(table)} opponents need as many probabilities summing to 1, got {probs}")
        self.table, self.keys, self.probs = dict(table), list(table), probs
        self.movers = [self.table.get(key, mover) for key, mover in zip(self.opponent_keys, self.movers)]

    def _new_episode(self, k: int) -> None:
        env = self.states[k].env if self.states[k] is not None else None
        while True:
            state = self.states[k] = self.game.new_initial_state(env)
            for _ in range(int(self.rng.integers(self.random_opening + 1)) if self.random_opening else 0):
                state.apply_action(int(self.rng.choice(state.legal_actions())))
                if state.terminal:
                    break
            if not state.terminal:  # (an opening that ended the game: another one)
                break
        key = self.keys[int(self.rng.choice(len(self.keys), p=self.probs))] if len(self.keys) > 1 else self.keys[0]
        self.opponent_keys[k], self.movers[k] = key, self.table[key]

    def _start_games(self, copies: list[int]) -> None:
        """New games in `copies`, played on to the learner's first move (a game over before it, which a
        random opening and the opponent's reply can make: another one)."""
        while copies:
            for k in copies:
                self._new_episode(k)
            self._opponents_move()
            copies = [k for k in copies if self.states[k].terminal]

    def _opponents_move(self) -> None:
        """Every copy's opponent moves until the learner is to move or the game is over, each mover
        once per round for all the copies it plays in."""
        while True:
            waiting = [k for k, s in enumerate(self.states) if not s.terminal and s.player != self.seats[k]]
            if not waiting:
                return
            groups: dict[int, list[int]] = {}
            for k in waiting:
                groups.setdefault(id(self.movers[k]), []).append(k)
            for copies in groups.values():
                obs = self._batch([self.states[k].observation(1 - self.seats[k]) for k in copies])
                actions = np.asarray(self.movers[copies[0]](obs, self.rng)).reshape(-1)
                for k, action in zip(copies, actions):
                    try:
                        self.states[k].apply_action(action)
                    except EnvError as err:
                        raise EnvError(f"the opponent {self.opponent_keys[k]!r}: {err}") from None

    def _batch(self, observations: list[dict]) -> dict[str, np.ndarray]:
        return {key: np.stack([o[key] for o in observations]) for key in self.single_observation_space.spaces}

    def _learner_obs(self) -> dict[str, np.ndarray]:
        return self._batch([s.observation(seat) for s, seat in zip(self.states, self.seats)])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.seats = np.arange(self.num_envs) % 2
        self._start_games(list(range(self.num_envs)))
        return self._learner_obs(), {}

    def step(self, actions):
        actions = np.asarray(actions).reshape(-1)
        for k, (state, action) in enumerate(zip(self.states, actions)):
            try:
                state.apply_action(action)
            except EnvError as err:
                raise EnvError(f"the learner (seat {self.seats[k]}): {err}; act on the observation's action_mask") from None
        self._opponents_move()
        n = self.num_envs
        reward, terminated, truncated = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        ended = [k for k, s in enumerate(self.states) if s.is_terminal()]
        info: dict[str, Any] = {}
        if ended:
            final_obs, mask = np.empty(n, dtype=object), np.zeros(n, bool)
            for k in ended:
                state, seat = self.states[k], self.seats[k]
                reward[k] = state.returns()[seat]
                truncated[k] = any(state.env.truncations.values()) and not any(state.env.terminations.values())
                terminated[k] = not truncated[k]
                final_obs[k], mask[k] = state.observation(seat), True
                self.seats[k] = 1 - seat  # (the next game from the other seat)
            info = {"final_obs": final_obs, "_final_obs": mask}
            self._start_games(ended)
        return self._learner_obs(), reward, terminated, truncated, info

    def close(self, **kwargs) -> None:
        for state in self.states:
            if state is not None:
                state.env.close()


def play_games(game: str | TurnBasedGame, mover: Mover, opponent: Mover, games: int, seed: int) -> dict[str, int]:
    """`games` games of `mover` against `opponent`, `mover` in seat 0 (moving first) in the even ones:
    its wins, draws and losses, in all and as first and second player, and `outcomes`, its outcome of
    each game in order (+1 / 0 / -1). Games are played side by side (one mover call per move for all
    of them)."""
    env = TurnBasedVecEnv(game, games)
    env.set_opponents({"opponent": opponent}, [1.0])
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng([seed, 1])
    results: list[float | None] = [None] * games
    seats = env.seats.copy()
    while any(r is None for r in results):
        obs, reward, terminated, truncated, _ = env.step(mover(obs, rng))
        for k in np.flatnonzero(terminated | truncated):
            if results[k] is None:
                results[k] = float(reward[k])
    out = {"wins": 0, "draws": 0, "losses": 0}
    by_seat = {0: dict(out), 1: dict(out)}
    for r, seat in zip(results, seats):
        key = "wins" if r > 0 else "losses" if r < 0 else "draws"
        out[key] += 1
        by_seat[int(seat)][key] += 1
    return {**out, "as_first": by_seat[0], "as_second": by_seat[1], "outcomes": results}

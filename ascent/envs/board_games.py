"""Board games: OpenSpiel games by name, checked for what an algorithm needs, their states as
network inputs, and a Gymnasium view of one game against a fixed opponent.

`--env tic_tac_toe`, `--env connect_four`, or any game of OpenSpiel's catalogue with parameters as
OpenSpiel spells them (`connect_four(rows=6,columns=7)`). States are pyspiel's own: C++ cloning,
legal-action lists and observation tensors, which is what makes tree search in Python affordable.
"""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np

from ascent.errors import EnvError, did_you_mean


def load_game(spec: str):
    """The pyspiel game for `spec` ("name" or "name(param=value,...)"); an unknown name or a bad
    parameter is one EnvError line with what is available."""
    try:
        import pyspiel
    except ImportError as err:  # (a dependency of ascent: only a broken install gets here)
        raise EnvError(f"board games need OpenSpiel: pip install open_spiel ({err})") from None
    name = spec.split("(", 1)[0].strip()
    known = pyspiel.registered_names()
    if name not in known:
        raise EnvError(f"unknown game {name!r}{did_you_mean(name, known)}; OpenSpiel games include tic_tac_toe, "
                       "connect_four, breakthrough, hex, othello (`python -c 'import pyspiel; "
                       "print(pyspiel.registered_names())'` lists all)")
    try:
        return pyspiel.load_game(spec)
    except pyspiel.SpielError as err:
        raise EnvError(f"game {spec!r}: {err}; parameters are spelled as OpenSpiel does, e.g. "
                       "connect_four(rows=6,columns=7)") from None


def check_two_player_zero_sum(game, who: str) -> None:
    """Refuse games that `who` (an algorithm or player) cannot search: it needs two players, zero-sum
    outcomes, perfect information, sequential moves and no chance."""
    import pyspiel

    t = game.get_type()
    problems = []
    if game.num_players() != 2:
        problems.append(f"{game.num_players()} players")
    if t.utility != pyspiel.GameType.Utility.ZERO_SUM:
        problems.append(f"{t.utility.name.lower().replace('_', '-')} utilities")
    if t.information != pyspiel.GameType.Information.PERFECT_INFORMATION:
        problems.append("imperfect information")
    if t.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
        problems.append("simultaneous moves")
    if t.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC:
        problems.append("chance events")
    if problems:
        raise EnvError(f"{who} plays two-player, zero-sum, perfect-information, sequential games without chance; "
                       f"{t.short_name} has {', '.join(problems)} (try tic_tac_toe or connect_four)")


def board_game_names() -> list[str]:
    """OpenSpiel's game names (none where OpenSpiel is not installed)."""
    try:
        import pyspiel
    except ImportError:
        return []
    return list(pyspiel.registered_names())


def is_board_game_id(env_id: str) -> bool:
    """Whether an env id names an OpenSpiel game rather than a Gymnasium env (Gymnasium ids are
    Name-vN; OpenSpiel's are snake_case names, optionally with parameters)."""
    if env_id in gym.registry or "-v" in env_id or "/" in env_id or ":" in env_id.split("(", 1)[0]:
        return False
    return env_id.split("(", 1)[0].strip() in board_game_names()


def input_shape(game) -> tuple[int, ...]:
    """The shape of `encode`'s array: OpenSpiel's observation tensor plus one plane (or one number)
    saying who is to move; the tensors of tic-tac-toe and Connect Four show the board, not whose turn it is."""
    shape = tuple(game.observation_tensor_shape())
    return (shape[0] + 1, *shape[1:]) if len(shape) == 3 else (int(np.prod(shape)) + 1,)


def encode(state, shape: tuple[int, ...], player: int | None = None) -> np.ndarray:
    """The network input for `player` (default: the player to move) in `state` (float32, `input_shape`)."""
    player = state.current_player() if player is None else player
    obs = np.asarray(state.observation_tensor(player), dtype=np.float32)
    if len(shape) == 3:
        plane = np.full((1, *shape[1:]), float(player), dtype=np.float32)
        return np.concatenate([obs.reshape(shape[0] - 1, *shape[1:]), plane])
    return np.append(obs, np.float32(player))


Symmetry = tuple[bool, bool, bool]  # (transpose, then flip the rows, then flip the columns) of a board


def board_symmetries(game) -> list[tuple[Symmetry, np.ndarray]]:
    """The symmetries of a game's rules that `encode` can show, as (symmetry, action permutation perm):
    the position `transform_planes(obs, symmetry)` has the move probabilities pi[perm]. Tic-tac-toe:
    the square's 8 (rotations and reflections, on its 9 cells); Connect Four: the mirror image (its
    moves are the columns); any other game: the identity alone."""
    name, shape = game.get_type().short_name, input_shape(game)
    identity = ((False, False, False), np.arange(game.num_distinct_actions()))
    if name == "tic_tac_toe" and len(shape) == 3 and shape[1] == shape[2] == 3:
        cells = np.arange(9).reshape(3, 3)
        flips = [(t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)]
        return [(f, transform_planes(cells, f).ravel()) for f in flips]
    if name == "connect_four" and len(shape) == 3 and game.num_distinct_actions() == shape[2]:
        return [identity, ((False, False, True), np.arange(shape[2])[::-1].copy())]
    return [identity]


def transform_planes(x: np.ndarray, symmetry: Symmetry) -> np.ndarray:
    """x (..., H, W) transposed on its last two axes, then its rows flipped, then its columns, as
    `symmetry` says (a view)."""
    transpose, flip_rows, flip_cols = symmetry
    if transpose:
        x = np.swapaxes(x, -1, -2)
    if flip_rows:
        x = x[..., ::-1, :]
    return x[..., ::-1] if flip_cols else x


class BoardGameEnv(gym.Env):
    """One two-player OpenSpiel game as a single-agent Gymnasium env against a fixed opponent
    (uniformly random, seeded by reset): the agent moves as player 0 in even-seeded episodes and as
    player 1 in odd ones (unseeded resets alternate). Observations: a Dict of `observation` (the
    agent's `encode`) and `action_mask` (1 on legal moves), as PettingZoo's classic games have it.
    Reward: the agent's outcome at the end (+1 / 0 / -1). An illegal move ends the episode as a loss
    (terminated, info["illegal"] True)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, game: str = "tic_tac_toe", render_mode: str | None = None):
        self.game = load_game(game)
        check_two_player_zero_sum(self.game, "BoardGameEnv")
        self.shape = input_shape(self.game)
        n = self.game.num_distinct_actions()
        self.observation_space = gym.spaces.Dict({
            "observation": gym.spaces.Box(-np.inf, np.inf, self.shape, np.float32),
            "action_mask": gym.spaces.Box(0, 1, (n,), np.int8)})
        self.action_space = gym.spaces.Discrete(n)
        self.render_mode = render_mode
        self.opponent_rng, self.episodes, self.agent_player, self.state = random.Random(0), 0, 0, None

    def _observe(self) -> dict:
        mask = np.zeros(self.action_space.n, dtype=np.int8)
        mask[self.state.legal_actions()] = 1
        player = self.agent_player if self.state.is_terminal() else None
        return {"observation": encode(self.state, self.shape, player), "action_mask": mask}

    def _opponent_moves(self) -> None:
        while not self.state.is_terminal() and self.state.current_player() != self.agent_player:
            self.state.apply_action(self.opponent_rng.choice(self.state.legal_actions()))

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.opponent_rng, self.episodes = random.Random(seed), seed
        self.agent_player, self.episodes = self.episodes % 2, self.episodes + 1
        self.state = self.game.new_initial_state()
        self._opponent_moves()
        return self._observe(), {"agent_player": self.agent_player}

    def step(self, action):
        action = int(action)
        if action not in self.state.legal_actions():
            return self._observe(), -1.0, True, False, {"illegal": True}
        self.state.apply_action(action)
        self._opponent_moves()
        if self.state.is_terminal():
            return self._observe(), float(self.state.returns()[self.agent_player]), True, False, {}
        return self._observe(), 0.0, False, False, {}

    def render(self):
        return str(self.state)

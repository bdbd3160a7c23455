"""The games the arena plays, by name: OpenSpiel's (`tic_tac_toe`, `connect_four(rows=6,columns=7)`),
PettingZoo's turn-based ones (`pettingzoo:tictactoe_v3`, `pettingzoo:connect_four_v3`: ascent/envs/turn_based.py's
`TurnBasedGame`), and ascent's simultaneous-move Markov games (`soccer`, `grid_game`: ascent/envs/markov_games.py).

Every game offers what the arena plays on, OpenSpiel's interface: `new_initial_state()`, and states with
current_player, legal_actions, apply_action, is_terminal, returns. A Markov game is seen in turns
(`MarkovGameInTurns`): in each of its steps player 0 chooses, then player 1, and the joint move is made
once both have; a player sees only the state before the step (`markov_state()`), never the other's
choice, so the turns change nothing of the game.
"""

from __future__ import annotations

import copy

from ascent.envs.board_games import load_game
from ascent.envs.markov_games import MarkovGame, is_markov_game_id, make_markov_game, markov_game_names
from ascent.envs.turn_based import TERMINAL, TurnBasedGame, is_turn_based_id
from ascent.errors import EnvError


class MarkovTurnState:
    """One game of a Markov game under way, in turns (module docstring)."""

    def __init__(self, game: MarkovGame):
        self.game, self.pending, self.total = game, [], [0.0, 0.0]

    def current_player(self) -> int:
        return TERMINAL if self.is_terminal() else len(self.pending)

    def is_terminal(self) -> bool:
        return not self.game.agents

    def legal_actions(self) -> list[int]:
        return [] if self.is_terminal() else list(range(self.game.n_actions))

    def markov_state(self) -> int:
        """The state the players choose in (the joint move of this step is not made yet)."""
        return self.game.state()

    def apply_action(self, action: int) -> None:
        self.pending.append(int(action))
        if len(self.pending) == 2:
            _, rew, _, _, _ = self.game.step(dict(zip(self.game.possible_agents, self.pending)))
            self.total = [t + rew[a] for t, a in zip(self.total, self.game.possible_agents)]
            self.pending = []

    def returns(self) -> list[float]:
        return list(self.total)

    def __str__(self) -> str:
        return self.game.board()


class MarkovGameInTurns:
    """A two-player Markov game for the arena; game i is reset with seed + i (its chance: who starts with
    the ball, the order the moves are made in), so a match repeats."""

    def __init__(self, spec: str, seed: int = 0):
        self.spec, self.template, self.games = spec, make_markov_game(spec), 0
        self.seed = seed

    def new_initial_state(self) -> MarkovTurnState:
        game = copy.deepcopy(self.template)
        game.reset(seed=self.seed + self.games)
        self.games += 1
        return MarkovTurnState(game)

    def num_players(self) -> int:
        return 2

    def num_distinct_actions(self) -> int:
        return self.template.n_actions

    def __str__(self) -> str:
        return self.spec


def arena_game(spec: str):
    """The game named by `spec` (module docstring); an unknown name is an EnvError listing the kinds."""
    if is_markov_game_id(spec):
        return MarkovGameInTurns(spec)
    if isinstance(spec, str) and spec.strip().startswith("pettingzoo:"):
        if not is_turn_based_id(spec):
            TurnBasedGame(spec)  # (raises the EnvError that says why: unknown, or a parallel env)
        return TurnBasedGame(spec)
    try:
        return load_game(spec)
    except EnvError as err:
        if not str(err).startswith("unknown game"):
            raise
        raise EnvError(f"{err}; the arena also plays PettingZoo's turn-based games (pettingzoo:tictactoe_v3, "
                       f"pettingzoo:connect_four_v3) and ascent's Markov games ({', '.join(markov_game_names())})") from None

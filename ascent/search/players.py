"""Players for the arena, by name: `random`, `mc:ROLLOUTS` (naive Monte Carlo search), `mcts:SIMS`,
`mcts-solver:SIMS`, `minimax` (exact play where the game is small enough), `openspiel-mcts:SIMS`
and `openspiel-mcts-solver:SIMS` (OpenSpiel's own Python MCTSBot, the peer: UCT c=2, one random
rollout per leaf), `human` (a person at the terminal), and a trained AlphaZero run (`RUN_DIR` or
`RUN_DIR:SIMS`).

A player has `step(state) -> action` (state is pyspiel's, not modified) and a `name`; one that can
move in many games with one call (AlphaZero: one network call per simulation for all of them) also
has `step_batch(states) -> actions`, which the arena uses to play its games all at once.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

from ascent.errors import ConfigError, EnvError
from ascent.envs.board_games import check_two_player_zero_sum
from ascent.search.mcts import MCTS, naive_monte_carlo

PLAYER_HELP = ("random, mc:ROLLOUTS, mcts:SIMS, mcts-solver:SIMS, minimax, openspiel-mcts:SIMS, "
               "openspiel-mcts-solver:SIMS, human, or an AlphaZero run directory (RUN_DIR or RUN_DIR:SIMS)")


class RandomPlayer:
    def __init__(self, seed: int | None = None):
        self.name, self.rng = "random", random.Random(seed)

    def step(self, state) -> int:
        return self.rng.choice(state.legal_actions())


class MonteCarloPlayer:
    """The book's naive Monte Carlo search (9.4.1): `rollouts` random playouts per legal move."""

    def __init__(self, game, rollouts: int, seed: int | None = None):
        check_two_player_zero_sum(game, "naive Monte Carlo search")
        self.name, self.rollouts, self.rng = f"mc:{rollouts}", rollouts, random.Random(seed)

    def step(self, state) -> int:
        return naive_monte_carlo(state, self.rollouts, self.rng)[0]


class MCTSPlayer:
    def __init__(self, game, simulations: int, solve: bool, seed: int | None = None):
        self.name = f"mcts{'-solver' if solve else ''}:{simulations}"
        self.search = MCTS(game, simulations, uct_c=2.0, solve=solve, seed=seed)

    def step(self, state) -> int:
        return self.search.step(state)


class OpenSpielMCTSPlayer:
    """OpenSpiel's Python MCTSBot with its random-rollout evaluator (one rollout), UCT c = 2."""

    def __init__(self, game, simulations: int, solve: bool, seed: int | None = None):
        import numpy as np
        from open_spiel.python.algorithms import mcts

        check_two_player_zero_sum(game, "openspiel-mcts")
        rng = np.random.RandomState(seed)
        self.name = f"openspiel-mcts{'-solver' if solve else ''}:{simulations}"
        self.bot = mcts.MCTSBot(game, 2.0, simulations, mcts.RandomRolloutEvaluator(1, rng), solve=solve,
                                random_state=rng)

    def step(self, state) -> int:
        return self.bot.step(state)


class MinimaxPlayer:
    """Exact play: negamax over the whole game with a table of solved positions (ties broken at
    random). Only for small games: past `max_positions` positions it stops with a clear error."""

    def __init__(self, game, seed: int | None = None, max_positions: int = 2_000_000):
        check_two_player_zero_sum(game, "minimax")
        self.name, self.game, self.rng, self.max_positions = "minimax", game, random.Random(seed), max_positions
        self.values: dict[str, float] = {}  # position -> value for the player to move

    def key(self, state) -> str:
        return f"{state.current_player()}|{state}"

    def value(self, state) -> float:
        """The game's value for the player to move in `state` under perfect play by both."""
        if state.is_terminal():
            raise ValueError("value() of a finished game")
        key = self.key(state)
        if key in self.values:
            return self.values[key]
        if len(self.values) >= self.max_positions:
            raise EnvError(f"minimax plays exactly only small games: {self.game} has more than {self.max_positions:,} "
                           "positions to solve; use mcts-solver:SIMS instead")
        player, best = state.current_player(), -float("inf")
        for action in state.legal_actions():
            best = max(best, self.after(state, action, player))
        self.values[key] = best
        return best

    def after(self, state, action: int, player: int) -> float:
        child = state.child(action)
        if child.is_terminal():
            return child.returns()[player]
        return self.value(child) if child.current_player() == player else -self.value(child)

    def step(self, state) -> int:
        player = state.current_player()
        scored = [(self.after(state, a, player), a) for a in state.legal_actions()]
        best = max(v for v, _ in scored)
        return self.rng.choice([a for v, a in scored if v == best])


class HumanPlayer:
    """A person at the terminal: the board, the legal moves, and a prompt; an illegal or unreadable
    move is refused with the legal ones listed, and asked again."""

    interactive = True  # (the arena plays a person's games one after another, never all at once)

    def __init__(self, read: Callable[[str], str] | None = None, write: Callable[[str], None] | None = None):
        self.name = "human"
        self.read = read or (lambda prompt: input(prompt))  # (looked up when called: a test may replace input)
        self.write = write or print

    def step(self, state) -> int:
        player = state.current_player()
        legal = {a: state.action_to_string(player, a) for a in state.legal_actions()}
        history = state.full_history()
        if history and history[-1].player != player:
            last = history[-1]
            self.write(f"\nplayer {last.player} played {state.action_to_string(last.player, last.action)}")
        self.write(f"\n{state}\n")
        listing = ", ".join(f"{a}={text}" for a, text in legal.items())
        while True:
            try:
                answer = self.read(f"your move as player {player} ({listing}): ").strip()
            except EOFError:
                raise ConfigError("the human player's input ended (no terminal?): play with a terminal, or pick "
                                  "another player") from None
            action = parse_move(answer, legal)
            if action is not None:
                return action
            self.write(f"illegal move {answer!r}: legal moves are {listing}")


def parse_move(answer: str, legal: dict[int, str]) -> int | None:
    """A typed move: an action number or its name as the game prints it (case-insensitive)."""
    if answer.lstrip("-").isdigit() and int(answer) in legal:
        return int(answer)
    by_name = {text.lower(): a for a, text in legal.items()}
    return by_name.get(answer.lower())


def make_player(spec: str, game, seed: int | None = None, read: Callable[[str], str] | None = None):
    """The player named by `spec` for `game` (see the module docstring)."""
    name, _, arg = spec.partition(":")
    search = {"mc": MonteCarloPlayer, "mcts": MCTSPlayer, "mcts-solver": MCTSPlayer, "openspiel-mcts": OpenSpielMCTSPlayer,
              "openspiel-mcts-solver": OpenSpielMCTSPlayer}
    if name in search:
        if not arg.isdigit() or int(arg) < 1:
            raise ConfigError(f"player {spec!r}: write {name}:N with N a positive number of "
                              f"{'rollouts per move' if name == 'mc' else 'simulations'}, e.g. {name}:1000")
        if name == "mc":
            return MonteCarloPlayer(game, int(arg), seed)
        return search[name](game, int(arg), solve=name.endswith("solver"), seed=seed)
    if arg == "" and name == "random":
        return RandomPlayer(seed)
    if arg == "" and name == "minimax":
        return MinimaxPlayer(game, seed)
    if arg == "" and name == "human":
        return HumanPlayer(read)
    run, sims = (name, arg) if arg.isdigit() else (spec, "")
    if Path(run).is_dir():
        return trained_player(run, game, int(sims) if sims else None, seed)
    raise ConfigError(f"unknown player {spec!r} (not a player name, nor a run directory); players: {PLAYER_HELP}")



def trained_player(run_dir: str, game, simulations: int | None, seed: int | None = None):
    """An AlphaZero run's network as a player: with `simulations` of search (default: the run's
    eval_simulations), or with 0 the network alone."""
    from ascent.core.agent import load_agent
    from ascent.core.run import RunDirectory

    agent = load_agent(RunDirectory(run_dir).trained_model(), verbose=0)
    if agent.algo != "alphazero":
        raise ConfigError(f"{run_dir} is a {agent.algo} run; the arena plays AlphaZero runs and the players {PLAYER_HELP}")
    if str(agent.game) != str(game):
        raise ConfigError(f"{run_dir} was trained on {agent.game}, not {game}: use --game {agent.game}")
    player = agent.player(simulations, seed)
    player.name = f"{Path(run_dir).name}:{player.simulations}"
    return player


def run_game(spec: str) -> str | None:
    """The game of an AlphaZero run directory named by a player spec (RUN_DIR or RUN_DIR:SIMS), else None."""
    head, _, tail = spec.rpartition(":")
    config = Path(head if tail.isdigit() and head else spec) / "config.json"
    if not config.is_file():
        return None
    info = json.loads(config.read_text())
    return info.get("env_id") if info.get("algo") == "alphazero" else None

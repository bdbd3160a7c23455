"""Players for the arena, by name: `random`, `mc:ROLLOUTS` (naive Monte Carlo search), `mcts:SIMS`,
`mcts-solver:SIMS`, `minimax` (exact play where the game is small enough), `openspiel-mcts:SIMS`
and `openspiel-mcts-solver:SIMS` (OpenSpiel's own Python MCTSBot, the peer: UCT c=2, one random
rollout per leaf), `human` (a person at the terminal), and a trained AlphaZero run (`RUN_DIR` or
`RUN_DIR:SIMS`).

On a PettingZoo turn-based game (ascent/search/games.py): `random`, a run trained on that game
(`selfplay`, or any algorithm given `--env pettingzoo:...`: its greedy move on its seat's observation),
and, where the game has an OpenSpiel twin (tictactoe_v3, connect_four_v3), every player above, playing
on the twin's state of the same position (`OnOpenSpielTwin`). On a Markov game (`soccer`): `random` and
runs of the Markov-game learners (minimaxq, nashq, iql), each seat drawing from its learnt strategy.

A player has `step(state) -> action` (state is the game's, not modified) and a `name`; one that can
move in many games with one call (AlphaZero: one network call per simulation for all of them) also
has `step_batch(states) -> actions`, which the arena uses to play its games all at once.
"""

from __future__ import annotations

import inspect
import json
import random
from pathlib import Path
from typing import Callable

import numpy as np

from ascent.errors import ConfigError, EnvError
from ascent.envs.board_games import check_two_player_zero_sum
from ascent.envs.markov_games import is_markov_game_id
from ascent.envs.turn_based import TurnBasedGame, is_turn_based_id
from ascent.search.games import MarkovGameInTurns
from ascent.search.mcts import MCTS, naive_monte_carlo

PLAYER_HELP = ("random, mc:ROLLOUTS, mcts:SIMS, mcts-solver:SIMS, minimax, openspiel-mcts:SIMS, "
               "openspiel-mcts-solver:SIMS, human, an AlphaZero run directory (RUN_DIR or RUN_DIR:SIMS), "
               "a run trained on the PettingZoo game (selfplay), or on a Markov game a minimaxq/nashq/iql run")


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


class OnOpenSpielTwin:
    """A player of OpenSpiel games (search, minimax, a person, an AlphaZero run) on a PettingZoo game with
    an OpenSpiel twin: it is shown the twin's state of the same position, and its move is mapped back
    (ascent/envs/turn_based.py's OPENSPIEL_TWINS)."""

    def __init__(self, player, game: TurnBasedGame):
        self.player, self.game, self.name = player, game, player.name
        self.interactive = getattr(player, "interactive", False)
        if hasattr(player, "step_batch"):
            self.step_batch = lambda states: [game.from_openspiel_action(a) for a in
                                              player.step_batch([game.to_openspiel(s) for s in states])]

    def step(self, state) -> int:
        return self.game.from_openspiel_action(self.player.step(self.game.to_openspiel(state)))


class TurnBasedRunPlayer:
    """A run trained on a PettingZoo turn-based game: its greedy move on its seat's observation."""

    def __init__(self, agent, name: str):
        self.agent, self.name = agent, name

    def step(self, state) -> int:
        return int(self.step_batch([state])[0])

    def step_batch(self, states) -> list[int]:
        obs = [s.observation(s.current_player()) for s in states]
        batch = {key: np.stack([o[key] for o in obs]) for key in obs[0]}
        return [int(a) for a in self.agent.act(batch, deterministic=True)]


class MarkovRunPlayer:
    """A Markov-game learner's run (minimaxq, nashq, iql): each seat draws from its learnt strategy."""

    def __init__(self, agent, name: str, seed: int | None):
        self.name = name
        self.policies = {seat: agent.policy(seat, None if seed is None else seed + seat) for seat in (0, 1)}

    def step(self, state) -> int:
        return self.policies[state.current_player()](state.markov_state())


def make_player(spec: str, game, seed: int | None = None, read: Callable[[str], str] | None = None):
    """The player named by `spec` for `game` (see the module docstring)."""
    if isinstance(game, (TurnBasedGame, MarkovGameInTurns)) and spec != "random":
        run, sims = _run_of(spec)
        if Path(run).is_dir():
            return trained_player(run, game, int(sims) if sims else None, seed)
        if isinstance(game, MarkovGameInTurns):
            raise ConfigError(f"unknown player {spec!r} for the Markov game {game}: random, or a run directory of "
                              "minimaxq, nashq or iql trained on it")
        return OnOpenSpielTwin(make_player(spec, game.openspiel_game(), seed, read), game)
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
    run, sims = _run_of(spec)
    if Path(run).is_dir():
        return trained_player(run, game, int(sims) if sims else None, seed)
    raise ConfigError(f"unknown player {spec!r} (not a player name, nor a run directory); players: {PLAYER_HELP}")


def _run_of(spec: str) -> tuple[str, str]:
    """(run directory, simulations or "") of a player spec RUN_DIR or RUN_DIR:SIMS."""
    head, _, tail = spec.rpartition(":")
    return (head, tail) if tail.isdigit() and head else (spec, "")


def trained_player(run_dir: str, game, simulations: int | None, seed: int | None = None):
    """A trained run as a player of `game`: an AlphaZero run's network with `simulations` of search
    (default: the run's eval_simulations; 0: the network alone), on its OpenSpiel game or a PettingZoo
    twin of it; a run trained on a PettingZoo turn-based game, on that game; a Markov-game learner's
    run, on its Markov game."""
    from ascent.core.agent import load_agent
    from ascent.core.run import RunDirectory

    agent = load_agent(RunDirectory(run_dir).trained_model(), verbose=0)
    trained_on = str(agent.game) if agent.algo == "alphazero" else str(agent.env_id)
    if agent.algo == "alphazero":
        twin = game.openspiel_game() if isinstance(game, TurnBasedGame) and game.twin is not None else game
        if str(agent.game) != str(twin):
            raise ConfigError(f"{run_dir} was trained on {agent.game}, not {game}: use --game {agent.game}")
        player = agent.player(simulations, seed)
        player.name = f"{Path(run_dir).name}:{player.simulations}"
        return OnOpenSpielTwin(player, game) if twin is not game else player
    if is_turn_based_id(trained_on) or is_markov_game_id(trained_on):
        if trained_on.replace(" ", "") != str(game).replace(" ", ""):
            raise ConfigError(f"{run_dir} is a {agent.algo} run trained on {trained_on}, not {game}: use --game {trained_on}")
        if isinstance(game, TurnBasedGame):
            return TurnBasedRunPlayer(agent, Path(run_dir).name)
        if inspect.isfunction(getattr(type(agent), "policy", None)):  # (the learners with a strategy per seat)
            return MarkovRunPlayer(agent, Path(run_dir).name, seed)
    raise ConfigError(f"{run_dir} is a {agent.algo} run on {trained_on}; the arena plays AlphaZero runs, runs trained "
                      f"on a PettingZoo turn-based game, minimaxq/nashq/iql runs on a Markov game, and the players "
                      f"{PLAYER_HELP}")


def run_game(spec: str) -> str | None:
    """The game of a run directory named by a player spec (RUN_DIR or RUN_DIR:SIMS) where the arena can
    play it (an AlphaZero run's, a PettingZoo turn-based game, a Markov game), else None."""
    config = Path(_run_of(spec)[0]) / "config.json"
    if not config.is_file():
        return None
    info = json.loads(config.read_text())
    env = info.get("env_id")
    return env if info.get("algo") == "alphazero" or is_turn_based_id(env) or is_markov_game_id(env) else None

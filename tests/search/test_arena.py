"""The arena and its players: alternation of the first move, the confidence intervals against
closed forms, exact play by minimax, a person's typed moves (illegal ones refused), and players by
name with clear errors; the `ascent arena` command with --json."""

import json
import math

import pytest

pytest.importorskip("pyspiel")

from ascent.cli import main  # noqa: E402
from ascent.errors import ConfigError, EnvError  # noqa: E402
from ascent.search.arena import arena, elo_difference, play_game, score_interval, wilson_interval  # noqa: E402
from ascent.envs.board_games import load_game  # noqa: E402
from ascent.search.players import HumanPlayer, MinimaxPlayer, make_player, parse_move  # noqa: E402


class Scripted:
    """Plays the first legal move of a fixed preference list; records the seat it was asked to move in."""

    def __init__(self, name, prefs):
        self.name, self.prefs, self.seats = name, prefs, []

    def step(self, state):
        self.seats.append(state.current_player())
        legal = state.legal_actions()
        return next(a for a in self.prefs if a in legal)


def test_games_alternate_the_first_move_and_results_are_counted_from_a():
    game = load_game("tic_tac_toe")
    # whoever moves first with this order wins on the top row (the other player's preferences never block it)
    a, b = Scripted("a", [0, 1, 2, 3, 4, 5, 6, 7, 8]), Scripted("b", [8, 7, 6, 5, 4, 3, 2, 1, 0])
    r = arena(game, a, b, 4)
    assert (r["wins"], r["draws"], r["losses"]) == (2, 0, 2)
    assert r["as_first"] == {"wins": 2, "draws": 0, "losses": 0} and r["as_second"]["losses"] == 2
    assert a.seats[0] == 0 and 1 in a.seats  # a moved as player 0 in game 1 and as player 1 later
    assert r["score"] == 0.5 and r["elo"] == 0.0


def test_a_player_that_moves_in_many_games_at_once_gets_them_in_one_call_and_the_same_results():
    game = load_game("tic_tac_toe")

    class Batched(Scripted):
        def __init__(self, name, prefs):
            super().__init__(name, prefs)
            self.calls = []

        def step_batch(self, states):
            self.calls.append(len(states))
            return [self.step(s) for s in states]

    prefs_a, prefs_b = [4, 0, 2, 6, 8, 1, 3, 5, 7], [0, 1, 2, 3, 4, 5, 6, 7, 8]
    a = Batched("a", prefs_a)
    lockstep = arena(game, a, Scripted("b", prefs_b), 6)
    one_by_one = arena(game, Scripted("a", prefs_a), Scripted("b", prefs_b), 6)
    assert a.calls[0] == 3 and max(a.calls) == 6  # its three games as first player, then all six
    keys = ("wins", "draws", "losses", "as_first", "as_second", "moves_a", "moves_b")
    assert {k: lockstep[k] for k in keys} == {k: one_by_one[k] for k in keys}
    person = HumanPlayer(read=lambda prompt: "1", write=lambda text: None)  # (always asks for cell 1... once)
    assert getattr(person, "interactive", False)  # a person's games are played one after another


def test_intervals_against_closed_forms():
    lo, hi = wilson_interval(8, 10)  # Wilson, p = 0.8, n = 10, z = 1.96: 0.4902 - 0.9433
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    s, lo, hi = score_interval(3, 2, 1)  # scores 1,1,1,.5,.5,0: mean 2/3, sample var 1/6
    assert s == pytest.approx(4 / 6)
    assert hi - s == pytest.approx(1.96 * math.sqrt((1 / 6) / 6))
    assert elo_difference(0.5) == 0.0 and elo_difference(0.76) == pytest.approx(200.0, abs=1.0)
    assert elo_difference(1.0) == math.inf


def test_minimax_is_exact_on_tic_tac_toe():
    game = load_game("tic_tac_toe")
    mm = MinimaxPlayer(game, seed=0)
    assert mm.value(game.new_initial_state()) == 0.0  # tic-tac-toe is a draw
    state = game.new_initial_state()
    for move in (0, 3, 1, 4):
        state.apply_action(move)
    assert mm.value(state) == 1.0 and mm.step(state) == 2
    r = arena(game, mm, make_player("random", game, seed=1), 20)
    assert r["losses"] == 0 and r["wins"] >= 15
    assert arena(game, mm, MinimaxPlayer(game, seed=2), 4)["draws"] == 4
    with pytest.raises(EnvError, match="minimax plays exactly only small games"):
        MinimaxPlayer(load_game("connect_four"), max_positions=1000).step(load_game("connect_four").new_initial_state())


def test_a_person_types_moves_and_illegal_ones_are_refused():
    game = load_game("tic_tac_toe")
    state = game.new_initial_state()
    state.apply_action(4)
    answers, shown = iter(["9", "4", "hello", "x(0,0)", "0"]), []
    human = HumanPlayer(read=lambda prompt: next(answers), write=shown.append)
    assert human.step(state) == 0  # "o(0,0)" is its name; "x(0,0)" is not a legal move's name for O
    refused = [line for line in shown if line.startswith("illegal move")]
    assert [line.split("'")[1] for line in refused] == ["9", "4", "hello", "x(0,0)"]
    assert "0=o(0,0)" in refused[0]
    assert parse_move("O(0,0)", {0: "o(0,0)"}) == 0 and parse_move("1", {0: "o(0,0)"}) is None
    with pytest.raises(ConfigError, match="input ended"):
        HumanPlayer(read=lambda prompt: (_ for _ in ()).throw(EOFError())).step(state)


def test_players_by_name_and_the_arena_command(capsys):
    game = load_game("tic_tac_toe")
    assert [make_player(s, game).name for s in ("random", "mc:5", "mcts:10", "mcts-solver:10", "minimax",
                                                 "openspiel-mcts:10", "openspiel-mcts-solver:10", "human")] == [
        "random", "mc:5", "mcts:10", "mcts-solver:10", "minimax", "openspiel-mcts:10", "openspiel-mcts-solver:10",
        "human"]
    with pytest.raises(ConfigError, match="mcts:N with N a positive number of simulations"):
        make_player("mcts:0", game)
    with pytest.raises(ConfigError, match="unknown player 'alphago'"):
        make_player("alphago", game)
    assert main(["arena", "mcts:100", "random", "--game", "tic_tac_toe", "--games", "6", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["games"] == 6 and r["wins"] + r["draws"] + r["losses"] == 6 and r["losses"] == 0
    assert main(["arena", "random", "random", "--game", "tic_tac_toe", "--games", "2"]) == 0
    assert "2 games (alternating first move)" in capsys.readouterr().out
    assert main(["arena", "random", "random", "--game", "tic_tac_tow"]) == 2
    assert "unknown game 'tic_tac_tow'" in capsys.readouterr().err
    assert main(["arena", "random", "random"]) == 2
    assert "add --game GAME" in capsys.readouterr().err


def test_play_game_refuses_an_illegal_move():
    game = load_game("tic_tac_toe")
    class Stubborn:
        name = "stubborn"

        def step(self, state):
            return 4

    with pytest.raises(RuntimeError, match="stubborn played the illegal move 4"):
        play_game(game, [Stubborn(), Scripted("b", [0, 1, 2])])


def test_ascent_play_at_the_terminal(monkeypatch, capsys):
    moves = iter(["4", "oops", "0", "2", "6", "3", "5", "7", "1", "8"])  # (first legal ones are played)
    monkeypatch.setattr("builtins.input", lambda prompt: next(m for m in moves))
    assert main(["play", "minimax", "--game", "tic_tac_toe", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "illegal move 'oops'" in out
    assert "a draw against minimax" in out or "you lose against minimax" in out  # (exact play never loses)

"""The arena on PettingZoo's turn-based games and on ascent's Markov games: the OpenSpiel players on a
PettingZoo game through its twin, a self-play run as a player (its game found from the run), a
minimax-Q run on soccer, and clear errors for a run of another game and players a game has not."""

import json

import pytest

pytest.importorskip("pyspiel")
pytest.importorskip("pettingzoo")

from ascent.cli import main  # noqa: E402
from ascent.errors import ConfigError, EnvError  # noqa: E402
from ascent.search.arena import arena  # noqa: E402
from ascent.search.games import MarkovGameInTurns, arena_game  # noqa: E402
from ascent.search.players import HumanPlayer, make_player  # noqa: E402

TTT, C4 = "pettingzoo:tictactoe_v3", "pettingzoo:connect_four_v3"
JSON_KEYS = {"game", "a", "b", "games", "wins", "draws", "losses", "win_rate", "score", "elo", "as_first", "as_second"}


@pytest.fixture(scope="module")
def selfplay_run(tmp_path_factory):
    from ascent.multiagent.selfplay import SelfPlay

    run = tmp_path_factory.mktemp("runs") / "ttt"
    SelfPlay(TTT, seed=0, run_dir=run, verbose=0, n_envs=2, n_steps=8, batch_size=16, n_epochs=1, net_arch=(16,),
             elo_every=0).learn(32, progress_bar=False)
    return run


@pytest.fixture(scope="module")
def minimaxq_run(tmp_path_factory):
    from ascent.multiagent.markov_q import MinimaxQ

    run = tmp_path_factory.mktemp("runs") / "soccer"
    MinimaxQ("soccer", seed=0, run_dir=run, verbose=0, log_interval=100).learn(2000, progress_bar=False)
    return run


def test_search_players_play_a_pettingzoo_game_on_its_openspiel_twin():
    game = arena_game(TTT)
    r = arena(game, make_player("minimax", game, seed=0), make_player("random", game, seed=1), 20)
    assert r["game"] == TTT and r["losses"] == 0 and r["wins"] >= 15
    assert arena(game, make_player("minimax", game, seed=0), make_player("minimax", game, seed=1), 4)["draws"] == 4
    r = arena(game, make_player("random", game, seed=0), make_player("random", game, seed=1), 40)
    assert r["as_first"]["wins"] > r["as_second"]["wins"]  # (who moves first is player 0 in both numberings)
    c4 = arena_game(C4)
    assert arena(c4, make_player("mcts:100", c4, seed=0), make_player("random", c4, seed=1), 6)["wins"] >= 5


def test_a_person_types_the_twins_moves_on_a_pettingzoo_game():
    game = arena_game(TTT)
    person = make_player("human", game, read=lambda prompt: "1")
    assert person.interactive and isinstance(person.player, HumanPlayer)
    assert person.step(game.new_initial_state()) == 3  # OpenSpiel's cell 1 (row 0, column 1) is PettingZoo's 3


def test_a_game_without_twin_has_no_search_players():
    game = arena_game(f"{TTT[:-2]}v3(screen_height=100)")  # (with arguments: not the twin's game)
    assert make_player("random", game).name == "random"
    with pytest.raises(EnvError, match="no OpenSpiel twin"):
        make_player("mcts:10", game)


def test_a_self_play_run_in_the_arena(selfplay_run, capsys):
    game = arena_game(TTT)
    me = make_player(str(selfplay_run), game)
    r = arena(game, me, make_player("random", game, seed=1), 10)
    assert r["a"] == "ttt" and r["wins"] + r["draws"] + r["losses"] == 10
    # the game is the run's own without --game; --json keeps the arena's keys
    assert main(["arena", str(selfplay_run), "random", "--games", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert JSON_KEYS <= set(out) and out["game"] == TTT and out["games"] == 6
    assert main(["arena", str(selfplay_run), "mcts:20", "--game", TTT, "--games", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["b"] == "mcts:20"


def test_a_run_of_another_game_is_refused(selfplay_run, minimaxq_run):
    with pytest.raises(ConfigError, match=f"trained on {TTT}, not {C4}: use --game {TTT}"):
        make_player(str(selfplay_run), arena_game(C4))
    with pytest.raises(ConfigError, match=f"use --game {TTT}"):
        make_player(str(selfplay_run), arena_game("tic_tac_toe"))
    with pytest.raises(ConfigError, match="trained on soccer"):
        make_player(str(minimaxq_run), arena_game(TTT))


def test_soccer_in_the_arena(minimaxq_run, capsys):
    game = arena_game("soccer")
    assert isinstance(game, MarkovGameInTurns)
    r = arena(game, make_player("random", game, seed=0), make_player("random", game, seed=1), 20)
    assert r["wins"] + r["draws"] + r["losses"] == 20 and r["game"] == "soccer"
    assert main(["arena", str(minimaxq_run), "random", "--games", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert JSON_KEYS <= set(out) and out["game"] == "soccer" and out["games"] == 20
    with pytest.raises(ConfigError, match="unknown player 'mcts:10' for the Markov game soccer"):
        make_player("mcts:10", game)


def test_markov_game_turns_hide_the_first_choice_and_make_the_joint_move():
    game = arena_game("soccer")
    state = game.new_initial_state()
    s = state.markov_state()
    assert state.current_player() == 0
    state.apply_action(4)  # player 0 stands: nothing moves until player 1 has chosen
    assert state.current_player() == 1 and state.markov_state() == s
    state.apply_action(4)
    assert state.current_player() == 0 and state.markov_state() == s  # both stood: the same state
    state.apply_action(0)
    state.apply_action(4)
    assert state.markov_state() != s
    with pytest.raises(EnvError, match="unknown game 'socer'.*Markov games .*soccer"):
        arena_game("socer")

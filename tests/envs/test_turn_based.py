"""PettingZoo's turn-based games from one seat: outcomes, masks, seats alternating, opponents drawn per
game, the map onto the OpenSpiel twins (same legal moves, same outcomes, same board), copies that
replay, and bad input with clear errors."""

import copy
import types

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pettingzoo")
pyspiel = pytest.importorskip("pyspiel")

from ascent.envs import turn_based  # noqa: E402
from ascent.envs.multiagent import make_parallel_env  # noqa: E402
from ascent.envs.turn_based import (TurnBasedGame, TurnBasedVecEnv, is_turn_based_id, play_games,  # noqa: E402
                                    random_mover)
from ascent.envs.vector import VecEnv, make_vec_env  # noqa: E402
from ascent.errors import EnvError  # noqa: E402

TTT, C4 = "pettingzoo:tictactoe_v3", "pettingzoo:connect_four_v3"


def test_names_and_what_make_vec_env_gives():
    assert is_turn_based_id(TTT) and is_turn_based_id(C4)
    assert not is_turn_based_id("pettingzoo:rps_v2") and not is_turn_based_id("soccer")  # (parallel ones)
    assert not is_turn_based_id("CartPole-v1") and not is_turn_based_id(None)
    env = make_vec_env(TTT, 3)
    assert isinstance(env, TurnBasedVecEnv) and env.num_envs == 3
    assert isinstance(env.single_observation_space, gym.spaces.Dict) and env.single_action_space == gym.spaces.Discrete(9)
    # the parallel-env learners still refuse it, and say who plays it
    with pytest.raises(EnvError, match="self-play"):
        make_parallel_env(TTT)


def test_random_against_random_gives_tic_tac_toes_known_rates():
    # random play: the first player wins 58.5%, draws 12.7%, loses 28.8% of games
    r = play_games(TTT, random_mover, random_mover, 1000, seed=0)
    assert r["wins"] + r["draws"] + r["losses"] == 1000 and len(r["outcomes"]) == 1000
    first = r["as_first"]
    assert sum(first.values()) == 500 and 0.52 < first["wins"] / 500 < 0.65 and 0.08 < first["draws"] / 500 < 0.18
    assert 0.22 < r["as_second"]["wins"] / 500 < 0.36
    assert set(r["outcomes"]) <= {-1.0, 0.0, 1.0}
    assert play_games(C4, random_mover, random_mover, 20, seed=0)["wins"] > 0


def test_the_learner_sees_its_own_marks_its_legal_moves_and_alternates_seats():
    env = VecEnv(TurnBasedVecEnv(TTT, 4))
    obs = env.reset(seed=3)
    raw = env.env
    assert list(raw.seats) == [0, 1, 0, 1]  # copy k starts in seat k % 2
    rng = np.random.default_rng(0)
    seats_seen = {k: [int(raw.seats[k])] for k in range(4)}
    for _ in range(60):
        for k in range(4):
            board = obs["observation"][k]  # (3, 3, 2): the learner's marks, then the opponent's
            mine, theirs = int(board[..., 0].sum()), int(board[..., 1].sum())
            # as first player it has moved as often as the opponent, as second once less
            assert theirs - mine == raw.seats[k]
            empty = (board.sum(-1) == 0).reshape(-1)  # (the planes hold cell i at [i // 3, i % 3])
            assert np.array_equal(obs["action_mask"][k].astype(bool), empty)
        step = env.step(random_mover(obs, rng))
        for k in np.flatnonzero(step.terminated):
            assert step.reward[k] in (-1.0, 0.0, 1.0)
            seats_seen[k].append(int(raw.seats[k]))
        obs = step.obs
    for seats in seats_seen.values():
        assert len(seats) >= 4 and all(a != b for a, b in zip(seats, seats[1:]))  # alternating, game after game


def test_opponents_are_drawn_per_game_and_rebound_by_key():
    env = TurnBasedVecEnv(TTT, 8)
    calls = {"a": 0, "b": 0}

    def counting(name):
        def move(obs, rng):
            calls[name] += len(obs["action_mask"])
            return random_mover(obs, rng)
        return move

    env.set_opponents({"a": counting("a"), "b": counting("b")}, [0.5, 0.5])
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(40):
        obs, *_ = env.step(random_mover(obs, rng))
    assert calls["a"] > 0 and calls["b"] > 0 and set(env.opponent_keys) <= {"a", "b"}
    env.set_opponents({"a": counting("a")}, [1.0])  # b's games under way keep b; every new game gets a
    for _ in range(20):
        obs, *_ = env.step(random_mover(obs, rng))
    assert set(env.opponent_keys) == {"a"}
    with pytest.raises(ValueError, match="summing to 1"):
        env.set_opponents({"a": random_mover}, [0.5])


def test_illegal_moves_are_errors_that_say_whose():
    env = TurnBasedVecEnv(TTT, 1)
    env.reset(seed=0)  # (copy 0: the learner moves first)
    obs, *_ = env.step([4])
    assert obs["action_mask"][0][4] == 0
    with pytest.raises(EnvError, match="learner .*illegal move 4"):
        env.step([4])
    env = TurnBasedVecEnv(TTT, 2)
    env.set_opponents({"stubborn": lambda obs, rng: np.zeros(len(obs["action_mask"]), int)}, [1.0])
    obs, _ = env.reset(seed=0)  # copy 1: the opponent opens with cell 0
    with pytest.raises(EnvError, match="opponent 'stubborn'.*illegal move 0"):
        env.step([1, 1])  # copy 0: cell 1, then the opponent's 0; copy 1: 1; then it plays 0 again


@pytest.mark.parametrize("name,twin", [(TTT, "tic_tac_toe"), (C4, "connect_four")])
def test_the_openspiel_twin_has_the_same_legal_moves_outcomes_and_board(name, twin):
    game, rng = TurnBasedGame(name), np.random.default_rng(0)
    assert str(game.openspiel_game()) == str(pyspiel.load_game(twin))
    outcomes = set()
    for _ in range(30):
        state = game.new_initial_state()
        while not state.is_terminal():
            os_state = game.to_openspiel(state)
            assert state.current_player() == os_state.current_player()
            assert sorted(game.twin[1](a) for a in state.legal_actions()) == sorted(os_state.legal_actions())
            state.apply_action(int(rng.choice(state.legal_actions())))
        os_state = game.to_openspiel(state)
        assert os_state.is_terminal() and state.returns() == list(os_state.returns())
        outcomes.add(tuple(state.returns()))
    assert len(outcomes) >= 2


def test_tic_tac_toe_cells_pettingzoo_numbers_down_the_columns():
    game = TurnBasedGame(TTT)
    state = game.new_initial_state()
    for cell in (0, 4, 1):  # X at cells 0 and 1: column 0, rows 0 and 1 (tictactoe/board.py's layout)
        state.apply_action(cell)
    assert str(state).splitlines() == ["x..", "xo.", "..."]  # (OpenSpiel's board: rows)
    assert game.to_openspiel(state).history() == [0, 4, 3]
    assert game.from_openspiel_action(3) == 1 and game.from_openspiel_action(2) == 6
    state.apply_action(8)
    state.apply_action(2)  # X completes column 0: a win for player 0 in both
    assert state.is_terminal() and state.returns() == [1.0, -1.0]


def test_a_copy_of_a_game_under_way_replays_its_moves():
    env = TurnBasedVecEnv(TTT, 2)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(random_mover(obs, np.random.default_rng(0)))
    twin = copy.deepcopy(env)
    for a, b in zip(env.states, twin.states):
        assert a.history == b.history and a.env is not b.env
        assert np.array_equal(a.observation(0)["observation"], b.observation(0)["observation"])
    actions = random_mover(obs, np.random.default_rng(1))
    first, second = env.step(actions), twin.step(actions)
    assert all(np.array_equal(first[0][k], second[0][k]) for k in first[0]) and np.array_equal(first[1], second[1])


def test_bad_input_is_a_clear_error(monkeypatch):
    with pytest.raises(EnvError, match="not a turn-based PettingZoo game"):
        TurnBasedGame("pettingzoo:tictactoe_v99")
    with pytest.raises(EnvError, match="not a turn-based PettingZoo game"):
        TurnBasedGame("pettingzoo:rps_v2")  # (a parallel env)
    with pytest.raises(EnvError, match="not a PettingZoo game name"):
        TurnBasedGame("tic_tac_toe")

    class Mismatched:  # a two-player AEC game whose agents have different action spaces
        possible_agents = ["a", "b"]

        def observation_space(self, agent):
            return gym.spaces.Dict({"observation": gym.spaces.Box(0, 1, (3,)), "action_mask": gym.spaces.Box(0, 1, (3,))})

        def action_space(self, agent):
            return gym.spaces.Discrete(3 if agent == "a" else 4)

    monkeypatch.setattr(turn_based, "_aec_module", lambda name: types.SimpleNamespace(raw_env=Mismatched))
    with pytest.raises(EnvError, match="mismatched agent spaces"):
        TurnBasedGame("pettingzoo:mismatched_v0")


def test_random_openings_vary_the_start_and_every_game_reaches_the_learner():
    env = TurnBasedVecEnv(TTT, 8)
    env.random_opening = 6  # (six random moves and the opponent's reply can end a game: it is started again)
    obs, _ = env.reset(seed=0)
    rng, starts = np.random.default_rng(0), set()
    for _ in range(300):
        assert obs["action_mask"].any(1).all()  # the learner always has a move to make
        starts |= {len(s.history) for s in env.states}
        obs, *_ = env.step(random_mover(obs, rng))
    assert {0, 1, 2, 3, 4, 5, 6} <= starts

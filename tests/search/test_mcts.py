"""MCTS (UCT with solver back-ups) and naive Monte Carlo search on OpenSpiel games: selection and
back-up against hand-worked numbers, the solver proving won positions, and the search finding wins
and blocks in tic-tac-toe and Connect Four."""

import math
import random

import pytest

pyspiel = pytest.importorskip("pyspiel")

from ascent.errors import EnvError  # noqa: E402
from ascent.envs.board_games import check_two_player_zero_sum, load_game  # noqa: E402
from ascent.search.mcts import MCTS, SearchTree, naive_monte_carlo, random_playout  # noqa: E402


def play(game, moves):
    state = game.new_initial_state()
    for m in moves:
        state.apply_action(m)
    return state


def two_child_tree(visits_a, sum_a, visits_b, sum_b, sign):
    """A root (visited visits_a + visits_b times, `sign`'s player to move) with two tried children."""
    tree = SearchTree(3)
    tree.first_child[0], tree.num_children[0], tree.tried[0], tree.size = 1, 2, 2, 3
    tree.action[1], tree.action[2] = 0, 1
    tree.sign[0], tree.visits[0] = sign, visits_a + visits_b
    for node, n, w in ((1, visits_a, sum_a), (2, visits_b, sum_b)):
        tree.visits[node], tree.value_sum[node] = n, w
        tree.q[node], tree.inv_sqrt_visits[node] = sign * w / n, n ** -0.5
    return tree


def uct_choice(mcts, tree):
    """The root child one simulation descends to (from tic-tac-toe's first position: the children are
    the moves 0 and 1)."""
    before = [tree.visits[c] for c in tree.children(0)]
    mcts.simulate(tree, load_game("tic_tac_toe").new_initial_state())
    grown = [c for c, b in zip(tree.children(0), before) if tree.visits[c] == b + 1]
    assert len(grown) == 1
    return grown[0]


def test_uct_selection_against_hand_computed_scores():
    game = load_game("tic_tac_toe")
    # a: N=8, W=4 (Q 0.5); b: N=2, W=0 (Q 0); ln 10 = 2.3026.
    # c = 2:   a: 0.5 + 2 sqrt(2.3026/8) = 1.573;  b: 0 + 2 sqrt(2.3026/2) = 2.146  -> b (exploration)
    # c = 0.5: a: 0.5 + 0.268 = 0.768;             b: 0 + 0.536 = 0.536          -> a
    tree = two_child_tree(8, 4.0, 2, 0.0, sign=1.0)
    assert uct_choice(MCTS(game, uct_c=2.0), two_child_tree(8, 4.0, 2, 0.0, sign=1.0)) == 2
    assert uct_choice(MCTS(game, uct_c=0.5), tree) == 1
    tree = two_child_tree(8, 4.0, 2, 0.0, sign=1.0)  # (what the tree holds for UCT: Q and 1/sqrt(N))
    for node, expected in ((1, 0.5 + 2 * math.sqrt(math.log(10) / 8)), (2, 2 * math.sqrt(math.log(10) / 2))):
        got = tree.q[node] + 2.0 * math.sqrt(math.log(tree.visits[0])) * tree.inv_sqrt_visits[node]
        assert got == pytest.approx(expected)
    # Q is the mover's: with player 1 to move, player 0's good child is the bad one
    assert uct_choice(MCTS(game, uct_c=0.1), two_child_tree(5, 4.0, 5, -4.0, sign=1.0)) == 1
    assert uct_choice(MCTS(game, uct_c=0.1), two_child_tree(5, 4.0, 5, -4.0, sign=-1.0)) == 2
    # an exact child is scored by its value alone: a proven draw (0) loses to b's 0.1 + tiny bonus
    tree = two_child_tree(5, 4.0, 5, 0.5, sign=1.0)
    tree.set_exact(1, 0.0, 0)
    assert uct_choice(MCTS(game, uct_c=0.01), tree) == 2


def test_untried_moves_come_first_and_the_back_up_counts_every_node_on_the_path():
    game = load_game("tic_tac_toe")
    mcts = MCTS(game, simulations=10, seed=3, solve=False)
    tree = SearchTree(mcts.capacity)
    root = game.new_initial_state()
    mcts.simulate(tree, root)  # 1: the root itself is evaluated by a playout
    assert tree.visits[0] == 1 and tree.num_children[0] == 0 and tree.value_sum[0] in (-1.0, 0.0, 1.0)
    for i in range(9):  # 2-10: the root is expanded and its 9 moves are tried once each, before any twice
        mcts.simulate(tree, root)
        assert tree.tried[0] == i + 1
    kids = tree.children(0)
    assert sorted(tree.action[c] for c in kids) == list(range(9))
    assert all(tree.visits[c] == 1 for c in kids) and tree.visits[0] == 10
    assert tree.value_sum[0] - sum(tree.value_sum[c] for c in kids) in (-1.0, 0.0, 1.0)  # (the first playout)


def test_the_solver_proves_a_won_tic_tac_toe_position_and_stops():
    game = load_game("tic_tac_toe")
    # x x .
    # o o .     X (player 0) to move wins at 2
    # . . .
    state = play(game, [0, 3, 1, 4])
    mcts = MCTS(game, simulations=5000, seed=0)
    tree = mcts.search(state)
    assert tree.exact[0] and tree.exact_value[0] == 1.0
    assert tree.visits[0] < 5000  # stopped once proven
    assert mcts.step(state) == 2
    # x0 o1 x4 o8: X forks with 3 (threats 5 and 6) or 6 (threats 3 and 2), a win in 3 plies
    state = play(game, [0, 1, 4, 8])
    tree = MCTS(game, simulations=20000, seed=0).search(state)
    assert tree.exact[0] and tree.exact_value[0] == 1.0
    assert MCTS(game, simulations=20000, seed=0).step(state) in (3, 6)  # (the two forks)
    # O to move there loses whatever it does: proven from O's side too
    tree = MCTS(game, simulations=20000, seed=0).search(play(game, [0, 1, 4, 8, 3]))
    assert tree.exact[0] and tree.exact_value[0] == 1.0


@pytest.mark.parametrize("solve", [True, False])
def test_mcts_wins_and_blocks_in_tic_tac_toe_and_connect_four(solve):
    ttt, c4 = load_game("tic_tac_toe"), load_game("connect_four")
    for seed in range(3):
        assert MCTS(ttt, 1000, solve=solve, seed=seed).step(play(ttt, [0, 3, 1, 4])) == 2  # win (O threatens 5)
        assert MCTS(ttt, 1000, solve=solve, seed=seed).step(play(ttt, [0, 4, 1])) == 2  # O blocks
        assert MCTS(c4, 1000, solve=solve, seed=seed).step(play(c4, [0, 1, 0, 1, 0, 1])) == 0  # x wins in column 0
        assert MCTS(c4, 1000, solve=solve, seed=seed).step(play(c4, [0, 1, 0, 1, 0])) == 0  # o blocks it


def test_naive_monte_carlo_picks_the_winning_move_and_means_are_the_movers():
    game = load_game("tic_tac_toe")
    move, means = naive_monte_carlo(play(game, [0, 3, 1, 4]), 50, random.Random(0))
    assert move == 2 and means[2] == 1.0 and set(means) == {2, 5, 6, 7, 8}
    move, means = naive_monte_carlo(play(game, [0, 4, 1]), 100, random.Random(0))  # O to move: its outcomes
    assert move == 2 and all(v <= 1.0 for v in means.values())
    state = play(game, [0, 3, 1, 4])
    assert random_playout(state.clone(), random.Random(0)) in (-1.0, 0.0, 1.0)


def test_games_by_name_with_parameters_and_clear_errors():
    assert load_game("connect_four(rows=5,columns=6)").num_distinct_actions() == 6
    with pytest.raises(EnvError, match="unknown game 'conect_four'.*connect_four"):
        load_game("conect_four")
    with pytest.raises(EnvError, match="game 'connect_four\\(rowz=5\\)'"):
        load_game("connect_four(rowz=5)")
    with pytest.raises(EnvError, match="kuhn_poker has imperfect information, chance events"):
        check_two_player_zero_sum(load_game("kuhn_poker"), "MCTS")
    with pytest.raises(EnvError, match="simultaneous moves"):
        MCTS(load_game("matrix_rps"))
    with pytest.raises(EnvError, match="1 players"):
        check_two_player_zero_sum(load_game("catch"), "AlphaZero")
    with pytest.raises(ValueError, match="game is over"):
        MCTS(load_game("tic_tac_toe")).search(play(load_game("tic_tac_toe"), [0, 3, 1, 4, 2]))

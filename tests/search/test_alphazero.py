"""AlphaZero: PUCT against hand-worked scores (and UCT's choice where both must agree), the loss
against a hand computation, the root noise and the temperature schedule, batched and one-by-one
leaf evaluation giving the same search, bad games refused, and a short self-play run on
tic-tac-toe that learns to beat random play with the network alone."""

import math

import numpy as np
import pytest
import torch

pytest.importorskip("pyspiel")

from ascent.envs.board_games import (BoardGameEnv, board_symmetries, encode, input_shape, load_game,  # noqa: E402
                                     transform_planes)
from ascent.errors import ConfigError, EnvError  # noqa: E402
from ascent.search.alphazero import (PUCT, AlphaZero, AlphaZeroConfig, add_root_noise, choose_move,  # noqa: E402
                                     root_value, value_targets)
from ascent.search.arena import arena  # noqa: E402
from ascent.search.mcts import MCTS, SearchTree  # noqa: E402
from test_mcts import uct_choice  # noqa: E402  (the sibling test module: tests/search is on the path)
from ascent.search.players import make_player  # noqa: E402


def tree_with(children, parent_visits, sign=1.0):
    """A root with tried children [(visits, player-0 value sum, prior)]."""
    tree = SearchTree(1 + len(children), priors=True)
    tree.first_child[0], tree.num_children[0], tree.tried[0], tree.size = 1, len(children), len(children), 1 + len(children)
    tree.visits[0], tree.sign[0] = parent_visits, sign
    tree.action[1:1 + len(children)] = list(range(len(children)))  # (moves 0, 1, ...: legal in the first position)
    for i, (n, w, p) in enumerate(children, start=1):
        tree.visits[i], tree.value_sum[i], tree.prior[i] = n, w, p
        tree.q[i] = sign * w / n if n else 0.0
        tree.inv_sqrt_visits[i] = n ** -0.5 if n else 0.0
    return tree


def puct(c_init=1.25):
    game = load_game("tic_tac_toe")
    return PUCT(game, None, AlphaZeroConfig(c_init=c_init), 1, np.random.default_rng(0))


def test_puct_against_hand_worked_scores():
    # N(s) = 10, c(s) = 1.25 + ln((1 + 10 + 19652) / 19652) = 1.25056; c(s) sqrt(10) = 3.95462
    # a: N 6, Q 0.5,  P 0.2: 0.5 + 3.95462 * 0.2 / 7 = 0.61299
    # b: N 3, Q 0.0,  P 0.5: 0.0 + 3.95462 * 0.5 / 4 = 0.49433
    # c: N 0, Q := 0, P 0.3: 0.0 + 3.95462 * 0.3 / 1 = 1.18639   -> c
    tree = tree_with([(6, 3.0, 0.2), (3, 0.0, 0.5), (0, 0.0, 0.3)], 10)
    assert puct().select(tree, 0) == 3
    tree.prior[3] = 0.1  # c: 0.39546 -> a
    assert puct().select(tree, 0) == 1
    c = (1.25 + math.log((1 + 10 + 19652) / 19652)) * math.sqrt(10)
    assert c == pytest.approx(3.95462, abs=1e-5)


def test_puct_with_a_uniform_prior_agrees_with_uct_where_it_must():
    mcts = MCTS(load_game("tic_tac_toe"), uct_c=2.0)
    # equal visits: both take the better mean, for either player to move
    for sign, expected in ((1.0, 1), (-1.0, 2)):
        tree = tree_with([(5, 2.0, 0.5), (5, -1.0, 0.5)], 10, sign)
        assert puct().select(tree, 0) == expected and uct_choice(mcts, tree) == expected
    # equal means: both explore the less visited
    tree = tree_with([(8, 4.0, 0.5), (2, 1.0, 0.5)], 10)
    assert puct().select(tree, 0) == 2 and uct_choice(mcts, tree) == 2


def test_the_loss_against_a_hand_computation():
    agent = AlphaZero("tic_tac_toe", seed=0, verbose=0, net_arch=(4,), l2_weight=0.01)
    net = agent.net
    with torch.no_grad():  # outputs from the biases alone: logits = b_pi, v = tanh(b_v)
        for p in net.parameters():
            p.zero_()
        net.hidden[0].weight[0, 0] = 0.5  # (one weight, so that the L2 term is not zero: it adds 0.01 * 0.25)
        net.policy_fc.bias.copy_(torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0, 0]))
        net.value_fc.bias.fill_(0.5)
    obs = torch.zeros(2, *input_shape(agent.game))  # (x = 0: the one weight changes nothing)
    pi = torch.zeros(2, 9)
    pi[0, 0], pi[1, 0], pi[1, 1] = 1.0, 0.5, 0.5
    z = torch.tensor([1.0, -1.0])
    log_p0 = 1.0 - math.log(math.e + 8)  # log softmax of the logits at move 0
    log_p1 = 0.0 - math.log(math.e + 8)
    v = math.tanh(0.5)
    value = ((1 - v) ** 2 + (-1 - v) ** 2) / 2
    policy = -(log_p0 + 0.5 * log_p0 + 0.5 * log_p1) / 2
    loss, terms = agent.loss(obs, pi, z)
    assert terms["value_loss"] == pytest.approx(value, rel=1e-6)
    assert terms["policy_loss"] == pytest.approx(policy, rel=1e-6)
    assert loss.item() == pytest.approx(value + policy + 0.01 * 0.25, rel=1e-6)


def test_root_noise_and_the_temperature_schedule():
    prior = np.array([0.5, 0.0, 0.5, 0.0])
    noisy = add_root_noise(prior, [0, 2], alpha=0.3, fraction=0.25, rng=np.random.default_rng(7))
    eta = np.random.default_rng(7).dirichlet([0.3, 0.3])
    np.testing.assert_allclose(noisy[[0, 2]], 0.75 * 0.5 + 0.25 * eta)
    assert noisy[1] == 0.0 and noisy[3] == 0.0 and noisy.sum() == pytest.approx(1.0)
    pi = np.array([0.1, 0.6, 0.3, 0.0])
    rng = np.random.default_rng(0)
    drawn = np.bincount([choose_move(pi, 0, 2, rng) for _ in range(4000)], minlength=4) / 4000
    np.testing.assert_allclose(drawn, pi, atol=0.03)  # temperature 1: in proportion to the visits
    assert {choose_move(pi, 2, 2, rng) for _ in range(50)} == {1}  # then the most visited
    assert {choose_move(np.array([0.5, 0.0, 0.5]), 5, 2, rng) for _ in range(50)} == {0, 2}  # ties at random


def test_batched_and_one_by_one_leaf_evaluation_search_alike():
    game = load_game("tic_tac_toe")
    agent = AlphaZero("tic_tac_toe", seed=0, verbose=0, net_arch=(16,))
    states = [game.new_initial_state() for _ in range(3)]
    states[1].apply_action(4)
    counts = []
    for batched in (True, False):
        search = PUCT(game, agent.net, AlphaZeroConfig(batched=batched), 30, np.random.default_rng(0))
        trees = search.run(states, noise=False)
        counts.append([search.visit_distribution(t).tolist() for t in trees])
        assert search.evaluations == 3 + sum(1 for t in trees for n in range(t.size) if t.num_children[n] > 0) - 3
    assert counts[0] == counts[1]
    # the root's visits: the root evaluation plus one per simulation
    assert all(t.visits[0] == 31 for t in trees)


def test_the_arena_plays_an_alphazero_player_in_all_games_at_once_with_the_same_results():
    game = load_game("connect_four")
    agent = AlphaZero("connect_four", seed=0, verbose=0, channels=8, blocks=1)
    sizes = []

    class Counted:  # AlphaZero's player, its batch sizes recorded
        def __init__(self, player):
            self.player, self.name = player, player.name

        def step_batch(self, states):
            sizes.append(len(states))
            return self.player.step_batch(states)

    opponent = make_player("mcts:20", game, seed=1)
    lockstep = arena(game, Counted(agent.player(8, seed=0)), opponent, 6)
    assert sizes[0] == 3 and max(sizes) == 6  # (first its three games as first player, then all six at once)
    one_by_one = [arena(game, agent.player(8, seed=0), make_player("mcts:20", game, seed=1), 1) for _ in range(1)]
    assert one_by_one[0]["games"] == 1 and lockstep["games"] == 6 and lockstep["moves_a"] > 0
    states = [game.new_initial_state() for _ in range(3)]
    states[1].apply_action(3)
    states[2].apply_action(0)
    player = agent.player(16, seed=0)
    assert player.step_batch(states) == [player.step(s) for s in states]  # (a batch searches each game as alone)
    assert agent.player(0).step_batch(states) == [agent.player(0).step(s) for s in states]


def test_games_it_cannot_play_are_refused():
    with pytest.raises(EnvError, match="simultaneous moves"):
        AlphaZero("matrix_rps", verbose=0)
    with pytest.raises(EnvError, match="1 players"):
        AlphaZero("catch", verbose=0)
    with pytest.raises(EnvError, match="is a Gymnasium env"):
        AlphaZero("CartPole-v1", verbose=0)
    with pytest.raises(EnvError, match="unknown environment 'tic_tac_tow'"):
        AlphaZero("tic_tac_tow", verbose=0)


def test_board_game_env_plays_the_agent_against_random_and_ends_illegal_moves():
    env = BoardGameEnv("tic_tac_toe")
    obs, info = env.reset(seed=1)  # odd seed: the agent is player 1, the opponent has moved once
    assert info["agent_player"] == 1 and obs["action_mask"].sum() == 8
    assert obs["observation"][-1].min() == 1.0  # (the to-move plane: player 1)
    taken = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    _, reward, terminated, _, info = env.step(taken)
    assert reward == -1.0 and terminated and info["illegal"]
    obs, info = env.reset(seed=2)
    assert info["agent_player"] == 0 and obs["action_mask"].sum() == 9
    np.testing.assert_array_equal(obs["observation"], encode(load_game("tic_tac_toe").new_initial_state(),
                                                             input_shape(load_game("tic_tac_toe"))))


@pytest.mark.parametrize("name, count", [("tic_tac_toe", 8), ("connect_four", 2), ("breakthrough", 1)])
def test_board_symmetries_are_symmetries_of_the_rules(name, count):
    """Play random games and their images move by move (old move a -> the new move a' with perm[a'] =
    a): OpenSpiel's own rules give the image position (its encoding transformed), the same legal
    moves (permuted) and the same outcome."""
    game = load_game(name)
    symmetries = board_symmetries(game)
    assert len(symmetries) == count and not any(symmetries[0][0]) and sorted(symmetries[0][1]) == list(symmetries[0][1])
    shape, rng = input_shape(game), np.random.default_rng(0)
    for symmetry, perm in symmetries:
        assert sorted(perm) == list(range(game.num_distinct_actions()))  # a permutation
        image_of = np.argsort(perm)  # old move -> new move
        for _ in range(10):
            state, image = game.new_initial_state(), game.new_initial_state()
            while not state.is_terminal():
                np.testing.assert_array_equal(encode(image, shape), transform_planes(encode(state, shape), symmetry))
                assert sorted(image.legal_actions()) == sorted(image_of[state.legal_actions()])
                move = int(rng.choice(state.legal_actions()))
                state.apply_action(move)
                image.apply_action(int(image_of[move]))
            assert image.is_terminal() and image.returns() == state.returns()


def test_augmented_minibatches_keep_each_position_with_its_own_move_probabilities():
    agent = AlphaZero("connect_four", seed=0, verbose=0, augment=True, channels=8, blocks=1)
    state = agent.game.new_initial_state()
    for move in (0, 0, 1):  # a lopsided position: its mirror image differs
        state.apply_action(move)
    obs = np.stack([encode(state, agent.search.shape)] * 64).astype(np.float16)
    pi = np.tile(np.arange(7, dtype=np.float32) / 21, (64, 1))
    out_obs, out_pi = agent.augmented(obs.copy(), pi.copy())
    mirrored = out_pi[:, 0] > out_pi[:, 6]
    assert 10 < mirrored.sum() < 54  # both images drawn
    np.testing.assert_array_equal(out_obs[mirrored], obs[mirrored][..., ::-1])
    np.testing.assert_array_equal(out_pi[mirrored], pi[mirrored][:, ::-1])
    np.testing.assert_array_equal(out_obs[~mirrored], obs[~mirrored])
    plain = AlphaZero("connect_four", seed=0, verbose=0, channels=8, blocks=1)  # augment off: as they are
    assert plain.augmented(obs, pi)[0] is obs


def test_the_value_targets_and_the_root_value_for_the_player_to_move():
    batch = {"z": np.array([1.0, -1.0, 0.0], np.float32), "q": np.array([0.5, -0.2, 0.4], np.float32)}
    np.testing.assert_allclose(value_targets(batch, "z"), [1.0, -1.0, 0.0])
    np.testing.assert_allclose(value_targets(batch, "q"), [0.5, -0.2, 0.4])
    np.testing.assert_allclose(value_targets(batch, "mix"), [0.75, -0.6, 0.2])
    # root_value: the backed-up mean in the mover's terms (player 0's sums, turned for player 1)
    tree = tree_with([(3, 1.5, 0.5), (1, -1.0, 0.5)], 5)
    tree.value_sum[0] = 0.5 + 1.5 - 1.0  # (the root's own evaluation, 0.5, and its children's)
    assert root_value(tree) == pytest.approx(1.0 / 5)
    tree.sign[0] = -1.0
    assert root_value(tree) == pytest.approx(-1.0 / 5)
    # a search where the player to move wins at once, X and then O: the root's value is near +1 for it
    game = load_game("tic_tac_toe")
    search = PUCT(game, AlphaZero("tic_tac_toe", seed=0, verbose=0).net, AlphaZeroConfig(), 200,
                  np.random.default_rng(0))
    for moves in ([0, 3, 1, 4], [0, 3, 1, 4, 8]):  # X to win at 2; O to win at 5
        state = game.new_initial_state()
        for m in moves:
            state.apply_action(m)
        assert root_value(search.run([state], noise=False)[0]) > 0.5


@pytest.mark.slow
def test_a_short_self_play_run_learns_to_beat_random_play(tmp_path):
    agent = AlphaZero("tic_tac_toe", seed=0, verbose=0, run_dir=tmp_path / "run", eval_every=0)  # (the preset)
    random_player = make_player("random", agent.game, seed=5)
    before = arena(agent.game, agent.player(0, seed=1), random_player, 100)["score"]
    # (~30 s; network-alone score measured on seeds 0, 1: 0.83, 0.895 with the preset's augment and mix
    # value target, 0.735, 0.85 without them)
    agent.learn(30_000, progress_bar=False)
    after = arena(agent.game, agent.player(0, seed=1), random_player, 100)
    assert before < 0.6 and after["score"] >= 0.7, (before, after)
    with_search = arena(agent.game, agent.player(25, seed=1), random_player, 20)
    assert with_search["losses"] == 0
    # the run directory plays in the arena, and a run of another game is refused
    assert make_player(f"{tmp_path / 'run'}:0", agent.game).step(agent.game.new_initial_state()) in range(9)
    with pytest.raises(ConfigError, match="trained on tic_tac_toe"):
        make_player(str(tmp_path / "run"), load_game("connect_four"))


def test_self_play_on_ray_actors_with_a_killed_actor_replaced():
    import os
    import signal

    import ray

    agent = AlphaZero("tic_tac_toe", seed=0, verbose=0, n_actors=2, simulations=8, parallel_games=4, net_arch=(16,),
                      eval_every=0)
    seen = []

    def kill(agent, metrics):
        if agent.iteration == 2:
            os.kill(ray.get(agent.workers.actors[0].pid.remote()), signal.SIGKILL)
        seen.append((metrics["games"], metrics["actor_restarts"]))
        return True

    agent.learn(300, callbacks=kill, progress_bar=False)
    assert [g for g, _ in seen][:3] == [8.0, 16.0, 24.0]  # two actors' 4 games per iteration, the killed one's redone
    assert seen[-1][1] >= 1 and agent.workers is None  # replaced, and the pool let go when learn() ended
    assert agent.positions.size == agent.num_steps  # every move's position reached the learner

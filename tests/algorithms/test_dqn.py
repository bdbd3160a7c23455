"""The DQN family: C51 projection by hand, dueling aggregation, noisy layers, the sum tree and
prioritized sampling, targets (double, n-step, termination vs truncation), learning, save/load."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import ascent
from ascent.algorithms.dqn import categorical_projection
from ascent.buffers.prioritized import PrioritizedSampler, SumTree
from ascent.nets.q_networks import NoisyLinear, QNetwork, dueling
from ascent.buffers.replay import Batch


# ---- C51 projection ---------------------------------------------------------------------------------
def test_categorical_projection_by_hand():
    atoms = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])  # delta z = 1
    next_probs = torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0],
                               [0.2, 0.2, 0.2, 0.2, 0.2],
                               [0.1, 0.2, 0.3, 0.4, 0.0]])
    rewards = torch.tensor([0.5, 10.0, 1.0])
    discounts = torch.tensor([1.0, 0.9, 0.0])  # the third terminated: all mass on r = 1
    got = categorical_projection(next_probs, rewards, discounts, atoms)
    # Row 0: atoms 1, 2 move to 1.5, 2.5: each half splits evenly between its neighbours.
    # Row 1: r + 0.9 z >= 10 > v_max: everything clips to the last atom.
    expected = torch.tensor([[0.0, 0.25, 0.5, 0.25, 0.0],
                             [0.0, 0.0, 0.0, 0.0, 1.0],
                             [0.0, 1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(got, expected)


def test_categorical_projection_keeps_mass_and_the_mean_inside_the_support():
    g = torch.Generator().manual_seed(0)
    atoms = torch.linspace(-10, 10, 51)
    probs = torch.rand(64, 51, generator=g).softmax(1)
    probs[:, :3] = probs[:, -3:] = 0.0  # |r| <= 1: no atom is pushed past v_min or v_max
    probs /= probs.sum(1, keepdim=True)
    rewards, discounts = torch.rand(64, generator=g) * 2 - 1, torch.full((64,), 0.99)
    got = categorical_projection(probs, rewards, discounts, atoms)
    torch.testing.assert_close(got.sum(1), torch.ones(64))
    # Linear interpolation preserves the mean: E = r + gamma E[Z'].
    torch.testing.assert_close((got * atoms).sum(1), rewards + 0.99 * (probs * atoms).sum(1), atol=1e-4, rtol=1e-4)


# ---- networks ---------------------------------------------------------------------------------------
def test_dueling_aggregation():
    value = torch.tensor([[[1.0]], [[-2.0]]])  # (B=2, 1, 1)
    advantage = torch.tensor([[[1.0], [2.0], [3.0]], [[0.0], [0.0], [3.0]]])  # (2, |A|=3, 1)
    q = dueling(value, advantage)
    torch.testing.assert_close(q.squeeze(2), torch.tensor([[0.0, 1.0, 2.0], [-3.0, -3.0, 0.0]]))
    torch.testing.assert_close(q.mean(1), value.squeeze(1))  # the mean over actions is V


def test_noisy_layer_resamples_factorized_noise_and_switches_off():
    torch.manual_seed(0)
    layer = NoisyLinear(4, 3, sigma0=0.5)
    x = torch.randn(5, 4)
    y1 = layer(x)
    torch.testing.assert_close(layer(x), y1)  # noise held until resampled
    layer.reset_noise()
    assert not torch.allclose(layer(x), y1)
    f = lambda e: e.sign() * e.abs().sqrt()  # noqa: E731
    assert torch.equal(layer.eps_in, f(layer.eps_in.sign() * layer.eps_in.square()))  # f(x) = sgn sqrt|x|
    weight = layer.weight_mu + layer.weight_sigma * torch.outer(layer.eps_out, layer.eps_in)
    torch.testing.assert_close(layer(x), x @ weight.T + layer.bias_mu + layer.bias_sigma * layer.eps_out)
    layer.noisy = False
    torch.testing.assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
    torch.testing.assert_close(layer.weight_sigma, torch.full((3, 4), 0.25))  # sigma0 / sqrt(in)


@pytest.mark.parametrize("dueling_on,noisy,atoms", [(False, False, 1), (True, False, 1), (True, True, 51), (False, True, 1)])
def test_q_network_shapes(dueling_on, noisy, atoms):
    net = QNetwork(gym.spaces.Box(-1, 1, (4,)), 3, (16,), dueling=dueling_on, noisy=noisy, n_atoms=atoms)
    out = net(torch.randn(7, 4))
    assert out.shape == ((7, 3) if atoms == 1 else (7, 3, atoms))
    assert len(net.noisy_layers) == (3 if noisy and dueling_on else 2 if noisy else 0)


@pytest.mark.parametrize("dueling_on,activation", [(False, "relu"), (True, "relu"), (False, "tanh")])
def test_numpy_greedy_action_follows_the_network_through_training_and_loading(tmp_path, dueling_on, activation):
    """Acting in numpy reads the parameters in place: it must pick torch's argmax Q before and
    after gradient steps, and in a loaded agent."""
    agent = ascent.DQN("CartPole-v1", seed=0, verbose=0, learning_starts=100, train_freq=4, gradient_steps=4,
                       learning_rate=1e-2, dueling=dueling_on, activation=activation, run_dir=tmp_path / "run")
    assert agent.numpy_greedy is not None
    obs = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)

    def torch_greedy(a):
        with torch.no_grad():
            return a.q_net(torch.as_tensor(obs)).argmax(1).numpy()

    before = agent.numpy_greedy(obs)
    np.testing.assert_array_equal(before, torch_greedy(agent))
    agent.learn(600)
    after = agent.numpy_greedy(obs)
    np.testing.assert_array_equal(after, torch_greedy(agent))
    assert not np.array_equal(before, after)  # the steps changed the greedy policy, and numpy saw it
    loaded = ascent.load(tmp_path / "run" / "model.pt", verbose=0)
    np.testing.assert_array_equal(loaded.numpy_greedy(obs), after)


def test_numpy_greedy_only_where_it_covers_the_network():
    box = gym.spaces.Box(-1, 1, (4,))
    assert QNetwork(box, 3, (16,)).numpy_greedy() is not None
    for net in (QNetwork(box, 3, (16,), noisy=True), QNetwork(box, 3, (16,), n_atoms=11),
                QNetwork(box, 3, (16,), activation="elu"), QNetwork(box, 3, (16,), normalize_obs=True),
                QNetwork(gym.spaces.Discrete(5), 3, (16,)), QNetwork(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), 3, ())):
        assert net.numpy_greedy() is None


# ---- sum tree and prioritized sampling --------------------------------------------------------------
def test_sum_tree_invariants_and_search():
    tree = SumTree(5)  # padded to 8 leaves
    tree.update(np.array([0, 1, 2, 3, 4]), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    tree.update(np.array([2, 2]), np.array([5.0, 3.0]))  # duplicates: the last wins
    assert tree.total == 10.0
    for node in range(1, tree.size):  # every inner node is the sum of its children
        assert tree.nodes[node] == tree.nodes[2 * node] + tree.nodes[2 * node + 1]
    # cumulative intervals: [0,1) -> 0, [1,3) -> 1, [3,6) -> 2, [6,10) -> 3; leaf 4 has no mass
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.99, 1.0, 2.9, 3.0, 5.99, 6.0, 9.99])),
                                  [0, 0, 1, 1, 2, 2, 3, 3])


def test_prioritized_sampling_proportions_and_importance_weights():
    sampler = PrioritizedSampler(4, alpha=0.5)
    sampler.update(np.arange(4), np.array([1.0, 4.0, 9.0, 0.0]) - 1e-6)  # p^alpha = 1, 2, 3, ~0
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(2000):
        index, weights = sampler.sample(6, beta=1.0, n_sampleable=4, rng=rng)
        counts += np.bincount(index, minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [1 / 6, 2 / 6, 3 / 6, 0.0], atol=0.01)
    index, weights = sampler.sample(6, beta=1.0, n_sampleable=4, rng=rng)
    prob = np.array([1, 2, 3, 0]) / 6
    w = (4 * prob[index]) ** -1.0
    np.testing.assert_allclose(weights.numpy(), w / w.max(), rtol=1e-5)


def test_new_transitions_get_the_maximum_priority():
    sampler = PrioritizedSampler(8, alpha=1.0)
    sampler.update(np.array([0, 1]), np.array([0.5, 3.0]))
    sampler.add(np.array([2, 3]), valid=np.array([True, False]))
    np.testing.assert_allclose(sampler.tree.leaves(np.array([0, 1, 2, 3])), [0.5 + 1e-6, 3.0 + 1e-6, 3.0 + 1e-6, 0.0])


# ---- targets ----------------------------------------------------------------------------------------
def _batch(n_step_discount=None):
    return Batch(obs=torch.randn(4, 4), actions=torch.tensor([0, 1, 1, 0]), rewards=torch.tensor([1.0, 0.5, -1.0, 2.0]),
                 next_obs=torch.randn(4, 4), terminated=torch.tensor([0.0, 1.0, 0.0, 0.0]),
                 truncated=torch.tensor([0.0, 0.0, 1.0, 0.0]), discount=n_step_discount)


@pytest.mark.parametrize("double_q", [False, True])
@pytest.mark.parametrize("n_step", [1, 3])
def test_td_target_by_hand(double_q, n_step):
    agent = ascent.DQN("CartPole-v1", seed=0, verbose=0, double_q=double_q, gamma=0.9, learning_starts=0)
    with torch.no_grad():  # make the target network differ from the online one
        for p in agent.q_target.parameters():
            p.add_(0.1 * torch.randn_like(p))
    discount = torch.tensor([0.9, 0.81, 0.729, 0.9]) if n_step > 1 else None
    batch = _batch(discount)
    loss, td_error, _ = agent.loss(batch, agent.td_target(batch))
    with torch.no_grad():
        q_next_target = agent.q_target(batch.next_obs)
        chooser = agent.q_net if double_q else agent.q_target
        a_next = chooser(batch.next_obs).argmax(1)
        gammas = discount if discount is not None else torch.full((4,), 0.9)
        # terminated (env 1) does not bootstrap; truncated (env 2) does
        y = batch.rewards + gammas * torch.tensor([1.0, 0.0, 1.0, 1.0]) * q_next_target[torch.arange(4), a_next]
        q = agent.q_net(batch.obs)[torch.arange(4), batch.actions]
    torch.testing.assert_close(td_error, y - q)
    torch.testing.assert_close(loss.detach(), torch.nn.functional.smooth_l1_loss(q, y))


def test_importance_weights_scale_the_loss():
    agent = ascent.DQN("CartPole-v1", seed=0, verbose=0)
    batch = _batch()
    loss, _, _ = agent.loss(batch, agent.td_target(batch))
    weighted, _, _ = agent.loss(batch, agent.td_target(batch), torch.full((4,), 0.5))
    torch.testing.assert_close(weighted, 0.5 * loss)


def test_c51_loss_is_the_cross_entropy_to_the_projected_target():
    agent = ascent.DQN("CartPole-v1", seed=0, verbose=0, distributional=True, n_atoms=11, v_min=-5.0, v_max=5.0)
    batch = _batch()
    loss, per_sample, _ = agent.loss(batch, agent.td_target(batch))
    with torch.no_grad():
        atoms = torch.linspace(-5, 5, 11)
        next_p = agent.q_target(batch.next_obs).softmax(2)
        a_next = (next_p * atoms).sum(2).argmax(1)
        target = categorical_projection(next_p[torch.arange(4), a_next], batch.rewards,
                                        0.99 * (1 - batch.terminated), atoms)
        log_p = agent.q_net(batch.obs).log_softmax(2)[torch.arange(4), batch.actions]
    torch.testing.assert_close(per_sample, -(target * log_p).sum(1))
    torch.testing.assert_close(loss.detach(), per_sample.mean())


@pytest.mark.parametrize("switches", [{}, {"double_q": True, "n_step": 3}, {"distributional": True}])
def test_a_round_with_one_target_pass_equals_minibatch_by_minibatch(switches):
    """A round of gradient steps evaluates Q' once for all its minibatches (uniform replay, fixed
    Q'): the parameters must end where one-minibatch-at-a-time updates take them."""
    kw = dict(seed=0, verbose=0, learning_starts=10**6, **switches)
    fused, plain = ascent.DQN("CartPole-v1", **kw), ascent.DQN("CartPole-v1", **kw)
    fused.learn(300)  # random play only: both buffers alike
    plain.learn(300)
    with torch.no_grad():  # a target network that differs from the online one
        for a, b in zip(fused.q_target.parameters(), plain.q_target.parameters()):
            a.add_(0.1 * torch.randn_like(a))
            b.copy_(a)
    torch.manual_seed(1)
    fused.gradient_round(8)
    torch.manual_seed(1)  # the same draws: one sample of 8 minibatches, taken in turn
    batch_size = plain.config.batch_size
    batches = plain.replay.batch(*plain.replay.sample_index(8 * batch_size), plain.config.n_step, plain.config.gamma)
    for i in range(8):
        plain.update(batches[batch_size * i:batch_size * (i + 1)])
    for a, b in zip(fused.q_net.parameters(), plain.q_net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(fused.q_net.parameters(), ascent.DQN("CartPole-v1", **kw).q_net.parameters()))


# ---- learning and contracts -------------------------------------------------------------------------
@pytest.mark.parametrize("switches", [{}, {"double_q": True, "dueling": True, "prioritized_replay": True, "n_step": 3},
                                      {"noisy": True, "distributional": True, "v_min": 0.0, "v_max": 20.0,
                                       "exploration_initial_eps": 0.0, "exploration_final_eps": 0.0}])
def test_solves_the_identity_env(identity_env, switches):
    agent = ascent.DQN(identity_env, seed=0, verbose=0, learning_starts=200, learning_rate=1e-3, batch_size=64,
                       target_update_interval=200, train_freq=1, exploration_fraction=0.3, **switches)
    agent.learn(4_000)
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 19


@pytest.mark.slow
def test_dqn_learns_cartpole():
    agent = ascent.DQN("CartPole-v1", seed=0, verbose=0)  # preset 'cartpole', RL-Zoo's
    agent.learn(50_000)
    assert agent.evaluate(10)["mean_return"] >= 195


def test_save_load_resume_with_prioritized_buffer(tmp_path):
    run = tmp_path / "run"
    agent = ascent.DQN("CartPole-v1", seed=0, verbose=0, run_dir=run, prioritized_replay=True, n_step=3,
                       learning_starts=100, train_freq=4, gradient_steps=1, save_replay_buffer=True,
                       checkpoint_every=500)
    agent.learn(1000)
    loaded = ascent.load(run / "checkpoints" / "last.pt", verbose=0)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    assert len(loaded.replay) == len(agent.replay) == 1000
    np.testing.assert_array_equal(loaded.replay.sampler.tree.nodes, agent.replay.sampler.tree.nodes)
    for a, b in zip(agent.q_target.parameters(), loaded.q_target.parameters()):
        torch.testing.assert_close(a, b)
    loaded.learn(200)  # continues with the same buffer
    assert loaded.num_steps == 1200 and len(loaded.replay) == 1200


def test_refuses_continuous_actions_and_bad_switches():
    with pytest.raises(ascent.EnvError, match="Discrete action space.*sac"):
        ascent.DQN("Pendulum-v1", verbose=0)
    with pytest.raises(ascent.ConfigError, match="v_min < v_max"):
        ascent.DQN("CartPole-v1", verbose=0, distributional=True, v_min=1.0, v_max=0.0)
    with pytest.raises(ascent.ConfigError, match="n_step"):
        ascent.DQN("CartPole-v1", verbose=0, n_step=0)
    with pytest.raises(ascent.ConfigError, match="unknown preset"):
        ascent.DQN("CartPole-v1", verbose=0, preset="rainbw")

"""DQfD: the large-margin loss by hand, the combined loss' terms against naive loops, the
demonstrations' permanent place and priority bonus in the replay, pre-training done once across
save/load, bad input, and learning CartPole from five demonstrations."""

import dataclasses
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ascent.buffers.replay import ReplayBuffer
from ascent.errors import CheckpointError, ConfigError, DatasetError, EnvError
from ascent.imitation.datasets import Demonstrations, read_demonstrations, record_episodes, write_dataset
from ascent.imitation.dqfd import DemoReplay, DQfD, DQfDConfig, dqfd_loss, large_margin_loss
from ascent.nets.q_networks import QNetwork

BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
TWO = gym.spaces.Discrete(2)


def record(path, policy, episodes: int, seed: int = 100):
    env = gym.make("CartPole-v1")
    recorded = record_episodes(policy, env, episodes, seed)
    write_dataset(path, recorded, env, "cartpole/test-v0", "test")
    env.close()
    return [float(e["rewards"].sum()) for e in recorded]


@pytest.fixture(scope="module")
def short_demos(tmp_path_factory):
    """Three CartPole episodes of always pushing left (about 10 steps each): a small dataset."""
    path = tmp_path_factory.mktemp("data") / "left"
    record(path, lambda obs: np.zeros(len(obs), np.int64), 3)
    return str(path)


SMALL = dict(net_arch=(16, 16), batch_size=16, learning_starts=0, train_freq=1, gradient_steps=1,
             target_update_interval=20, pretrain_target_update_interval=5, preset="none", verbose=0)


# ---- the large-margin loss ------------------------------------------------------------------------------
def test_large_margin_loss_by_hand():
    q = torch.tensor([[1.0, 2.0, 0.5],    # a_E = 1, already the best by more than the margin: 0
                      [3.0, 1.0, 2.9],    # a_E = 0: max(3.0, 1.8, 2.9 + 0.8 = 3.7) - 3.0 = 0.7
                      [0.1, 0.0, 0.0]],   # a_E = 2: max(0.9, 0.8, 0.0) - 0.0 = 0.9
                     requires_grad=True)
    a_e = torch.tensor([1, 0, 2])
    loss = large_margin_loss(q, a_e, margin=0.8)
    torch.testing.assert_close(loss, torch.tensor([0.0, 0.7, 0.9]))
    loss.sum().backward()
    # d/dQ: +1 at the margin-augmented argmax, -1 at a_E (they cancel in row 0)
    torch.testing.assert_close(q.grad, torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]))
    torch.testing.assert_close(large_margin_loss(q.detach(), a_e, margin=0.0), torch.tensor([0.0, 0.0, 0.1]))


# ---- the combined loss ----------------------------------------------------------------------------------
def two_episodes() -> Demonstrations:
    """Episode 0: 4 steps whose end the recording did not flag (neither terminated nor truncated), which
    must still stop n-step returns there; episode 1: 5 steps ending in a termination."""
    g = np.random.default_rng(0)
    lengths = [4, 5]
    n = sum(lengths)
    terminated = np.zeros(n, bool)
    terminated[-1] = True
    return Demonstrations(obs=g.normal(size=(n, 4)).astype(np.float32), actions=g.integers(2, size=n),
                          rewards=g.normal(size=n).astype(np.float32), next_obs=g.normal(size=(n, 4)).astype(np.float32),
                          terminated=terminated, truncated=np.zeros(n, bool), episode=np.repeat([0, 1], lengths))


def networks():
    torch.manual_seed(0)
    q_net = QNetwork(BOX4, 2, (8,))
    q_target = QNetwork(BOX4, 2, (8,))  # other weights than q_net: a target network that differs
    return q_net, q_target


def naive_target(demos, q_net, q_target, t, n, gamma):
    """sum_{k<L} gamma^k r_{t+k} + gamma^L Q'(s_{t+L}, argmax Q(s_{t+L})), L <= n stopping at the episode's
    end, no bootstrap after a termination, walked step by step."""
    ret, k = 0.0, 0
    while True:
        ret += gamma ** k * float(demos.rewards[t + k])
        ends = t + k + 1 == len(demos) or demos.episode[t + k + 1] != demos.episode[t]
        if demos.terminated[t + k]:
            return ret
        if k + 1 == n or ends:
            s = torch.as_tensor(demos.next_obs[t + k]).unsqueeze(0)
            with torch.no_grad():
                return ret + gamma ** (k + 1) * float(q_target(s)[0, q_net(s).argmax(1)])
        k += 1


def demo_replay(demos, agent_capacity=8, alpha=0.6):
    return DemoReplay(demos, ReplayBuffer(agent_capacity, 1, BOX4, TWO), BOX4, TWO, alpha, eps_agent=1e-3, eps_demo=1.0)


@pytest.mark.parametrize("n", [1, 3, 10])
def test_combined_loss_terms_against_naive_loops(n):
    demos, (q_net, q_target) = two_episodes(), networks()
    gamma = 0.9
    c = DQfDConfig(gamma=gamma, n_step=n, double_q=True, margin=0.8, n_step_coef=0.5, supervised_coef=2.0, l2_coef=1e-3)
    batch = demo_replay(demos).batch(np.arange(len(demos)), n, gamma)
    weights = torch.linspace(0.2, 1.0, len(demos))
    loss, td_error, stats = dqfd_loss(q_net, q_target, None, batch, weights, c)
    with torch.no_grad():
        q_all = q_net(torch.as_tensor(demos.obs))
        q = q_all[torch.arange(len(demos)), torch.as_tensor(demos.actions)]
        y1 = torch.tensor([naive_target(demos, q_net, q_target, t, 1, gamma) for t in range(len(demos))])
        yn = torch.tensor([naive_target(demos, q_net, q_target, t, n, gamma) for t in range(len(demos))])
        j_dq = (weights * F.smooth_l1_loss(q, y1, reduction="none")).mean()
        j_n = (weights * F.smooth_l1_loss(q, yn, reduction="none")).mean()
        j_e = (weights * large_margin_loss(q_all, torch.as_tensor(demos.actions), 0.8)).mean()
        j_l2 = sum(p.square().sum() for p in q_net.parameters())
    torch.testing.assert_close(td_error, y1 - q)  # the priorities come from the 1-step TD error
    torch.testing.assert_close(stats["j_dq"], j_dq)
    torch.testing.assert_close(stats["j_n"], j_n)
    torch.testing.assert_close(stats["j_e"], j_e)
    torch.testing.assert_close(stats["j_l2"], j_l2)
    torch.testing.assert_close(loss.detach(), j_dq + 0.5 * j_n + 2.0 * j_e + 1e-3 * j_l2)
    assert j_e > 0 and (n == 1 or not torch.allclose(yn, y1))  # the terms checked are not trivially 0 or alike


def test_supervised_term_is_zero_on_agent_transitions():
    demos, (q_net, q_target) = two_episodes(), networks()
    replay = demo_replay(demos)
    g = np.random.default_rng(1)
    for _ in range(6):
        replay.add(g.normal(size=(1, 4)), g.integers(2, size=1), g.normal(size=1), g.normal(size=(1, 4)),
                   np.zeros(1, bool), np.zeros(1, bool))
    c = DQfDConfig(n_step=3, supervised_coef=1.0)
    agent_only = replay.batch(len(demos) + np.arange(6), 3, c.gamma)
    loss, _, stats = dqfd_loss(q_net, q_target, None, agent_only, None, c)
    no_supervision, _, _ = dqfd_loss(q_net, q_target, None, agent_only, None, dataclasses.replace(c, supervised_coef=0.0))
    assert stats["j_e"] == 0 and stats["demo_fraction"] == 0
    torch.testing.assert_close(loss, no_supervision)
    # A mixed minibatch: J_E is the batch mean of the demonstrations' margin losses, 0 for the agent's rows.
    mixed = replay.batch(np.array([0, 5, 8, len(demos), len(demos) + 4]), 3, c.gamma)
    _, _, stats = dqfd_loss(q_net, q_target, None, mixed, None, c)
    with torch.no_grad():
        rows = [0, 5, 8]
        per_demo = large_margin_loss(q_net(torch.as_tensor(demos.obs[rows])), torch.as_tensor(demos.actions[rows]), c.margin)
    torch.testing.assert_close(stats["j_e"], per_demo.sum() / 5)
    torch.testing.assert_close(mixed.is_demo, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(mixed.one_step.obs[3:], replay.buffer.obs[[0, 4], 0])  # the agent's rows are its own


# ---- the replay --------------------------------------------------------------------------------------------
def test_demonstrations_outlive_the_buffer_wrapping_and_get_the_priority_bonus(short_demos):
    agent = DQfD("CartPole-v1", seed=0, dataset=short_demos, buffer_size=64, pretrain_steps=10, **SMALL)
    demos = read_demonstrations(short_demos)
    n = len(demos)
    agent.learn(300)  # the agent's 64 slots are written over about 5 times
    replay = agent.replay
    assert agent.replay.buffer.full and agent.replay.buffer.pos == 300 % 64
    assert len(replay) == n + 64
    np.testing.assert_array_equal(replay.demos.obs[:, 0].numpy(), demos.obs)
    np.testing.assert_array_equal(replay.demos.actions[:, 0].numpy(), demos.actions)
    np.testing.assert_array_equal(replay.demos.rewards[:, 0].numpy(), demos.rewards)
    leaves = replay.sampler.tree.leaves(np.arange(n + 64))
    alpha = agent.config.prioritized_replay_alpha
    # Every demonstration learned from has p = |delta| + eps_d >= 1 = eps_d^alpha; never overwritten, never lost
    learned = leaves[:n] != 1.0  # (added at the first maximum priority, 1)
    assert learned.sum() > n // 2 and leaves[:n].min() >= 1.0 - 1e-12
    # The bonus, exactly: the same TD error gives a demonstration eps_d and an agent transition eps_a.
    replay.update_priorities(np.array([0, n + 3]), np.array([0.5, -0.5]))
    np.testing.assert_allclose(replay.sampler.tree.leaves(np.array([0, n + 3])), [(0.5 + 1.0) ** alpha, (0.5 + 1e-3) ** alpha])
    batch, weights, flat = replay.sample(512, 0.6, np.random.default_rng(0), 3, 0.99)
    assert 0 < batch.is_demo.mean() < 1  # both kinds are drawn, demonstrations first
    np.testing.assert_array_equal(batch.is_demo.numpy(), (flat < n).astype(np.float32))
    assert np.all(np.diff(batch.is_demo.numpy()) <= 0)


def test_pretraining_uses_demonstrations_only_and_is_not_repeated_after_loading(short_demos, tmp_path):
    run = tmp_path / "run"
    agent = DQfD("CartPole-v1", seed=0, dataset=short_demos, buffer_size=200, pretrain_steps=30, run_dir=run,
                 save_replay_buffer=True, log_interval=1, **SMALL)
    rows = []
    agent.learn(100, callbacks=lambda a, metrics: rows.append(dict(metrics)))  # one gradient step an env step
    assert rows[0]["pretrain_demo_fraction"] == 1.0 and agent.counters.pretrained == 30
    assert all("pretrain_loss" not in row for row in rows[1:])

    def adam_steps(a):
        return int(next(iter(a.step.optimizer.state.values()))["step"])

    assert adam_steps(agent) == 30 + 100
    loaded = DQfD.load(run / "checkpoints" / "last.pt", run_dir=run, verbose=0)
    assert loaded.counters.pretrained == 30 and adam_steps(loaded) == 130
    np.testing.assert_array_equal(loaded.replay.sampler.tree.nodes, agent.replay.sampler.tree.nodes)
    loaded.learn(20)
    assert adam_steps(loaded) == 150, "the loaded agent pre-trained again"


def test_a_replay_file_of_other_demonstrations_is_refused(tmp_path):
    data = tmp_path / "data"
    record(data, lambda obs: np.zeros(len(obs), np.int64), 3)
    agent = DQfD("CartPole-v1", seed=0, dataset=str(data), buffer_size=200, pretrain_steps=5, **SMALL)
    agent.learn(20)
    path = agent.save(tmp_path / "model.pt", replay=True)
    assert len(DQfD.load(path, verbose=0).replay.buffer) == 20  # the same dataset: the buffer comes back
    shutil.rmtree(data)  # the dataset is recorded again: other episodes under the same path
    record(data, lambda obs: np.ones(len(obs), np.int64), 3)
    with pytest.raises(CheckpointError, match="other demonstrations"):
        DQfD.load(path, verbose=0)


# ---- bad input ----------------------------------------------------------------------------------------------
def test_bad_input_is_a_clear_error(short_demos, tmp_path):
    with pytest.raises(DatasetError, match="dataset=PATH"):
        DQfD("CartPole-v1", verbose=0)
    with pytest.raises(DatasetError, match="no dataset at"):
        DQfD("CartPole-v1", verbose=0, dataset=str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="recorded on CartPole-v1"):
        DQfD("Acrobot-v1", verbose=0, dataset=short_demos)
    with pytest.raises(EnvError, match="Discrete action space"):
        DQfD("Pendulum-v1", verbose=0, dataset=short_demos)
    for name, value in [("margin", -0.8), ("prioritized_replay_demo_eps", 0.0), ("pretrain_steps", -1),
                        ("n_step_coef", -1.0), ("prioritized_replay", False)]:
        with pytest.raises(ConfigError, match=name):
            DQfD("CartPole-v1", verbose=0, dataset=short_demos, **{name: value})


# ---- learning -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_learns_cartpole_from_five_demonstrations(tmp_path, expert_controller):
    """Measured: after 6,000 pre-training steps the greedy Q agrees with the demonstrator on 95-97% of
    its states (seeds 0-2; 89-93% after 3,000, with gymnasium 1.4) and scores 500, 500 again 3000 env
    steps later; without J_E (supervised_coef=0, 3,000 steps) 50%, 10 and 229: the expert never
    fails, so only the margin loss tells its actions from the others."""
    assert record(tmp_path / "expert", expert_controller, 5) == [500.0] * 5  # (tests/imitation/conftest.py)
    agent = DQfD("CartPole-v1", seed=0, verbose=0, dataset=str(tmp_path / "expert"), pretrain_steps=6000,
                 pretrain_target_update_interval=250, net_arch=(64, 64), learning_rate=1e-3, batch_size=64,
                 buffer_size=10_000, train_freq=4, gradient_steps=1, target_update_interval=500, preset="none")
    agent.learn(4)  # the pre-training, and one round of 4 env steps
    demos = read_demonstrations(tmp_path / "expert")
    agreement = (agent.act(demos.obs) == demos.actions).mean()
    assert agreement >= 0.9, f"the pre-trained Q agrees with the demonstrator on {agreement:.0%} of its states"
    assert agent.evaluate(10)["mean_return"] >= 475
    agent.learn(3000)
    assert agent.evaluate(10)["mean_return"] >= 475

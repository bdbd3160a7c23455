"""Replay buffer semantics: wrap-around, truncation vs termination, the memory-lean layout, sampling
shapes, invalid (autoreset) steps, save/load."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.errors import CheckpointError, EnvError
from ascent.buffers.replay import Batch, ReplayBuffer

OBS = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def fill(buffer, steps, n_envs=2, end_every=5, start=0):
    """Env i at step t observes [t, i], acts t/100, gets reward t + 10 i; episodes end every
    `end_every` steps, alternately truncated and terminated, the next obs then being [-t, i]."""
    for t in range(start, steps):
        obs = np.array([[t, i] for i in range(n_envs)], np.float32)
        ended = (t + 1) % end_every == 0
        truncated = np.full(n_envs, ended and (t // end_every) % 2 == 0)
        terminated = np.full(n_envs, ended and not truncated[0])
        next_obs = np.array([[-(t + 1) if ended else t + 1, i] for i in range(n_envs)], np.float32)
        buffer.add(obs, np.full((n_envs, 1), t / 100, np.float32), np.array([t + 10 * i for i in range(n_envs)]),
                   next_obs, terminated, truncated)


def check_consistent(batch):
    t = batch.obs[:, 0]
    env = batch.obs[:, 1]
    assert torch.allclose(batch.actions[:, 0], t / 100)
    assert torch.equal(batch.rewards, t + 10 * env)
    ended = (batch.terminated + batch.truncated) > 0
    expected_next = torch.where(ended, -(t + 1), t + 1)
    assert torch.equal(batch.next_obs[:, 0], expected_next)
    assert torch.equal(batch.next_obs[:, 1], env)
    assert torch.equal(ended, ((t + 1) % 5 == 0))
    assert torch.equal(batch.truncated > 0, ended & ((t // 5) % 2 == 0))


@pytest.mark.parametrize("lean", [False, True])
def test_sampled_transitions_are_consistent_before_and_after_wrap_around(lean):
    buffer = ReplayBuffer(40, 2, OBS, ACT, optimize_memory_usage=lean)  # 20 rows x 2 envs
    fill(buffer, 13)
    assert len(buffer) == 26 and not buffer.full
    batch = buffer.sample(500)
    assert batch.obs.shape == (500, 2) and batch.actions.shape == (500, 1) and batch.rewards.shape == (500,)
    check_consistent(batch)
    assert set(batch.obs[:, 0].long().tolist()) == set(range(13))
    fill(buffer, 57, start=13)  # wraps around: steps 37..56 remain
    assert buffer.full
    assert len(buffer) == (19 if lean else 20) * 2  # lean: the newest row's next obs overwrote the oldest row
    batch = buffer.sample(2000)
    check_consistent(batch)
    kept = set(batch.obs[:, 0].long().tolist())
    assert kept == (set(range(38, 57)) if lean else set(range(37, 57)))


@pytest.mark.parametrize("lean", [False, True])
def test_the_newest_rows_come_oldest_first_in_time_major_order(lean):
    buffer = ReplayBuffer(40, 2, OBS, ACT, optimize_memory_usage=lean)  # 20 rows x 2 envs
    fill(buffer, 7)
    every = buffer.newest()
    assert every["obs"].shape == (7, 2, 2) and every["next_obs"].shape == (7, 2, 2)
    assert every["obs"][:, 0, 0].tolist() == list(range(7)) and every["obs"][3, :, 1].tolist() == [0, 1]
    fill(buffer, 57, start=7)  # wrapped around: steps 37 (38 lean) .. 56 held
    every, last = buffer.newest(), buffer.newest(4)
    assert every["obs"][:, 0, 0].tolist() == list(range(38 if lean else 37, 57))
    assert last["obs"][:, 1, 0].tolist() == [53, 54, 55, 56] and last["valid"].all()
    for data in (every, last):  # each row the transition that was added, the episode ends' next obs included
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in data.items()}
        check_consistent(Batch(flat["obs"], flat["actions"], flat["rewards"], flat["next_obs"], flat["terminated"],
                               flat["truncated"]))
    assert buffer.newest(100)["obs"].shape[0] == len(buffer) // 2


def test_lean_layout_stores_observations_once():
    full = ReplayBuffer(1000, 1, OBS, ACT)
    lean = ReplayBuffer(1000, 1, OBS, ACT, optimize_memory_usage=True)
    assert lean.next_obs is None and full.next_obs.shape == full.obs.shape


def test_invalid_steps_are_never_sampled():
    buffer = ReplayBuffer(100, 1, OBS, ACT)
    for t in range(50):
        buffer.add(np.array([[t, 0]]), np.zeros((1, 1)), np.array([t]), np.array([[t + 1, 0]]), np.zeros(1, bool),
                   np.zeros(1, bool), valid=np.array([t % 2 == 0]))
    assert (buffer.sample(1000).rewards % 2 == 0).all()


def test_discrete_actions_are_integers():
    buffer = ReplayBuffer(10, 1, OBS, gym.spaces.Discrete(3))
    buffer.add(np.zeros((1, 2)), np.array([2]), np.ones(1), np.zeros((1, 2)), np.zeros(1, bool), np.zeros(1, bool))
    assert buffer.sample(4).actions.dtype == torch.int64 and (buffer.sample(4).actions == 2).all()


@pytest.mark.parametrize("lean", [False, True])
def test_state_dict_round_trip_gives_the_same_samples(lean):
    a = ReplayBuffer(40, 2, OBS, ACT, optimize_memory_usage=lean)
    fill(a, 27)
    b = ReplayBuffer(40, 2, OBS, ACT, optimize_memory_usage=lean)
    b.load_state_dict(a.state_dict())
    assert len(a) == len(b) and a.pos == b.pos
    torch.manual_seed(3)
    sa = a.sample(64)
    torch.manual_seed(3)
    sb = b.sample(64)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated"):
        assert torch.equal(getattr(sa, name), getattr(sb, name))
    fill(b, 32, start=27)  # the loaded buffer continues where the saved one stopped
    check_consistent(b.sample(512))


def test_state_dict_of_another_size_is_refused():
    a = ReplayBuffer(40, 2, OBS, ACT)
    with pytest.raises(CheckpointError, match="buffer_size"):
        ReplayBuffer(80, 2, OBS, ACT).load_state_dict(a.state_dict())


def naive_n_step(t, env, n, gamma, newest):
    """The n-step transition from step t of env `env` in `fill`'s stream, by a plain loop."""
    ret, k = 0.0, 0
    while True:
        s = t + k
        ret += gamma ** k * (s + 10 * env)
        ended = (s + 1) % 5 == 0
        if ended or k == n - 1 or s == newest:
            truncated = ended and (s // 5) % 2 == 0
            next_obs = -(s + 1) if ended else s + 1
            return ret, next_obs, float(ended and not truncated), gamma ** (k + 1)
        k += 1


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("n", [1, 3, 7])
def test_n_step_transitions_against_a_naive_loop_across_episode_ends_and_wrap_around(lean, n):
    buffer = ReplayBuffer(40, 2, OBS, ACT, optimize_memory_usage=lean)  # 20 rows
    gamma = 0.9
    for steps in (13, 57):  # before and after wrap-around
        fill(buffer, steps, start=0 if steps == 13 else 13)
        row, env = buffer.sample_index(300)
        batch = buffer.batch(row, env, n_step=n, gamma=gamma)
        for i in range(300):
            t, e = int(batch.obs[i, 0]), int(batch.obs[i, 1])
            ret, next_obs, terminated, discount = naive_n_step(t, e, n, gamma, newest=steps - 1)
            assert batch.rewards[i].item() == pytest.approx(ret, rel=1e-5)
            assert batch.next_obs[i, 0].item() == next_obs and batch.next_obs[i, 1].item() == e
            assert batch.terminated[i].item() == terminated
            expected = discount if n > 1 else None
            if expected is not None:
                assert batch.discount[i].item() == pytest.approx(discount, rel=1e-6)


def test_a_space_without_one_array_shape_is_refused_clearly():
    dict_space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))})
    with pytest.raises(EnvError, match="FlattenObservation"):
        ReplayBuffer(10, 1, dict_space, gym.spaces.Discrete(2))

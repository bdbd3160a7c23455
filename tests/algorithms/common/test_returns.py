"""GAE and discounted returns against hand-worked cases and independent loops."""

import numpy as np
import torch

from ascent.algorithms.common.returns import discounted_returns, gae


def col(*xs):
    return torch.tensor(xs, dtype=torch.float32).unsqueeze(1)  # (T, 1)


def test_gae_hand_worked_with_truncation_and_termination():
    # step 1 is truncated (bootstraps from V(final obs) = 2.0), step 3 terminates (no bootstrap).
    gamma, lam = 0.9, 0.8
    rewards = col(1, 1, 1, 1)
    values = col(0.5, 0.6, 0.7, 0.8)
    next_values = col(0.6, 2.0, 0.8, 9.0)  # 9.0 after a termination must be ignored
    terminated = col(0, 0, 0, 1).bool()
    dones = col(0, 1, 0, 1).bool()
    adv = gae(rewards, values, next_values, terminated, dones, gamma, lam)
    # deltas: 1+.9*.6-.5=1.04, 1+.9*2-.6=2.2, 1+.9*.8-.7=1.02, 1-.8=0.2
    # A3=.2; A2=1.02+.72*.2=1.164; A1=2.2 (done cuts the recursion); A0=1.04+.72*2.2=2.624
    np.testing.assert_allclose(adv.squeeze(1).numpy(), [2.624, 2.2, 1.164, 0.2], rtol=1e-6)


def test_gae_lambda_one_zero_values_is_discounted_return():
    torch.manual_seed(0)
    T, N, gamma = 12, 3, 0.95
    rewards = torch.randn(T, N)
    dones = torch.rand(T, N) < 0.2
    zeros = torch.zeros(T, N)
    adv = gae(rewards, zeros, zeros, dones, dones, gamma, 1.0)
    expected = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            running = rewards[t, n].item() + gamma * running * (1 - dones[t, n].item())
            expected[t, n] = running
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(discounted_returns(rewards, dones, gamma).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gae_lambda_zero_is_td_error():
    torch.manual_seed(1)
    T, N, gamma = 7, 2, 0.9
    r, v, nv = torch.randn(T, N), torch.randn(T, N), torch.randn(T, N)
    term = torch.rand(T, N) < 0.3
    adv = gae(r, v, nv, term, term, gamma, 0.0)
    torch.testing.assert_close(adv, r + gamma * (~term).float() * nv - v)


def test_discounted_returns_bootstrap():
    rewards = col(1, 1)
    dones = col(0, 0).bool()
    out = discounted_returns(rewards, dones, 0.5, bootstrap=torch.tensor([4.0]))
    np.testing.assert_allclose(out.squeeze(1).numpy(), [1 + 0.5 * (1 + 0.5 * 4), 1 + 0.5 * 4])


def test_storage_next_values_use_final_value_on_truncation():
    from ascent.envs.vector import Step
    from ascent.buffers.rollout import RolloutStorage

    s = RolloutStorage(3, 2, 1, (), torch.int64)
    for t in range(3):
        truncated = np.array([t == 1, False])
        step = Step(np.zeros((2, 1)), np.ones(2, np.float32), np.array([False, t == 2]), truncated,
                    np.ones(2, bool), None, truncated if t == 1 else None, [])
        s.add(t, torch.zeros(2, 1), torch.zeros(2, dtype=torch.int64), torch.zeros(2), torch.tensor([10.0 * t, 1.0 + t]),
              step, step.reward)
    s.final_values[1, 0] = 7.0
    nv = s.next_values(torch.tensor([100.0, 200.0]))
    np.testing.assert_allclose(nv.numpy(), [[10.0, 2.0], [7.0, 3.0], [100.0, 200.0]])
    assert s.dones[:, 0].tolist() == [False, True, False] and s.terminated[:, 1].tolist() == [False, False, True]

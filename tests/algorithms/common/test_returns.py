"""GAE and discounted returns against hand-worked cases and independent loops."""

import numpy as np
import torch

from ascent.algorithms.common.returns import discounted_returns, gae, vtrace


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


# ---- V-trace ----------------------------------------------------------------------------------------------
def naive_vtrace(mu_logp, pi_logp, rewards, values, next_values, terminated, dones, gamma, rho_bar, c_bar):
    """IMPALA eq. 1 summed term by term for each start s (no recursion), per env column."""
    T, N = rewards.shape
    ratio = np.exp(pi_logp - mu_logp)
    rho, c = np.minimum(rho_bar, ratio), np.minimum(c_bar, ratio)
    delta = rho * (rewards + gamma * (1 - terminated) * next_values - values)
    vs, adv = np.zeros((T, N)), np.zeros((T, N))
    for n in range(N):
        for s in range(T):
            total, trace = 0.0, 1.0
            for t in range(s, T):
                total += gamma ** (t - s) * trace * delta[t, n]
                if dones[t, n]:
                    break  # the episode ended: nothing of the next one enters
                trace *= c[t, n]
            vs[s, n] = values[s, n] + total
        for s in range(T):
            nxt = vs[s + 1, n] if s + 1 < T and not dones[s, n] else next_values[s, n]
            adv[s, n] = rho[s, n] * (rewards[s, n] + gamma * (1 - terminated[s, n]) * nxt - values[s, n])
    return vs, adv, rho


def random_segment(T=9, N=3, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    ends = rng.random((T, N)) < 0.2
    terminated = ends & (rng.random((T, N)) < 0.5)
    values, next_values = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    next_values[:-1] = np.where(ends[:-1], next_values[:-1], values[1:])  # V(x_{t+1}) inside an episode
    return dict(mu_logp=rng.normal(size=(T, N)) * spread, pi_logp=rng.normal(size=(T, N)) * spread,
                rewards=rng.normal(size=(T, N)), values=values, next_values=next_values,
                terminated=terminated.astype(float), dones=ends.astype(float))


def run_vtrace(seg, gamma, rho_bar, c_bar):
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in seg.items()}
    return vtrace(t["mu_logp"], t["pi_logp"], t["rewards"], t["values"], t["next_values"], t["terminated"].bool(),
                  t["dones"].bool(), gamma, rho_bar, c_bar)


def test_vtrace_against_the_papers_sum_term_by_term():
    for seed, (rho_bar, c_bar) in enumerate([(1.0, 1.0), (2.0, 0.5), (0.7, 1.3)]):
        seg = random_segment(seed=seed)
        out = run_vtrace(seg, 0.9, rho_bar, c_bar)
        vs, adv, rho = naive_vtrace(**seg, gamma=0.9, rho_bar=rho_bar, c_bar=c_bar)
        np.testing.assert_allclose(out.vs.numpy(), vs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out.pg_advantages.numpy(), adv, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out.clipped_rhos.numpy(), rho)
        assert out.clipped_rhos.max() <= rho_bar


def test_vtrace_on_policy_is_the_n_step_return_and_its_advantage():
    seg = random_segment(seed=7)
    seg["pi_logp"] = seg["mu_logp"].copy()  # pi = mu: every ratio is 1
    out = run_vtrace(seg, 0.95, 1.0, 1.0)
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in seg.items()}
    adv = gae(t["rewards"], t["values"], t["next_values"], t["terminated"].bool(), t["dones"].bool(), 0.95, 1.0)
    np.testing.assert_allclose(out.vs.numpy(), (t["values"] + adv).numpy(), rtol=1e-10)
    np.testing.assert_allclose(out.pg_advantages.numpy(), adv.numpy(), rtol=1e-10, atol=1e-12)
    # with no episode end, v_0 is sum_t gamma^t r_t + gamma^T V(x_T): the n-step return
    seg["dones"][:] = 0
    seg["terminated"][:] = 0
    seg["next_values"][:-1] = seg["values"][1:]
    out = run_vtrace(seg, 0.95, 1.0, 1.0)
    T = seg["rewards"].shape[0]
    n_step = sum(0.95 ** k * seg["rewards"][k] for k in range(T)) + 0.95 ** T * seg["next_values"][-1]
    np.testing.assert_allclose(out.vs[0].numpy(), n_step, rtol=1e-10)


def test_vtrace_truncated_step_bootstraps_and_terminated_does_not():
    # on-policy, gamma 0.5: step 0 truncated (V(final obs) = 4), step 1 terminated (next value 100 ignored)
    seg = dict(mu_logp=np.zeros((2, 1)), pi_logp=np.zeros((2, 1)), rewards=np.array([[1.0], [1.0]]),
               values=np.array([[0.0], [0.0]]), next_values=np.array([[4.0], [100.0]]),
               terminated=np.array([[0.0], [1.0]]), dones=np.array([[1.0], [1.0]]))
    out = run_vtrace(seg, 0.5, 1.0, 1.0)
    np.testing.assert_allclose(out.vs[:, 0].numpy(), [1.0 + 0.5 * 4.0, 1.0])

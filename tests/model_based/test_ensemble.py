"""The probabilistic ensemble (ascent/model_based/ensemble.py): its NLL, bootstrap, variance bounds,
batched members, trajectory sampling, fitting, prediction error and Pendulum's known reward."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ascent.model_based.ensemble import (ProbabilisticEnsemble, bootstrap, gaussian_nll, pendulum_reward,
                                         prediction_error)


def small(**kw) -> ProbabilisticEnsemble:
    args = dict(obs_dim=3, action_dim=2, n_members=4, hidden=(16, 16))
    args.update(kw)
    return ProbabilisticEnsemble(**args)


def test_gaussian_nll_is_the_normal_log_likelihood():
    torch.manual_seed(0)
    mean, logvar, target = torch.randn(7, 3), torch.randn(7, 3), torch.randn(7, 3)
    expected = -torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(target)
    torch.testing.assert_close(gaussian_nll(mean, logvar, target), expected)


def test_loss_sums_each_members_mean_nll_and_adds_the_bounds_and_decay_terms():
    torch.manual_seed(0)
    ens = small(weight_decay=1e-3)
    obs, action, target = torch.randn(4, 10, 3), torch.randn(4, 10, 2), torch.randn(4, 10, 4)
    loss, metrics = ens.loss(obs, action, target)
    pred = ens(obs, action)
    normal = torch.distributions.Normal(pred.mean, torch.exp(0.5 * pred.logvar))
    nll = sum(-normal.log_prob(target)[k].sum(-1).mean() for k in range(4))  # a member's NLL: sum dims, mean rows
    bounds = 0.01 * (ens.max_logvar.sum() - ens.min_logvar.sum())
    decay = 0.5e-3 * sum((w ** 2).sum() for w in ens.weights)
    torch.testing.assert_close(loss, nll + bounds + decay)
    assert metrics["model_nll"] == pytest.approx(nll.item() / 4, rel=1e-5)


def test_bootstrap_draws_with_replacement_from_the_given_rows_and_differs_between_members():
    rows = torch.arange(1000, 3000)  # a training split's row numbers
    boot = bootstrap(rows, 5, torch.Generator().manual_seed(0))
    assert boot.shape == (5, 2000)
    assert bool(((boot >= 1000) & (boot < 3000)).all())
    unique = [len(torch.unique(b)) / 2000 for b in boot]
    assert all(abs(u - (1 - math.exp(-1))) < 0.03 for u in unique), unique  # with replacement: ~63.2% distinct
    assert all(not torch.equal(torch.sort(boot[i]).values, torch.sort(boot[j]).values)
               for i in range(5) for j in range(i))


def test_fit_trains_each_member_on_its_own_resample_of_the_training_split(monkeypatch):
    import ascent.model_based.ensemble as module

    drawn = {}

    def recording(rows, n_members, generator=None):
        drawn["rows"], drawn["boot"] = rows, bootstrap(rows, n_members, generator)
        return drawn["boot"]

    monkeypatch.setattr(module, "bootstrap", recording)
    torch.manual_seed(0)
    n = 200
    obs, action = torch.randn(n, 3), torch.randn(n, 2)
    small().fit(obs, action, obs + 0.1 * action.sum(-1, keepdim=True), torch.randn(n), max_epochs=2,
                holdout_fraction=0.25)
    train, boot = drawn["rows"], drawn["boot"]
    assert len(train) == 150 and boot.shape == (4, 150)
    assert bool(torch.isin(boot, train).all())  # never a held-out row


def test_logvar_stays_within_the_learned_bounds_whatever_the_network_outputs():
    torch.manual_seed(0)
    ens = small(min_logvar=-4.0, max_logvar=1.0)
    with torch.no_grad():
        ens.weights[-1].mul_(1e3)  # raw log-variances in the thousands, of both signs
        ens.max_logvar.copy_(torch.tensor([0.5, 2.0, -1.0, 0.0]))  # learned bounds move per dimension
        ens.min_logvar.copy_(torch.tensor([-5.0, -3.0, -9.0, -2.0]))
    pred = ens(torch.randn(4, 500, 3) * 10, torch.randn(4, 500, 2) * 10)
    # The lower clamp, applied last, can lift a value past max_logvar by at most softplus(min - max):
    # 3e-5 at PETS's initial bounds (-10, 0.5); a gap of 2 (the last dimension here) allows 0.13.
    slack = F.softplus(ens.min_logvar - ens.max_logvar)
    assert bool((pred.logvar >= ens.min_logvar).all())
    assert bool((pred.logvar <= ens.max_logvar + slack + 1e-6).all())
    assert pred.logvar.max() > 0.4 and pred.logvar.min() < -8.9  # the bounds are reached: the check is not vacuous


def test_batched_members_equal_each_member_run_alone():
    torch.manual_seed(0)
    ens = small(learn_termination=True)
    with torch.no_grad():
        ens.input_mean.copy_(torch.randn(5))
        ens.input_std.copy_(torch.rand(5) + 0.5)
    obs, action = torch.randn(4, 6, 3), torch.randn(4, 6, 2)
    pred = ens(obs, action)
    for k in range(4):  # member k as an ordinary MLP of nn.Linear layers
        layers = [torch.nn.Linear(w.shape[1], w.shape[2]) for w in ens.weights]
        with torch.no_grad():
            for layer, w, b in zip(layers, ens.weights, ens.biases):
                layer.weight.copy_(w[k].T), layer.bias.copy_(b[k, 0])
        x = (torch.cat([obs[k], action[k]], -1) - ens.input_mean) / ens.input_std
        for i, layer in enumerate(layers):
            x = layer(x) if i == len(layers) - 1 else F.silu(layer(x))
        logvar = ens.max_logvar - F.softplus(ens.max_logvar - x[:, 4:8])
        logvar = ens.min_logvar + F.softplus(logvar - ens.min_logvar)
        torch.testing.assert_close(pred.mean[k], x[:, :4])
        torch.testing.assert_close(pred.logvar[k], logvar)
        torch.testing.assert_close(pred.terminated_logit[k], x[:, 8])
    # a subset of members (elites [2, 0]) and the row-wise path give the same numbers
    sub = ens(obs[[2, 0]], action[[2, 0]], torch.tensor([2, 0]))
    torch.testing.assert_close(sub.mean, pred.mean[[2, 0]])
    member = torch.tensor([3, 1, 1, 0, 3, 3])
    rows = ens.predict(obs[member, torch.arange(6)], action[member, torch.arange(6)], member)
    torch.testing.assert_close(rows.mean, pred.mean[member, torch.arange(6)])
    torch.testing.assert_close(rows.logvar, pred.logvar[member, torch.arange(6)])


def test_step_samples_from_the_chosen_members_gaussian():
    torch.manual_seed(0)
    ens = small(learn_termination=True)
    obs, action = torch.randn(6, 3), torch.randn(6, 2)
    member = torch.tensor([0, 1, 2, 3, 0, 1])
    step = ens.step(obs, action, member, torch.Generator().manual_seed(1))
    assert step.next_obs.shape == (6, 3) and step.reward.shape == (6,) and step.terminated.shape == (6,)
    assert step.terminated.dtype == torch.bool
    pred = ens.predict(obs, action, member)
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    y = pred.mean + torch.exp(0.5 * pred.logvar) * noise
    torch.testing.assert_close(step.next_obs, obs + y[:, :3])
    torch.testing.assert_close(step.reward, y[:, 3])
    known = small(learn_reward=False).step(obs, action, member)
    assert known.reward is None and known.terminated is None and known.next_obs.shape == (6, 3)


def test_random_members_are_drawn_from_the_elites_only():
    ens = small()
    ens.elites = torch.tensor([1, 3])
    ens.n_elites = 2
    drawn = ens.random_members(2000, torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {1, 3}
    assert abs((drawn == 1).float().mean().item() - 0.5) < 0.05


def test_fit_learns_the_mean_and_the_noise_variance_and_ranks_elites_by_held_out_error():
    torch.manual_seed(0)
    n = 2000
    obs, action = torch.rand(n, 3) * 2 - 1, torch.rand(n, 2) * 2 - 1
    noise_std = 0.05
    delta = torch.stack([action[:, 0], obs[:, 0] * action[:, 1], obs[:, 1] ** 2], 1)
    next_obs = obs + delta + noise_std * torch.randn(n, 3)
    reward = -(obs ** 2).sum(1)
    ens = small(n_members=5, n_elites=3, hidden=(64, 64))
    before = ens.member_mse(obs, action, ens.targets(obs, next_obs, reward)).mean().item()
    out = ens.fit(obs, action, next_obs, reward, batch_size=64, max_epochs=300, patience=5)
    assert out["model_epochs"] < 300  # early stopping ended it
    assert out["model_holdout_mse"] < 0.05 * before
    test_obs, test_action = torch.rand(500, 3) * 2 - 1, torch.rand(500, 2) * 2 - 1
    test_delta = torch.stack([test_action[:, 0], test_obs[:, 0] * test_action[:, 1], test_obs[:, 1] ** 2], 1)
    pred = ens(test_obs.expand(5, -1, -1), test_action.expand(5, -1, -1))
    assert (pred.mean[..., :3] - test_delta).square().mean() < 3 * noise_std ** 2
    # the learned variance of the next observation is the noise's, log(0.0025) = -6.0; the reward has none
    assert abs(pred.logvar[..., :3].mean().item() - math.log(noise_std ** 2)) < 0.7
    assert pred.logvar[..., 3].mean() < pred.logvar[..., :3].mean()
    # the elites are the 3 members with the lowest held-out MSE
    assert ens.elites.shape == (3,) and len(set(ens.elites.tolist())) == 3
    assert out["model_holdout_mse"] > 0


def test_prediction_error_matches_a_step_by_step_rollout():
    torch.manual_seed(0)
    ens = small(n_members=3, n_elites=2)
    ens.elites = torch.tensor([2, 0])
    T, N, k = 12, 2, 3
    obs, action, next_obs = torch.randn(T, N, 3), torch.randn(T, N, 2), torch.randn(T, N, 3)
    reward = torch.randn(T, N)
    done = torch.zeros(T, N, dtype=torch.bool)
    done[4, 0] = done[9, 1] = True
    valid = torch.ones(T, N, dtype=torch.bool)
    valid[5, 0] = False  # (a next-step autoreset: the step after an episode's end is no transition)
    out = prediction_error(ens, obs, action, next_obs, done, reward, k=k, valid=valid)

    def mean_step(member, s, a):
        return ens(s.view(1, 1, 3), a.view(1, 1, 2), torch.tensor([member])).mean.view(-1)

    one, rew, far = [], [], []
    for member in (2, 0):
        for t in range(T):
            for n in range(N):
                if not valid[t, n]:
                    continue
                pred = mean_step(member, obs[t, n], action[t, n])
                one.append(((obs[t, n] + pred[:3] - next_obs[t, n]) ** 2).mean())
                rew.append((pred[3] - reward[t, n]) ** 2)
                # k valid steps within one episode (the last of them may end it)
                if t + k <= T and not done[t:t + k - 1, n].any() and valid[t:t + k, n].all():
                    s = obs[t, n]
                    for j in range(k):
                        s = s + mean_step(member, s, action[t + j, n])[:3]
                    far.append(((s - next_obs[t + k - 1, n]) ** 2).mean())
    # starts cut: env 0 by its end at 4 (starts 3, 4) and the invalid step 5 (start 5), env 1 by its end at 9
    assert len(far) == 2 * (2 * (T - k + 1) - 5)
    assert out["model_mse_1step"] == pytest.approx(torch.stack(one).mean().item(), rel=1e-5)
    assert out["reward_mse"] == pytest.approx(torch.stack(rew).mean().item(), rel=1e-5)
    assert out["model_mse_kstep"] == pytest.approx(torch.stack(far).mean().item(), rel=1e-5)
    assert math.isnan(prediction_error(ens, obs[:2], action[:2], next_obs[:2], done[:2], k=k)["model_mse_kstep"])


def test_pendulum_known_reward_equals_the_envs_reward():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(600):
        action = rng.uniform(-3.0, 3.0, (1,)).astype(np.float32)  # beyond the bounds too: the env clips
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, reward))
        obs = env.reset()[0] if terminated or truncated else next_obs
    o, a, r = (torch.as_tensor(np.array(x), dtype=torch.float32) for x in zip(*rows))
    torch.testing.assert_close(pendulum_reward(o, a), r, atol=1e-4, rtol=1e-5)
    assert r.min() < -8  # far from upright too


def test_fit_learns_a_termination_classifier():
    torch.manual_seed(0)
    n = 1000
    obs, action = torch.rand(n, 3) * 2 - 1, torch.rand(n, 2) * 2 - 1
    terminated = (obs[:, 0] + action[:, 0] > 0.5).float()
    ens = small(learn_reward=False, learn_termination=True, hidden=(32, 32))
    ens.fit(obs, action, obs, terminated=terminated, batch_size=64, max_epochs=100)
    test_obs, test_action = torch.rand(500, 3) * 2 - 1, torch.rand(500, 2) * 2 - 1
    step = ens.step(test_obs, test_action, ens.random_members(500))
    assert (step.terminated == (test_obs[:, 0] + test_action[:, 0] > 0.5)).float().mean() > 0.95

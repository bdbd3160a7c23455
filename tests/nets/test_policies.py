"""Space handling, action bounds, and gradient isolation between actor and critic."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.errors import EnvError
from ascent.nets.policies import ActorCritic

BOX = gym.spaces.Box(-1, 1, (3,), np.float32)


@pytest.mark.parametrize("obs_space, action_space, action_shape", [
    (BOX, gym.spaces.Discrete(4), ()),
    (gym.spaces.Discrete(5), gym.spaces.Discrete(2), ()),
    (gym.spaces.MultiDiscrete([3, 2]), gym.spaces.MultiDiscrete([2, 3, 4]), (3,)),
    (BOX, gym.spaces.Box(-2, 2, (2,), np.float32), (2,)),
])
def test_spaces_shapes(obs_space, action_space, action_shape):
    policy = ActorCritic(obs_space, action_space)
    obs = torch.as_tensor(np.stack([obs_space.sample() for _ in range(7)]))
    x = policy.encoder(obs)
    with torch.no_grad():
        action, logprob, value = policy.act(x)
    assert action.shape == (7, *action_shape) and logprob.shape == (7,) and value.shape == (7,)
    env_action = policy.to_env_action(action)
    assert all(action_space.contains(a.astype(action_space.dtype)) for a in env_action)


def test_unsupported_spaces_raise_clear_errors():
    with pytest.raises(EnvError, match="not supported"):
        ActorCritic(gym.spaces.Text(5), gym.spaces.Discrete(2))
    with pytest.raises(EnvError, match="image entry"):  # (Dict/Tuple of Box and Discrete: tests/nets/test_encoders.py)
        ActorCritic(gym.spaces.Dict({"a": BOX, "pixels": gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)}),
                    gym.spaces.Discrete(2))
    with pytest.raises(EnvError, match="action space"):
        ActorCritic(BOX, gym.spaces.Box(-1, 1, (2, 2)))
    with pytest.raises(EnvError, match="bounded"):
        ActorCritic(BOX, gym.spaces.Box(-np.inf, np.inf, (2,)), squash_actions=True)


def test_gaussian_actions_clipped_or_squashed_into_bounds():
    space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))
    for squash in (False, True):
        policy = ActorCritic(BOX, space, log_std_init=2.0, squash_actions=squash)
        with torch.no_grad():
            a = policy.to_env_action(policy.act(torch.randn(500, 3))[0])
        assert (a >= space.low - 1e-6).all() and (a <= space.high + 1e-6).all()


def test_gradient_isolation_between_actor_and_critic():
    policy = ActorCritic(BOX, gym.spaces.Discrete(3))
    x = torch.randn(8, 3)
    dist, value = policy(x)
    value.square().mean().backward()
    assert all(p.grad is None for p in policy.actor_torso.parameters())
    assert policy.action_head.weight.grad is None
    assert all(p.grad is not None for p in policy.critic_torso.parameters())
    policy.zero_grad(set_to_none=True)
    dist, value = policy(x)
    dist.log_prob(torch.zeros(8, dtype=torch.long)).mean().backward()
    assert all(p.grad is None for p in policy.critic_torso.parameters())
    assert policy.value_head.weight.grad is None


def test_obs_normalization_statistics():
    from ascent.nets.normalize import RunningMeanStd

    rms = RunningMeanStd((2,))
    data = np.random.default_rng(0).normal([3.0, -1.0], [2.0, 0.5], size=(1000, 2))
    for chunk in np.split(data, 10):
        rms.update(torch.as_tensor(chunk))
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-3)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-3)


def test_reward_scaler_scales_without_shifting():
    from ascent.nets.normalize import RewardScaler

    scaler = RewardScaler(2, gamma=0.99)
    for _ in range(200):
        out = scaler(np.array([10.0, 10.0]), np.array([False, False]))
    assert (out > 0).all()  # positive rewards stay positive: scaled, not centred
    assert out[0] == pytest.approx(10.0 / np.sqrt(scaler.var + 1e-8), rel=1e-5)


@pytest.mark.parametrize("action_space", [gym.spaces.Discrete(3), gym.spaces.Box(-2, 2, (2,), np.float32)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_numpy_actor_matches_the_torch_policy(action_space, activation):
    """Acting in numpy: V(s) and log pi(a|s) equal torch's for the sampled actions, and the
    actions follow pi (categorical frequencies; Gaussian standardized residuals ~ N(0, 1))."""
    torch.manual_seed(0)
    policy = ActorCritic(BOX, action_space, (32, 32), activation, log_std_init=-0.5)
    with torch.no_grad():  # a policy far from uniform
        policy.action_head.weight.mul_(1000.0)
    act = policy.numpy_actor(np.random.default_rng(0))
    obs = np.tile(np.random.default_rng(1).uniform(-1, 1, (4, 3)).astype(np.float32), (5000, 1))  # 4 states
    action, log_prob, value = act(obs)
    with torch.no_grad():
        dist, torch_value = policy(torch.from_numpy(obs))
        torch.testing.assert_close(torch.from_numpy(value), torch_value, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(log_prob), dist.log_prob(torch.from_numpy(action)), rtol=1e-4, atol=1e-4)
        if isinstance(action_space, gym.spaces.Discrete):
            probs = dist.logits.exp()[:4].numpy()
            assert probs.max() - probs.min() > 0.3  # far from uniform: a wrong state-action pairing shows
            for state in range(4):
                freq = np.bincount(action[state::4], minlength=3) / 5000
                np.testing.assert_allclose(freq, probs[state], atol=0.025)  # > 3.5 sigma at n = 5000
        else:
            z = (action - dist.mean.numpy()) / np.exp(-0.5)
            assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03


def test_numpy_actor_only_where_it_covers_the_policy():
    assert ActorCritic(BOX, gym.spaces.Discrete(2)).numpy_actor(np.random.default_rng(0)) is not None
    for policy in (ActorCritic(BOX, gym.spaces.Discrete(2), share_torso=True),
                   ActorCritic(BOX, gym.spaces.Discrete(2), normalize_obs=True),
                   ActorCritic(BOX, gym.spaces.Discrete(2), activation="elu"),
                   ActorCritic(gym.spaces.Discrete(5), gym.spaces.Discrete(2)),
                   ActorCritic(BOX, gym.spaces.MultiDiscrete([2, 3])),
                   ActorCritic(BOX, gym.spaces.Box(-1, 1, (2,), np.float32), squash_actions=True)):
        assert policy.numpy_actor(np.random.default_rng(0)) is None


def test_logistic_tanh_matches_torch_tanh_in_value_and_gradient():
    """The logistic route MLPs take on AVX-512 CPUs: tanh(x) = 2 sigmoid(2x) - 1 and d tanh = 1 - tanh^2."""
    from ascent.nets.layers import _Tanh

    torch.manual_seed(0)
    x = (torch.randn(300, 64, dtype=torch.float64) * 3).requires_grad_()
    y = _Tanh.apply(x)
    weights = torch.randn_like(x)
    (grad,) = torch.autograd.grad((y * weights).sum(), x)
    x_ref = x.detach().clone().requires_grad_()
    (grad_ref,) = torch.autograd.grad((torch.tanh(x_ref) * weights).sum(), x_ref)
    torch.testing.assert_close(y, torch.tanh(x.detach()), atol=1e-12, rtol=0)
    torch.testing.assert_close(grad, grad_ref, atol=1e-12, rtol=0)


# ---- gSDE (Raffin et al. 2021) -----------------------------------------------------------------------------
def sde_policy(full_std: bool = True, log_std_init: float = -0.5) -> ActorCritic:
    torch.manual_seed(0)
    return ActorCritic(BOX, gym.spaces.Box(-2, 2, (2,), np.float32), net_arch=(8, 5), use_sde=True,
                       full_std=full_std, log_std_init=log_std_init)


@pytest.mark.parametrize("full_std", [True, False])
def test_gsde_distribution_against_a_naive_sum(full_std):
    policy = sde_policy(full_std)
    with torch.no_grad():
        policy.log_std.copy_(torch.randn(policy.log_std.shape) * 0.3 - 0.5)
    assert policy.log_std.shape == ((5, 2) if full_std else (5, 1))
    x = torch.randn(6, 3)
    with torch.no_grad():
        dist, _, z = policy.forward_with_latent(x)
    sigma = policy.log_std.detach().exp().numpy()
    for b in range(6):  # var_j = sum_i z_i^2 sigma_ij^2 (+ SB3's 1e-6), one action at a time
        for j in range(2):
            var = sum(float(z[b, i]) ** 2 * float(sigma[i, j if full_std else 0]) ** 2 for i in range(5)) + 1e-6
            assert float(dist.log_std[b, j].exp()) == pytest.approx(var ** 0.5, rel=1e-5)
    a = torch.randn(6, 2)
    oracle = torch.distributions.Normal(dist.mean, dist.log_std.exp())
    torch.testing.assert_close(dist.log_prob(a), oracle.log_prob(a).sum(-1))
    torch.testing.assert_close(dist.entropy(), oracle.entropy().sum(-1))


def test_expln_against_its_closed_form():
    from ascent.nets.distributions import expln

    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 4.0], requires_grad=True)
    expected = [math.exp(-3.0), math.exp(-0.5), 1.0, math.log(1.5) + 1, math.log(5.0) + 1]
    torch.testing.assert_close(expln(x), torch.tensor(expected), atol=1e-5, rtol=0)
    expln(x).sum().backward()  # slope exp(x) below 0, 1 / (1 + x) above: finite everywhere
    torch.testing.assert_close(x.grad, torch.tensor([math.exp(-3.0), math.exp(-0.5), 1.0, 1 / 1.5, 1 / 5.0]),
                               atol=1e-4, rtol=0)
    policy = ActorCritic(BOX, gym.spaces.Box(-1, 1, (2,)), use_sde=True, use_expln=True, log_std_init=0.5)
    torch.testing.assert_close(policy.sde_std(), torch.full((64, 2), math.log(1.5) + 1), atol=1e-5, rtol=0)


def test_gsde_noise_is_a_function_of_the_state_until_redrawn():
    policy = sde_policy()
    x = torch.randn(4, 3)
    with torch.no_grad():
        policy.reset_sde_noise(4)
        a1, logp1, _ = policy.act(x)
        a2, logp2, _ = policy.act(x)
        torch.testing.assert_close(a1, a2)  # the same matrices and state: the same action (eq. 4)
        dist, _, z = policy.forward_with_latent(x)
        torch.testing.assert_close(a1, dist.mean + torch.einsum("bi,bij->bj", z, policy.sde_weights))
        torch.testing.assert_close(logp1, dist.log_prob(a1))
        policy.reset_sde_noise(4)
        assert not torch.allclose(policy.act(x)[0], a1)
        torch.testing.assert_close(policy.act(x, deterministic=True)[0], dist.mean)
        policy.act(torch.randn(7, 3))  # another batch size: matrices drawn for it
    assert policy.sde_weights.shape == (7, 5, 2)
    policy.sde_sample_freq = 4
    assert [t for t in range(12) if policy.resamples_noise_at(t)] == [0, 4, 8]
    policy.sde_sample_freq = -1
    assert [t for t in range(12) if policy.resamples_noise_at(t)] == [0]


def test_gsde_actions_follow_the_distribution_the_losses_use():
    policy = sde_policy()
    x = torch.randn(1, 3).expand(20_000, 3)  # one state, 20,000 draws of Theta
    with torch.no_grad():
        policy.reset_sde_noise(20_000)
        actions, _, _ = policy.act(x)
        dist = policy.distribution(x[:1])
    torch.testing.assert_close(actions.mean(0), dist.mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(actions.std(0), dist.log_std[0].exp(), atol=0, rtol=0.03)


def test_gsde_std_learns_through_sigma_not_the_features():
    policy = sde_policy()
    x = torch.randn(5, 3)
    dist = policy.distribution(x)
    dist.log_std.sum().backward()  # the spread's gradient reaches sigma only (z detached, SB3's default)
    assert policy.log_std.grad is not None and policy.log_std.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in policy.actor_torso.parameters())


def test_gsde_refused_where_it_cannot_work():
    from ascent.algorithms.ppo import PPOConfig
    from ascent.errors import ConfigError
    with pytest.raises(ConfigError, match="use_sde=True .*needs Box actions"):
        ActorCritic(BOX, gym.spaces.Discrete(3), use_sde=True)
    with pytest.raises(ConfigError, match="squash"):
        ActorCritic(BOX, gym.spaces.Box(-1, 1, (2,)), use_sde=True, squash_actions=True)
    with pytest.raises(ConfigError, match="use_sde=True and squash_actions=True cannot be combined"):
        PPOConfig(use_sde=True, squash_actions=True).validate()
    with pytest.raises(ConfigError, match="sde_sample_freq"):
        PPOConfig(sde_sample_freq=-2).validate()
    assert ActorCritic(BOX, gym.spaces.Box(-1, 1, (2,)), use_sde=True).numpy_actor(np.random.default_rng(0)) is None

"""PPO: objective values against independent computation, the KL rule, and learning."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import distributions as D

import ascent
from ascent.algorithms.ppo import LOSS_TERMS, KLCoefficient, PPOConfig, approx_kl, ppo_loss
from ascent.nets.policies import ActorCritic


def make_minibatch(policy, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    with torch.no_grad():
        dist, value = policy(x)
        actions = dist.sample()
        # old log-probs perturbed so that some ratios fall outside [1-eps, 1+eps]
        old = dist.log_prob(actions) + 0.3 * torch.randn(n, generator=g)
    return {"x": x, "actions": actions, "logprobs": old, "advantages": torch.randn(n, generator=g),
            "returns": torch.randn(n, generator=g), "values": value + 0.1 * torch.randn(n, generator=g)}


def test_clipped_surrogate_value():
    torch.manual_seed(0)
    policy = ActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(3))
    mb = make_minibatch(policy)
    c = PPOConfig(normalize_advantage=False, ent_coef=0.01, vf_coef=0.5)
    loss, terms, log_ratio = ppo_loss(policy, mb, c, clip=0.2, beta=0.0, normalize_advantage=False)
    logits = policy.action_head(policy.actor_torso(mb["x"]))
    ref = D.Categorical(logits=logits)
    value = policy.value_head(policy.critic_torso(mb["x"])).squeeze(-1)
    surrogate = []
    for lp, old, a in zip(ref.log_prob(mb["actions"]).tolist(), mb["logprobs"].tolist(), mb["advantages"].tolist()):
        r = np.exp(lp - old)
        surrogate.append(min(r * a, float(np.clip(r, 0.8, 1.2)) * a))
    policy_loss = -np.mean(surrogate)
    value_loss = ((value - mb["returns"]) ** 2).mean().item()
    entropy = ref.entropy().mean().item()
    t = dict(zip(LOSS_TERMS, terms.tolist()))
    assert t["policy_loss"] == pytest.approx(policy_loss, rel=1e-5)
    assert t["value_loss"] == pytest.approx(value_loss, rel=1e-5)
    assert loss.item() == pytest.approx(policy_loss + 0.5 * value_loss - 0.01 * entropy, rel=1e-5)
    ratios = np.exp(ref.log_prob(mb["actions"]).detach().numpy() - mb["logprobs"].numpy())
    np.testing.assert_allclose(log_ratio.exp().numpy(), ratios, rtol=1e-5)
    assert 0 < np.mean(np.abs(ratios - 1) > 0.2) < 1  # the case exercises both branches of the min
    assert approx_kl(log_ratio).item() == pytest.approx(np.mean((ratios - 1) - np.log(ratios)), rel=1e-4)


def test_kl_penalty_objective_value():
    torch.manual_seed(1)
    policy = ActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2,)), log_std_init=-0.5)
    mb = make_minibatch(policy)
    old_mean = policy.dist_params(mb["x"]).detach() + 0.1
    old_log_std = torch.tensor([-0.4, -0.6])
    old = policy.make_dist(old_mean, old_log_std)
    c = PPOConfig(normalize_advantage=False, kl_penalty=True)
    _, terms, _ = ppo_loss(policy, mb, c, clip=0.2, beta=3.0, old_dist=old, normalize_advantage=False)
    new = D.Normal(policy.dist_params(mb["x"]), policy.log_std.exp())
    kl = D.kl_divergence(D.Normal(old_mean, old_log_std.exp()), new).sum(-1).mean().item()
    ratio = torch.exp(new.log_prob(mb["actions"]).sum(-1) - mb["logprobs"])
    expected = -(ratio * mb["advantages"]).mean().item() + 3.0 * kl
    t = dict(zip(LOSS_TERMS, terms.tolist()))
    assert t["kl"] == pytest.approx(kl, rel=1e-5)
    assert t["policy_loss"] == pytest.approx(expected, rel=1e-5)


def test_kl_coefficient_rule():
    k = KLCoefficient(1.0)
    assert k.adapt(0.001, 0.01) == 0.5  # KL < d_targ / 1.5: halve
    assert k.adapt(0.01, 0.01) == 0.5  # within [d/1.5, 1.5 d]: keep
    assert k.adapt(0.05, 0.01) == 1.0  # KL > 1.5 d_targ: double


def test_ppo_solves_identity_env(identity_env):
    agent = ascent.PPO(identity_env, seed=0, verbose=0, n_envs=4, n_steps=64, batch_size=64, learning_rate=3e-3)
    agent.learn(6_000)
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 19  # of 20


def test_ppo_solves_continuous_identity_env(continuous_identity_env):
    agent = ascent.PPO(continuous_identity_env, seed=0, verbose=0, n_envs=4, n_steps=64, batch_size=64,
                       learning_rate=3e-3)
    agent.learn(12_000)
    assert agent.evaluate(10, env=continuous_identity_env)["mean_return"] > -0.5  # random policy: about -40


@pytest.mark.parametrize("algo", ["PPO", "A2C", "TRPO"])
def test_gsde_solves_continuous_identity_env(continuous_identity_env, algo):
    """gSDE (use_sde) on the on-policy actor-critics: new exploration matrices, one per env, at each
    rollout's start and every sde_sample_freq steps; the task learned as with the plain Gaussian."""
    options = {"PPO": dict(n_steps=64, batch_size=64, learning_rate=3e-3, sde_sample_freq=16),
               "A2C": dict(n_steps=8, learning_rate=3e-3, use_rms_prop=False, sde_sample_freq=4),
               "TRPO": dict(n_steps=64, batch_size=64, sde_sample_freq=16)}[algo]
    # log_std_init=-2, RL-Zoo's with gSDE: sigma sums over the 64 features (measured: A2C at 0 failed)
    agent = getattr(ascent, algo)(continuous_identity_env, seed=0, verbose=0, n_envs=4, use_sde=True,
                                  log_std_init=-2, **options)
    draws, draw = [], agent.policy.reset_sde_noise
    agent.policy.reset_sde_noise = lambda n: (draws.append(n), draw(n))
    agent.learn(12_032)  # 47 rollouts of 64 steps x 4 envs, or 376 of 8 x 4
    rollouts, per_rollout = 12_032 // (4 * options["n_steps"]), options["n_steps"] // options["sde_sample_freq"]
    assert draws == [4] * (rollouts * per_rollout)
    # random policy: about -40; measured on seeds 0-2: -0.04 to -0.23
    assert agent.evaluate(10, env=continuous_identity_env)["mean_return"] > -0.5


def test_kl_penalty_variant_learns_identity(identity_env):
    agent = ascent.PPO(identity_env, seed=0, verbose=0, n_envs=4, n_steps=64, batch_size=64, learning_rate=3e-3,
                       kl_penalty=True)
    agent.learn(6_000)
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 18


def test_target_kl_stops_epochs_early(identity_env):
    agent = ascent.PPO(identity_env, seed=0, verbose=0, n_envs=2, n_steps=64, batch_size=16, n_epochs=10,
                       learning_rate=0.05, target_kl=1e-4)
    seen = []
    agent.learn(128, callbacks=lambda agent, metrics: seen.append(metrics))
    assert seen[0]["updates"] < 10 * 128 / 16


@pytest.mark.slow
def test_ppo_learns_cartpole():
    """The README's promise in small: >= 195 on CartPole-v1 within 50k steps (preset 'cartpole'; at 40k seed 0 evaluated 187.6)."""
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0)
    agent.learn(50_000)
    assert agent.evaluate(10)["mean_return"] >= 195


def test_invalid_hyperparameters():
    with pytest.raises(ascent.ConfigError, match="learning_rate"):
        ascent.PPO("CartPole-v1", learning_rate=0)
    with pytest.raises(ascent.ConfigError, match="did you mean: n_steps"):
        ascent.PPO("CartPole-v1", n_step=3)
    with pytest.raises(ascent.ConfigError, match="gae_lambda"):
        ascent.PPO("CartPole-v1", gae_lambda=1.5)
    with pytest.raises(ascent.ConfigError, match="total_steps"):
        ascent.PPO("CartPole-v1", verbose=0).learn(-5)

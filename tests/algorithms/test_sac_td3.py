"""DDPG, TD3, SAC: the pieces of their math, their contracts (save/load/resume with the replay
buffer, clear errors) and short learning tests."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import ascent
from ascent.nets.distributions import TanhGaussian
from ascent.algorithms.td3 import smoothed
from ascent.nets.q_networks import QEnsemble
from ascent.nets.optim import polyak_update


def test_tanh_gaussian_log_prob_matches_the_change_of_variables_numerically():
    """p_A(a) from the probability of a small interval [a - h, a + h] under the Gaussian of u = atanh(a)."""
    mean, log_std = torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([[-0.4]], dtype=torch.float64)
    dist = TanhGaussian(mean, log_std)
    normal = torch.distributions.Normal(mean, log_std.exp())
    for a in (-0.95, -0.5, 0.0, 0.4, 0.9):
        h = 1e-5
        lo, hi = torch.atanh(torch.tensor(a - h, dtype=torch.float64)), torch.atanh(torch.tensor(a + h, dtype=torch.float64))
        density = (normal.cdf(hi) - normal.cdf(lo)) / (2 * h)
        assert dist.log_prob(torch.tensor([[a]], dtype=torch.float64)).item() == pytest.approx(density.log().item(), abs=1e-4)
    action, logp = dist.sample_with_log_prob()  # the sampled log-prob agrees with log_prob of the sample
    assert logp.item() == pytest.approx(dist.log_prob(action).item(), abs=1e-5)


def test_polyak_update():
    target, source = [torch.zeros(3), torch.ones(2)], [torch.ones(3), torch.full((2,), 3.0)]
    polyak_update(target, source, 0.1)
    assert torch.allclose(target[0], torch.full((3,), 0.1)) and torch.allclose(target[1], torch.full((2,), 1.2))
    polyak_update(target, source, 1.0)  # tau = 1 is a hard copy
    assert torch.equal(target[1], source[1])


def test_target_policy_smoothing_stays_within_its_bounds():
    torch.manual_seed(0)
    mu = torch.tensor([-1.0, -0.9, 0.0, 0.95, 1.0]).repeat(2000, 1)
    a = smoothed(mu, noise_std=5.0, noise_clip=0.5)
    assert a.min() >= -1 and a.max() <= 1
    assert ((a - mu).abs() <= 0.5 + 1e-6).all()
    assert ((a - mu).abs() > 0.49).float().mean() > 0.5  # large noise: mostly at the clip
    assert torch.equal(smoothed(mu, 0.0, 0.5), mu)


def test_q_ensemble_evaluates_independent_critics_and_bf16_stays_close():
    torch.manual_seed(0)
    q = QEnsemble(2, 5, (64, 64))
    obs, act = torch.randn(32, 3), torch.randn(32, 2)
    both = q(obs, act)
    assert both.shape == (2, 32) and not torch.allclose(both[0], both[1])
    for k in range(2):  # critic k alone, as a plain MLP
        h = torch.cat([obs, act], -1)
        for i in range(2):
            h = torch.relu(h @ q.weights[i][k] + q.biases[i][k])
        assert torch.allclose(both[k], (h @ q.weights[2][k] + q.biases[2][k]).squeeze(-1), atol=1e-5)
    assert torch.allclose(q(obs, act, n=1)[0], both[0])
    q.precision = "bf16"  # the hidden layers in bfloat16, the output layer in fp32
    low = q(obs, act)
    assert low.dtype == torch.float32  # Q values leave in fp32
    assert (low - both).abs().max() < 0.02 * both.abs().max() + 1e-3


def filled_sac(**kw):
    agent = ascent.SAC("Pendulum-v1", seed=0, verbose=0, learning_starts=200, batch_size=64, net_arch=(32, 32), **kw)
    agent.learn(300)
    return agent


@pytest.mark.parametrize("target_entropy, direction", [(5.0, 1), (-20.0, -1)])
def test_temperature_moves_toward_the_target_entropy(target_entropy, direction):
    """alpha rises when the policy's entropy is below the target, falls when above (eq. 18)."""
    agent = filled_sac(target_entropy=target_entropy)
    before = agent.temperature.log_alpha.item()
    for _ in range(20):
        agent.update(agent.replay.sample(64))
    assert (agent.temperature.log_alpha.item() - before) * direction > 0


def test_fixed_temperature_stays_fixed():
    agent = filled_sac(ent_coef=0.2)
    assert agent.temperature.log_alpha.item() == pytest.approx(math.log(0.2))
    assert "alpha_optimizer" not in agent.modules()


@pytest.mark.parametrize("algo", ["sac", "td3", "ddpg"])
def test_save_load_resume_with_the_replay_buffer(tmp_path, algo):
    cls = ascent.get_algorithm(algo)
    run = tmp_path / "run"
    agent = cls("Pendulum-v1", seed=1, verbose=0, run_dir=run, learning_starts=100, batch_size=32, net_arch=(16, 16),
                save_replay_buffer=True, checkpoint_every=200)
    agent.learn(600, callbacks=lambda a, m: a.num_steps < 300)  # interrupted at 300 of 600 steps
    assert len(list((run / "checkpoints").glob("last.replay-*.pt"))) == 1 and not list(run.glob("model.replay*"))
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    loaded = cls.load(run / "checkpoints" / "last.pt", verbose=0)
    assert np.array_equal(agent.act(obs), loaded.act(obs))
    assert len(loaded.replay) == len(agent.replay) == 300 and loaded.replay.pos == agent.replay.pos
    assert torch.equal(loaded.replay.obs[:300], agent.replay.obs[:300])
    resumed = cls.resume(run, progress_bar=False, verbose=0)  # continues to 600 with the saved buffer
    assert resumed.num_steps == 600 and len(resumed.replay) == 600
    assert torch.equal(resumed.replay.obs[:300], agent.replay.obs[:300])


@pytest.mark.parametrize("env_id", ["MountainCarContinuous-v0", "LunarLanderContinuous-v3", "BipedalWalker-v3",
                                    "HalfCheetah-v5", "Hopper-v5"])
def test_the_usual_continuous_control_envs_run(env_id):
    """Box2D and MuJoCo come with the project's set-up; each env trains a few steps with its preset."""
    agent = ascent.SAC(env_id, seed=0, verbose=0, learning_starts=50, batch_size=16, net_arch=(16, 16), buffer_size=1000)
    agent.learn(100)
    assert agent.replay.obs.shape[-1] == agent.envs.observation_space.shape[0] and len(agent.replay) == agent.num_steps >= 100


def test_actions_are_rescaled_to_the_env_bounds(continuous_identity_env):
    agent = ascent.TD3(continuous_identity_env, seed=0, verbose=0, learning_starts=10)
    with torch.no_grad():  # saturate the actor: its tanh output is +-1, the env's bounds are +-2
        agent.actor.head.bias.fill_(100.0)
    assert np.allclose(agent.act(np.zeros(1, np.float32)), [2.0])


def test_unsupported_action_spaces_are_refused_clearly():
    with pytest.raises(ascent.EnvError, match="continuous"):
        ascent.TD3("CartPole-v1")
    unbounded = lambda: gym.wrappers.TransformAction(gym.make("Pendulum-v1"), lambda a: a,  # noqa: E731
                                                     gym.spaces.Box(-np.inf, np.inf, (1,), np.float32))
    with pytest.raises(ascent.EnvError, match="unbounded"):
        ascent.TD3(unbounded)
    with pytest.raises(ascent.ConfigError, match="action_noise"):
        ascent.TD3("Pendulum-v1", action_noise="pink")
    with pytest.raises(ascent.ConfigError, match="ent_coef"):
        ascent.SAC("Pendulum-v1", ent_coef="automatic")


@pytest.mark.parametrize("algo", ["sac", "td3", "ddpg"])
def test_learns_the_continuous_identity_env(algo, continuous_identity_env):
    agent = ascent.get_algorithm(algo)(continuous_identity_env, seed=0, verbose=0, learning_starts=200,
                                       net_arch=(64, 64), batch_size=64, learning_rate=3e-3, gamma=0.5)
    agent.learn(1500)
    assert agent.evaluate(10, env=continuous_identity_env)["mean_return"] > -0.5  # random: about -6.7 per episode


@pytest.mark.slow
def test_td3_learns_pendulum():
    agent = ascent.TD3("Pendulum-v1", seed=0, verbose=0, net_arch=(64, 64), learning_starts=1000, preset="pendulum")
    agent.learn(7_000)
    assert agent.evaluate(10)["mean_return"] > -300  # random: about -1200


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_sac_learns_pendulum(precision):
    agent = ascent.SAC("Pendulum-v1", seed=0, verbose=0, learning_rate=1e-3, net_arch=(64, 64), precision=precision)
    agent.learn(6_000)
    assert agent.evaluate(10)["mean_return"] > -300  # random: about -1200


def test_discrete_sac_learns_the_identity_env(identity_env):
    agent = ascent.SAC(identity_env, seed=0, verbose=0, learning_starts=200, net_arch=(64, 64), batch_size=64,
                       learning_rate=3e-3, gamma=0.5)
    assert agent.critic(torch.zeros(4, 3)).shape == (2, 4, 3)  # Q(s, .) for the 3 actions, from both critics
    agent.learn(2000)
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 19  # of 20; random: about 6.7


@pytest.mark.parametrize("algo", ["sac", "td3", "ddpg", "dqn"])
def test_normalize_reward_is_refused_rather_than_ignored(algo):
    env = "CartPole-v1" if algo == "dqn" else "Pendulum-v1"
    with pytest.raises(ascent.ConfigError, match="normalize_reward is not supported by the off-policy algorithms"):
        ascent.get_algorithm(algo)(env, verbose=0, normalize_reward=True)


# ---- SAC with gSDE (use_sde) ---------------------------------------------------------------------------
def test_sac_gsde_actor_against_a_naive_computation():
    from ascent.nets.actors import StateDependentNoiseActor

    torch.manual_seed(0)
    actor = StateDependentNoiseActor(gym.spaces.Box(-1, 1, (3,)), 2, (8, 5), log_std_init=-1.0, clip_mean=0.5)
    with torch.no_grad():
        actor.log_std.add_(0.3 * torch.randn(actor.log_std.shape))
        actor.head.bias.fill_(2.0)  # means clipped to 0.5
    x = torch.randn(4, 3)
    theta = actor.training_noise()
    dist = actor.distribution(x, theta)
    z = actor.torso(x).detach()
    sigma = actor.log_std.detach().exp()
    assert torch.all(dist.normal.mean <= 0.5)
    for b in range(4):
        for j in range(2):
            var = sum(float(z[b, i]) ** 2 * float(sigma[i, j]) ** 2 for i in range(5)) + 1e-6
            assert float(dist.normal.log_std[b, j].detach().exp()) == pytest.approx(var ** 0.5, rel=1e-5)
    action, logp = dist.sample_with_log_prob()
    u = dist.normal.mean + z @ theta  # the sample is tanh(mu + z^T Theta), its log-prob TanhGaussian's
    torch.testing.assert_close(action, torch.tanh(u))
    torch.testing.assert_close(logp, TanhGaussian(dist.normal.mean, dist.normal.log_std).log_prob(torch.tanh(u)),
                               atol=1e-4, rtol=1e-4)
    (action.sum() + logp.sum()).backward()  # sigma learns through the sampled action and the spread; so do the features
    assert actor.log_std.grad.abs().sum() > 0 and actor.torso.layers[0].weight.grad.abs().sum() > 0
    with torch.no_grad():  # acting: each env's own Theta, kept until reset_noise
        actor.reset_noise(4)
        a1, a2 = actor(x), actor(x)
        torch.testing.assert_close(a1, a2)
        actor.reset_noise(4)
        assert not torch.allclose(actor(x), a1)
        torch.testing.assert_close(actor(x, deterministic=True), torch.tanh(dist.normal.mean))


def test_sac_gsde_redraws_each_round_and_every_sde_sample_freq_steps_then_learns(continuous_identity_env):
    agent = ascent.SAC(continuous_identity_env, seed=0, verbose=0, learning_starts=200, net_arch=(64, 64),
                       batch_size=64, learning_rate=3e-3, gamma=0.5, use_sde=True, train_freq=8, sde_sample_freq=3,
                       gradient_steps=-1)
    draws, draw = [], agent.actor.reset_noise
    agent.actor.reset_noise = lambda n: (draws.append(agent.num_steps), draw(n))
    agent.learn(1504)  # 188 rounds of 8 steps: draws at steps 0, 3, 6 of each
    assert draws == [r * 8 + k for r in range(188) for k in (0, 3, 6)]
    assert agent.evaluate(10, env=continuous_identity_env)["mean_return"] > -0.5  # measured on seeds 0-2: -0.04 to -0.11


def test_sac_gsde_refused_where_it_cannot_work(identity_env, tmp_path):
    from ascent.errors import ConfigError

    with pytest.raises(ConfigError, match="use_sde=True \\(gSDE\\) needs Box actions"):
        ascent.SAC(identity_env, verbose=0, use_sde=True)
    with pytest.raises(ConfigError, match="use_sde=True cannot start from init_from"):
        ascent.SAC("Pendulum-v1", verbose=0, use_sde=True, init_from=str(tmp_path))

"""TRPO and NPG: the trust region holds, they learn, and the shared contracts."""

import numpy as np
import pytest

import ascent


def test_trpo_step_respects_the_kl_bound(identity_env):
    seen = []
    agent = ascent.TRPO(identity_env, seed=0, verbose=0, n_envs=2, n_steps=256, target_kl=0.01)
    agent.learn(2048, callbacks=lambda agent, metrics: seen.append(metrics))
    accepted = [m for m in seen if m["step_accepted"]]
    assert accepted and all(m["kl"] <= 0.01 + 1e-9 for m in accepted)
    assert all(m["surrogate_improvement"] > 0 for m in accepted)


def test_trpo_solves_identity_env(identity_env):
    agent = ascent.TRPO(identity_env, seed=0, verbose=0, n_envs=2, n_steps=256, target_kl=0.05)
    agent.learn(8_000)
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 19


def test_npg_takes_the_full_natural_step(identity_env):
    seen = []
    # (delta = 0.05 sometimes overshoots into a policy wrong in one of the 3 states: 9 of 70 seeds;
    # 0.02 never did in 60)
    agent = ascent.NPG(identity_env, seed=0, verbose=0, n_envs=2, n_steps=256, target_kl=0.02)
    agent.learn(8_000, callbacks=lambda agent, metrics: seen.append(metrics))
    assert all(m["step_fraction"] == 1.0 for m in seen)
    # the quadratic model says KL = delta; the sampled KL of the full step stays of that order
    assert np.median([m["kl"] for m in seen]) < 0.02 * 3
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 19


@pytest.mark.slow
def test_trpo_learns_cartpole():
    agent = ascent.TRPO("CartPole-v1", seed=0, verbose=0)
    agent.learn(50_000)
    assert agent.evaluate(10)["mean_return"] >= 195


def test_trpo_rejects_shared_torso_and_round_trips(tmp_path):
    with pytest.raises(ascent.ConfigError, match="share_torso"):
        ascent.TRPO("CartPole-v1", share_torso=True)
    agent = ascent.TRPO("Pendulum-v1", seed=0, verbose=0, n_steps=128, n_envs=1)
    agent.learn(256)
    agent.save(tmp_path / "t.pt")
    loaded = ascent.load(tmp_path / "t.pt", verbose=0)
    assert isinstance(loaded, ascent.TRPO)
    obs = np.random.default_rng(0).uniform(-1, 1, (8, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))

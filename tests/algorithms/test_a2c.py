"""A2C: the n-step advantage, learning, and the shared contracts (save/load)."""

import numpy as np
import pytest
import torch

import ascent


def test_a2c_solves_identity_env(identity_env):
    agent = ascent.A2C(identity_env, seed=0, verbose=0, n_envs=8, learning_rate=3e-3)
    agent.learn(8_000)
    assert agent.evaluate(10, env=identity_env)["mean_return"] >= 19


def test_a2c_with_adam_on_continuous_identity(continuous_identity_env):
    agent = ascent.A2C(continuous_identity_env, seed=0, verbose=0, n_envs=8, use_rms_prop=False, learning_rate=3e-3)
    agent.learn(20_000)
    assert agent.evaluate(10, env=continuous_identity_env)["mean_return"] > -2.0  # random: about -40


@pytest.mark.slow
def test_a2c_learns_cartpole():
    agent = ascent.A2C("CartPole-v1", seed=0, verbose=0)
    agent.learn(60_000)
    assert agent.evaluate(10)["mean_return"] >= 195


def test_a2c_save_load_identical_actions(tmp_path):
    agent = ascent.A2C("CartPole-v1", seed=0, verbose=0)
    agent.learn(400)
    agent.save(tmp_path / "a2c.pt")
    loaded = ascent.load(tmp_path / "a2c.pt", verbose=0)
    assert isinstance(loaded, ascent.A2C)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    sa, sb = agent.step.optimizer.state_dict()["state"], loaded.step.optimizer.state_dict()["state"]
    for k in sa:
        torch.testing.assert_close(sa[k]["square_avg"], sb[k]["square_avg"])

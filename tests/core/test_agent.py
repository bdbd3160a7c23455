"""The Agent contract's own rules: a ready VectorEnv sets n_envs, the base class is not loadable."""

import gymnasium as gym
import pytest

import ascent
from ascent.errors import ConfigError


def vector(env_id: str, n: int) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([lambda: gym.make(env_id)] * n)


@pytest.mark.parametrize("algo, env_id, kw", [
    ("ppo", "CartPole-v1", {"n_steps": 16}),  # PPO's default n_envs is 8: storage must be sized by the env's 4
    ("a2c", "CartPole-v1", {}),
    ("sac", "Pendulum-v1", {"learning_starts": 8, "batch_size": 8, "net_arch": (8,)}),
    ("dqn", "CartPole-v1", {"learning_starts": 8, "batch_size": 8, "net_arch": (8,)}),
])
def test_a_ready_vector_env_sets_n_envs(algo, env_id, kw):
    agent = ascent.get_algorithm(algo)(vector(env_id, 3), seed=0, verbose=0, **kw)
    assert agent.config.n_envs == 3
    agent.learn(96)
    assert agent.num_steps >= 96 and agent.num_steps % 3 == 0
    if agent.replay is not None:
        assert len(agent.replay) == agent.num_steps


def test_an_explicit_n_envs_that_conflicts_with_the_vector_env_is_refused():
    with pytest.raises(ConfigError, match=r"n_envs=2 conflicts with the given VectorEnv's 4 envs"):
        ascent.PPO(vector("CartPole-v1", 4), verbose=0, n_envs=2)
    assert ascent.PPO(vector("CartPole-v1", 4), verbose=0, n_envs=4).config.n_envs == 4


def test_the_base_agent_points_to_ascent_load(tmp_path):
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, n_envs=2, n_steps=16, batch_size=32)
    agent.save(tmp_path / "m.pt")
    with pytest.raises(ConfigError, match=r"ascent\.load"):
        ascent.Agent.load(tmp_path / "m.pt")
    assert type(ascent.load(tmp_path / "m.pt", verbose=0)) is ascent.PPO

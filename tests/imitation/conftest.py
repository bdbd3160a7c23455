import gymnasium as gym
import numpy as np
import pytest

from ascent.imitation.datasets import record_episodes, write_dataset


def cartpole_controller(obs: np.ndarray) -> np.ndarray:
    """A hand-written CartPole expert (push towards where the pole falls): 500 on every seed tried."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


@pytest.fixture(scope="session")
def expert_controller():
    return cartpole_controller


@pytest.fixture(scope="session")
def cartpole_demos(tmp_path_factory):
    """10 episodes of the controller on CartPole-v1 (each 500 steps, truncated), as a Minari dataset."""
    env = gym.make("CartPole-v1")
    return str(write_dataset(tmp_path_factory.mktemp("demos") / "cartpole", record_episodes(cartpole_controller, env, 10, 0),
                             env, "cartpole/controller-v0", "controller"))


@pytest.fixture(scope="session")
def random_cartpole_demos(tmp_path_factory):
    """10 episodes of uniformly random actions on CartPole-v1 (~22 steps each, terminated)."""
    env = gym.make("CartPole-v1")
    env.action_space.seed(0)
    return str(write_dataset(tmp_path_factory.mktemp("demos") / "random", record_episodes(
        lambda obs: np.array([env.action_space.sample()]), env, 10, 0), env, "cartpole/random-v0", "random"))


@pytest.fixture(scope="session")
def pendulum_demos(tmp_path_factory):
    """4 episodes of a proportional controller on Pendulum-v1 (it cannot swing up: about -1000; actions
    at the bounds often, which the squashed policies must take)."""
    env = gym.make("Pendulum-v1")

    def controller(obs):
        cos, sin, omega = obs[:, 0], obs[:, 1], obs[:, 2]
        return np.clip(-2.0 * np.arctan2(sin, cos) - 0.5 * omega, -2.0, 2.0)[:, None].astype(np.float32)
    return str(write_dataset(tmp_path_factory.mktemp("demos") / "pendulum", record_episodes(controller, env, 4, 0),
                             env, "pendulum/controller-v0", "controller"))


@pytest.fixture(scope="session")
def ppo_cartpole_expert(tmp_path_factory):
    """A run directory of a PPO expert on CartPole-v1 (its preset, 60k steps: 500 on evaluation)."""
    from ascent.algorithms.ppo import PPO

    run = tmp_path_factory.mktemp("expert") / "ppo"
    agent = PPO("CartPole-v1", seed=0, run_dir=run, verbose=0).learn(60_000, progress_bar=False)
    assert agent.evaluate(5)["mean_return"] >= 475, "the expert itself did not learn"
    return str(run)


@pytest.fixture(scope="session")
def weak_expert(tmp_path_factory):
    """A barely trained PPO run on CartPole-v1: an expert whose labels are easy to tell apart."""
    from ascent.algorithms.ppo import PPO

    run = tmp_path_factory.mktemp("expert") / "weak"
    PPO("CartPole-v1", seed=0, run_dir=run, verbose=0, n_envs=2, n_steps=32, batch_size=32, n_epochs=1).learn(
        64, progress_bar=False)
    return str(run)

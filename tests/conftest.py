import os

import gymnasium as gym
import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)


class IdentityEnv(gym.Env):
    """Observe a random one-hot state out of n; reward 1 for the action equal to it. Any working
    policy-gradient method reaches ~episode_len return in a few thousand steps; a sign error doesn't."""

    def __init__(self, n: int = 3, episode_len: int = 20):
        self.n, self.episode_len = n, episode_len
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = gym.spaces.Discrete(n)

    def _obs(self):
        o = np.zeros(self.n, np.float32)
        o[self.state] = 1.0
        return o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.state = 0, int(self.np_random.integers(self.n))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.state)
        self.t += 1
        self.state = int(self.np_random.integers(self.n))
        return self._obs(), reward, False, self.t >= self.episode_len, {}


class ContinuousIdentityEnv(gym.Env):
    """Observe x in [-1, 1]; reward -(a - x)^2; a Box action policy must learn a = x."""

    def __init__(self, episode_len: int = 20):
        self.episode_len = episode_len
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.x = 0, self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        reward = -float(np.square(np.asarray(action) - self.x).sum())
        self.t += 1
        self.x = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.x.copy(), reward, False, self.t >= self.episode_len, {}


@pytest.fixture
def identity_env():
    return IdentityEnv


@pytest.fixture
def continuous_identity_env():
    return ContinuousIdentityEnv

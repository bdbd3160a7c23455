"""The VecEnv contract: autoreset modes, truncation bootstrap, episode statistics, env arguments."""

import gymnasium as gym
import numpy as np
import pytest

from ascent.envs.vector import VecEnv, make_vec_env
from ascent.errors import EnvError, TrainingDiverged


def test_same_step_truncation_gives_final_obs(identity_env):
    vec = VecEnv(make_vec_env(lambda: identity_env(episode_len=3), n_envs=2))
    assert not vec.next_step_autoreset
    vec.reset(seed=0)
    steps = [vec.step(np.zeros(2, dtype=np.int64)) for _ in range(3)]
    assert steps[0].bootstrap is None and steps[1].bootstrap is None
    last = steps[2]
    assert last.truncated.all() and not last.terminated.any()
    assert last.bootstrap.all() and last.final_obs.shape == (2, 3)
    assert [length for _, length in last.episodes] == [3, 3]
    assert last.valid.all()


def test_next_step_autoreset_masks_the_reset_step():
    vec = VecEnv(make_vec_env("CartPole-v1", n_envs=4, vectorization="vector_entry_point"))
    assert vec.next_step_autoreset
    vec.reset(seed=0)
    lengths, invalid_after_done = [], 0
    prev_done = np.zeros(4, bool)
    for _ in range(300):
        step = vec.step(np.ones(4, dtype=np.int64))  # always push right: episodes end fast
        assert (step.valid == ~prev_done).all()
        invalid_after_done += int((~step.valid).sum())
        lengths += [n for _, n in step.episodes]
        prev_done = step.terminated | step.truncated
    assert invalid_after_done > 0
    assert lengths and all(5 <= n <= 20 for n in lengths)  # reset steps are not counted in lengths


def test_make_vec_env_accepts_id_env_factory_vector(identity_env):
    assert make_vec_env("CartPole-v1", 3, "sync").num_envs == 3
    assert make_vec_env(identity_env(), 1).num_envs == 1
    assert make_vec_env(identity_env, 2).num_envs == 2
    v = gym.make_vec("CartPole-v1", 2)
    assert make_vec_env(v) is v
    with pytest.raises(EnvError, match="n_envs"):
        make_vec_env(identity_env(), 2)


def test_unknown_env_suggests_close_match():
    with pytest.raises(EnvError, match="CartPole-v1"):
        make_vec_env("CartPol-v1")


class NaNEnv(gym.Env):
    """Steps return a NaN observation (`bad="obs"`) or a NaN reward (`bad="reward"`)."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, bad: str = "obs"):
        self.bad = bad

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        obs = np.full(2, np.nan if self.bad == "obs" else 0.0, np.float32)
        return obs, float("nan") if self.bad == "reward" else 0.0, False, False, {}


@pytest.mark.parametrize("bad, words", [("obs", "NaN or inf observation"),
                                        ("reward", "NaN or inf reward .* the env's reward function is at fault")])
def test_nan_observation_or_reward_is_reported_as_the_envs(bad, words):
    vec = VecEnv(make_vec_env(lambda: NaNEnv(bad), 1))
    vec.reset(seed=0)
    with pytest.raises(TrainingDiverged, match=words):
        vec.step(np.zeros(1, dtype=np.int64))


def test_async_vectorization_steps():
    vec = VecEnv(make_vec_env("CartPole-v1", n_envs=2, vectorization="async"))
    try:
        vec.reset(seed=0)
        step = vec.step(np.zeros(2, dtype=np.int64))
        assert step.obs.shape == (2, 4) and step.valid.all()
    finally:
        vec.close()

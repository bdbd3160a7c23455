"""The Agent contract's own rules: a ready VectorEnv sets n_envs, the base class is not loadable; what
can be filmed (classic control, MuJoCo headless, Atari at the game's speed) and the clear errors."""

import ctypes.util
import os

import gymnasium as gym
import pytest

import ascent
from ascent.core.agent import check_renders
from ascent.errors import ConfigError, EnvError


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


# ---- filming: Agent.video_env (ascent eval --video, video_every) -----------------------------------------
def test_envs_that_are_not_gymnasium_envs_are_not_filmed(tmp_path):
    with pytest.raises(EnvError, match="soccer is not a Gymnasium env and is not filmed"):
        ascent.PPO.video_env("soccer", tmp_path, 1)
    pytest.importorskip("pyspiel")
    with pytest.raises(EnvError, match="tic_tac_toe is not a Gymnasium env"):
        ascent.PPO.video_env("tic_tac_toe", tmp_path, 1)
    agent = ascent.get_algorithm("alphazero")("tic_tac_toe", seed=0, verbose=0)
    with pytest.raises(EnvError, match="board games, which are not filmed"):
        agent.evaluate(1, video_dir=tmp_path)


def test_an_env_that_cannot_render_is_refused_with_the_fix():
    def broken():
        raise RuntimeError("no OpenGL context")

    with pytest.raises(EnvError, match=r"cannot film InvertedPendulum-v5: rendering failed \(RuntimeError: no OpenGL "
                                       r"context\); MuJoCo renders headless through MUJOCO_GL=egl"):
        check_renders(broken, "InvertedPendulum-v5")
    with pytest.raises(EnvError, match="cannot film CartPole-v1: it does not render RGB frames"):
        check_renders(lambda: gym.make("CartPole-v1"), "CartPole-v1")  # (no render_mode: render() gives None)


def test_atari_is_filmed_at_the_games_speed(tmp_path):
    pytest.importorskip("ale_py")
    pytest.importorskip("moviepy")
    env = ascent.PPO.video_env("ALE/Pong-v5", tmp_path / "videos", 1)()
    try:
        assert env.frames_per_sec == 15  # one frame per agent step of 4 emulator frames at 60 Hz
        env.reset(seed=0)
        assert env.render().shape == (210, 160, 3)
    finally:
        env.close()


@pytest.mark.skipif(ctypes.util.find_library("EGL") is None, reason="no libEGL to render MuJoCo headless")
def test_mujoco_is_filmed_headless_by_default(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    pytest.importorskip("moviepy")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MUJOCO_GL", "unset")  # (recorded, so that the test's end unsets what video_env sets)
    monkeypatch.delenv("MUJOCO_GL")
    agent = ascent.PPO("InvertedPendulum-v5", seed=0, verbose=0, n_envs=1, n_steps=16, batch_size=16)
    result = agent.evaluate(1, video_dir=tmp_path / "videos")
    assert os.environ["MUJOCO_GL"] == "egl"
    clip = tmp_path / "videos" / "rl-video-episode-0.mp4"
    assert clip.stat().st_size > 1000 and result["episodes"] == 1

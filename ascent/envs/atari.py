"""The standard Atari pipeline (Mnih et al. 2015; Machado et al. 2018) on ale-py's environments.

  raw score record -> noop reset (up to 30) + frame skip 4 with a max over the last two frames
  + 84x84 grayscale (Gymnasium's AtariPreprocessing) -> [training: episodic life] -> fire reset
  -> [training: reward sign] -> frame stack of 4 (Gymnasium's FrameStackObservation): uint8 (4, 84, 84)

Episodic life makes a lost life end the episode for learning (`terminated`), while the emulator
is only reset at game over; reward clipping keeps the TD targets of every game on one scale. Both
apply to training envs only: evaluation plays whole games with the real score. The score that
ascent reports, in training logs and evaluation alike, is the raw game score of whole games,
recorded innermost by RecordEpisodeStatistics; the env's metadata says so (RAW_SCORE_IN_INFO), and
VecEnv then reads the score from the info dict instead of summing the clipped rewards it sees.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ascent.errors import EnvError

FRAME_STACK = 4
FRAME_SKIP = 4
# A filmed Atari episode has one frame per agent step: played at the emulator's 60 Hz over the frame skip,
# it runs at the game's own speed.
ATARI_VIDEO_FPS = 60 // FRAME_SKIP
RAW_SCORE_IN_INFO = "ascent_raw_score_in_info"  # metadata key: episodes are reported in info["episode"]
FRAME_STACKED = "ascent_frame_stacked"  # metadata key: observations are FrameStackObservation's stacks


def register_atari() -> None:
    """Register ale-py's env ids with Gymnasium (an EnvError naming the fix if it is missing).
    Called only when an Atari id is asked for, so that importing ascent never needs ale-py."""
    try:
        import ale_py
    except ImportError:
        raise EnvError("Atari envs need ale-py (its ROMs come with it): pip install 'ascent-rl[atari]'") from None
    gym.register_envs(ale_py)


def is_atari_id(env_id: object) -> bool:
    """ALE/Name-v5 ids and the classic NameNoFrameskip-v4 ones: the ids whose emulator can be made
    to step one frame at a time, as the pipeline's own frame skip needs. (Name-v4 skips 2 to 4
    frames at random inside the emulator and is left as it is.)"""
    return isinstance(env_id, str) and (env_id.startswith("ALE/") or "NoFrameskip" in env_id)


class FireReset(gym.Wrapper):
    """Press FIRE after a reset, for games that wait for it to start (Pong, Breakout): without it an
    untrained agent may never start the game."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.fire = env.unwrapped.get_action_meanings().index("FIRE")

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self.fire)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info


class EpisodicLife(gym.Wrapper):
    """A lost life ends the episode (`terminated`) for learning; the game itself goes on, and reset()
    only resets the emulator at game over (otherwise it takes one no-op step)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:  # lives == 0 is the game over itself, already terminated
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


def make_atari_env(env_id: str, training: bool = True, render_mode: str | None = None,
                   repeat_action_probability: float | None = None) -> gym.Env:
    """One Atari env with the standard pipeline; `training` adds episodic life and reward sign.

    repeat_action_probability: sticky actions (Machado et al. 2018); None keeps the id's own
    (0.25 for ALE/*-v5, 0 for *NoFrameskip-v4)."""
    register_atari()
    kwargs = {"render_mode": render_mode} if render_mode else {}
    if env_id.startswith("ALE/"):
        kwargs["frameskip"] = 1  # AtariPreprocessing skips frames itself (and max-pools the last two)
    if repeat_action_probability is not None:
        kwargs["repeat_action_probability"] = repeat_action_probability
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as err:
        raise EnvError(f"cannot create {env_id!r}: {err}") from None
    env = gym.wrappers.RecordEpisodeStatistics(env)  # the raw score of whole games
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=FRAME_SKIP, screen_size=84, grayscale_obs=True)
    if training:
        env = EpisodicLife(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)  # outside EpisodicLife: FIRE again after every lost life
    if training:
        env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
    env = gym.wrappers.FrameStackObservation(env, FRAME_STACK)  # padding: the reset frame repeated
    env.metadata = {**env.metadata, RAW_SCORE_IN_INFO: True, FRAME_STACKED: True}
    return env

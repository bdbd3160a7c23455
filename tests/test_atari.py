"""The Atari pipeline (wrapper shapes, episodic life, fire reset, reward clipping, raw scores) and
the frame-stack replay buffer against a plain buffer holding the full stacks."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import ascent
from ascent.atari import EpisodicLife, is_atari_id, make_atari_env
from ascent.envs import VecEnv, make_vec_env
from ascent.frame_replay import FrameReplayBuffer, make_replay_buffer
from ascent.prioritized_replay import PrioritizedReplay
from ascent.replay import ReplayBuffer

pytest.importorskip("ale_py")


def find_wrapper(env, cls):
    while not isinstance(env, cls):
        env = env.env
    return env


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "PongNoFrameskip-v4"])
def test_pipeline_shapes_and_dtypes(env_id):
    assert is_atari_id(env_id) and not is_atari_id("CartPole-v1")
    env = make_atari_env(env_id, training=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.shape == (4, 84, 84)
    assert (obs == obs[-1]).all()  # an episode's first stack repeats the reset frame
    obs, reward, *_ = env.step(0)
    assert obs.shape == (4, 84, 84)
    env.close()


def test_breakout_fire_reset_episodic_life_and_reward_sign():
    env = make_atari_env("ALE/Breakout-v5", training=True)
    env.reset(seed=0)
    life = find_wrapper(env, EpisodicLife)
    ale = env.unwrapped.ale
    assert ale.lives() == 5
    rewards, lives_at_end, frames_before = [], None, None
    for _ in range(3000):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        if terminated:  # the first lost life ends the training episode
            lives_at_end = ale.lives()
            frames_before = ale.getEpisodeFrameNumber()
            break
    assert lives_at_end == 4 and not life.game_over
    env.reset()  # not a real reset: the game goes on (a no-op and FIRE)
    assert ale.lives() == 4 and ale.getEpisodeFrameNumber() > frames_before
    assert set(rewards) <= {-1.0, 0.0, 1.0}
    env.close()


def test_evaluation_env_plays_whole_games_with_raw_rewards():
    def wrappers(env):
        while isinstance(env, gym.Wrapper):
            yield type(env)
            env = env.env

    training = set(wrappers(make_atari_env("ALE/Breakout-v5", training=True)))
    evaluation = set(wrappers(make_atari_env("ALE/Breakout-v5", training=False)))
    assert training - evaluation == {EpisodicLife, gym.wrappers.TransformReward}


def test_reported_score_is_the_raw_score_of_whole_games():
    vec = VecEnv(make_vec_env("ALE/Pong-v5", 1), score_from_info=True)
    vec.reset(seed=0)
    clipped, episodes = 0.0, []
    while not episodes:  # a random Pong game: about 800 agent steps, scored -21 or close
        step = vec.step(np.array([vec.action_space.sample()]))
        clipped += float(step.reward[0])
        episodes = step.episodes
    score, frames = episodes[0]
    assert score == clipped and -21 <= score <= -15  # Pong's points are already +-1
    assert frames > 3000  # whole-game length in emulator frames (4 per agent step)


# ---- frame-stack replay -------------------------------------------------------------------------------
def frame_stream(steps, n_envs, seed=0, shape=(6, 5)):
    """Observations built exactly as FrameStackObservation builds them (reset frame repeated), with
    episodes ending at random, alternately terminated and truncated, and the next observation after
    an end being the final one (bootstrap) while the env restarts."""
    rng = np.random.default_rng(seed)
    frame_id = iter(range(1, 10**9))
    new_frame = lambda: np.full(shape, next(frame_id) % 251, np.uint8) + rng.integers(0, 3, shape, dtype=np.uint8)  # noqa: E731
    stacks = [np.stack([new_frame()] * 4) for _ in range(n_envs)]
    for t in range(steps):
        obs = np.stack(stacks)
        next_obs, terminated, truncated = [], np.zeros(n_envs, bool), np.zeros(n_envs, bool)
        for e in range(n_envs):
            f = new_frame()
            nxt = np.concatenate([stacks[e][1:], f[None]])
            next_obs.append(nxt)
            if rng.random() < 0.15:
                (terminated if rng.random() < 0.5 else truncated)[e] = True
                stacks[e] = np.stack([new_frame()] * 4)  # reset
            else:
                stacks[e] = nxt
        yield obs, rng.integers(0, 4, n_envs), rng.normal(size=n_envs), np.stack(next_obs), terminated, truncated


SPACE = gym.spaces.Box(0, 255, (4, 6, 5), np.uint8)
ACTIONS = gym.spaces.Discrete(4)


@pytest.mark.parametrize("n_step", [1, 3])
def test_frame_buffer_matches_a_buffer_of_full_stacks(n_step):
    frames = make_replay_buffer(60, 3, SPACE, ACTIONS)  # 20 rows: wraps around below
    plain = ReplayBuffer(60, 3, SPACE, ACTIONS)
    assert isinstance(frames, FrameReplayBuffer)
    for i, (obs, act, rew, nxt, term, trunc) in enumerate(frame_stream(47, 3)):
        frames.add(obs, act, rew, nxt, term, trunc)
        plain.add(obs, act, rew, nxt, term, trunc)
        if i in (10, 46):  # before and after wrap-around
            row, env = frames.sample_index(400)
            a, b = frames.batch(row, env, n_step, 0.9), plain.batch(row, env, n_step, 0.9)
            for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "discount"):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None and y is None) or torch.equal(x, y), name
    assert len(frames) == (20 - 4) * 3  # the 4 rows after the write position lost their history
    assert frames.frames.nbytes * 4 == plain.obs.nbytes  # one frame per step instead of 4 (and no next_obs)


def test_rows_with_overwritten_history_are_never_sampled():
    buffer = FrameReplayBuffer(30, 1, SPACE, ACTIONS)  # 30 rows
    for obs, act, rew, nxt, term, trunc in frame_stream(75, 1, seed=3):
        buffer.add(obs, act, rew, nxt, term, trunc)
    row, _ = buffer.sample_index(5000)
    assert set(row.tolist()) == {(buffer.pos + 4 + i) % 30 for i in range(26)}
    per = PrioritizedReplay(FrameReplayBuffer(30, 1, SPACE, ACTIONS), alpha=1.0)
    for obs, act, rew, nxt, term, trunc in frame_stream(75, 1, seed=3):
        per.add(obs, act, rew, nxt, term, trunc)
    row, *_ = per.sample_index(5000, beta=0.4, rng=np.random.default_rng(0))
    assert set(row.tolist()) <= {(per.buffer.pos + 4 + i) % 30 for i in range(26)}


def test_frame_buffer_save_load_round_trip_and_resume_after_a_reset():
    buffer = FrameReplayBuffer(60, 2, SPACE, ACTIONS)
    stream = list(frame_stream(25, 2, seed=1))
    for item in stream:
        buffer.add(*item)
    copy = FrameReplayBuffer(60, 2, SPACE, ACTIONS)
    copy.load_state_dict(buffer.state_dict())
    row, env = buffer.sample_index(200)
    a, b = buffer.batch(row, env, 3, 0.99), copy.batch(row, env, 3, 0.99)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs) and torch.equal(a.rewards, b.rewards)
    # A resumed run resets its envs: the newest transitions are cut (truncated), the stacks stay exact.
    plain = ReplayBuffer(60, 2, SPACE, ACTIONS)
    for item in stream:
        plain.add(*item)
    copy.cut_episodes()
    plain.cut_episodes()
    for item in frame_stream(10, 2, seed=2):
        copy.add(*item)
        plain.add(*item)
    row, env = copy.sample_index(300)
    assert torch.equal(copy.batch(row, env).obs, plain.batch(row, env).obs)
    assert torch.equal(copy.batch(row, env).next_obs, plain.batch(row, env).next_obs)
    with pytest.raises(ascent.ConfigError, match="cut_episodes"):  # a reset the buffer was not told of
        copy.add(*next(frame_stream(1, 2, seed=5)))


def test_dqn_runs_on_pong_with_the_frame_buffer():
    agent = ascent.DQN("ALE/Pong-v5", seed=0, verbose=0, n_envs=2, buffer_size=400, learning_starts=64,
                       batch_size=8, train_freq=4, n_step=3, prioritized_replay=True)
    assert agent.preset == "atari" and isinstance(agent.replay.buffer, FrameReplayBuffer)
    agent.learn(160)
    assert agent.act(np.zeros((4, 84, 84), np.uint8)) in range(6)

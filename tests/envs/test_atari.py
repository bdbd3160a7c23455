"""The Atari pipeline (wrapper shapes, episodic life, fire reset, reward clipping, raw scores), the
Nature CNN for image observations, and the frame-stack replay buffer against a plain buffer holding
the full stacks."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import ascent
from ascent.envs.atari import RAW_SCORE_IN_INFO, EpisodicLife, FireReset, is_atari_id, make_atari_env, register_atari
from ascent.envs.vector import VecEnv, make_vec_env
from ascent.core.evaluation import evaluate_policy
from ascent.buffers.frame_replay import FrameReplayBuffer, make_replay_buffer
from ascent.nets.layers import NatureCNN, is_image_space
from ascent.buffers.prioritized import PrioritizedReplay
from ascent.buffers.replay import ReplayBuffer

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
    assert env.metadata[RAW_SCORE_IN_INFO] and isinstance(find_wrapper(env, FireReset), FireReset)
    env.close()


def test_ale_py_is_imported_only_for_atari_ids(monkeypatch):
    code = "import sys, ascent; ascent.PPO('CartPole-v1', verbose=0); assert 'ale_py' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "ale_py", None)  # as if it were not installed
    with pytest.raises(ascent.EnvError, match=r"pip install 'ascent-rl\[atari\]'"):
        register_atari()


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


def raw_reward_log(env):
    """The rewards of every emulator frame, logged beneath the whole pipeline."""
    inner = find_wrapper(env, gym.wrappers.RecordEpisodeStatistics).env
    log, step = [], inner.step

    def logged(action):
        out = step(action)
        log.append(out[1])
        return out

    inner.step = logged
    return log


def test_reported_score_is_the_raw_score_of_whole_games():
    # Space Invaders: 3 lives, 5 to 30 points an invader, so clipped and raw rewards differ.
    env = make_atari_env("ALE/SpaceInvaders-v5", training=True)
    raw = raw_reward_log(env)
    vec = VecEnv(gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP))
    assert vec.score_from_info  # from the env's metadata, whoever made the vector env
    vec.reset(seed=0)
    steps, lives_lost, clipped, episodes = 0, 0, 0.0, []
    while not episodes:
        step = vec.step(np.array([vec.action_space.sample()]))
        steps += 1
        lives_lost += int(step.terminated[0])
        clipped += float(step.reward[0])
        episodes = step.episodes
        assert not episodes or step.episode_envs == [0]
    score, length = episodes[0]
    assert lives_lost == 3  # two lost lives and the game over ended training episodes; one score reported
    assert score == sum(raw) > clipped > 0  # the game's score, every life, unclipped
    assert length == steps  # agent steps of the whole game


def test_evaluation_plays_whole_games_with_the_raw_score():
    rng = np.random.default_rng(0)
    result = evaluate_policy(lambda obs: rng.integers(0, 6, len(obs)), "ALE/SpaceInvaders-v5", episodes=2, seed=0)
    assert result["episodes"] == 2
    assert all(r > 0 and r % 5 == 0 for r in result["returns"]) and max(result["returns"]) > 30  # unclipped
    assert min(result["lengths"]) > 200  # three lives (one lasts about 100 random steps)


# ---- image observations --------------------------------------------------------------------------------
def test_image_spaces_and_nature_cnn():
    box = lambda shape, dtype=np.uint8: gym.spaces.Box(0, 255, shape, dtype)  # noqa: E731
    assert is_image_space(box((4, 84, 84))) and is_image_space(box((3, 64, 48)))
    assert not is_image_space(box((84, 84, 3)))  # channel-last
    assert not is_image_space(box((3, 7, 7)))  # too small for the convolutions: an MLP reads it
    assert not is_image_space(box((4, 84, 84), np.float32)) and not is_image_space(box((84, 84)))
    cnn = NatureCNN(4)
    assert cnn.dim == 512 and cnn.linear.in_features == 64 * 7 * 7
    pixels = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    out = cnn(pixels)
    assert out.shape == (2, 512) and torch.equal(out, cnn(pixels.float()))  # scaled by 1/255 inside


def test_ppo_trains_the_cnn_on_pong():
    agent = ascent.PPO("ALE/Pong-v5", n_envs=2, n_steps=16, batch_size=32, seed=0, verbose=0)
    assert agent.policy.encoder.dim == 512 and agent.storage.x.dtype == torch.uint8  # pixels, not features
    before = [p.detach().clone() for p in agent.policy.encoder.cnn.parameters()]
    agent.learn(64)
    assert all(not torch.equal(b, p) for b, p in zip(before, agent.policy.encoder.cnn.parameters()))
    assert agent.act(np.zeros((4, 84, 84), np.uint8)) in range(6)
    with pytest.raises(ascent.ConfigError, match="PPO or A2C"):  # separate actor and critic steps
        ascent.TRPO("ALE/Pong-v5", n_envs=1, verbose=0)


# ---- frame-stack replay -------------------------------------------------------------------------------
def frame_stream(steps, n_envs, seed=0, shape=(6, 5), next_step=False):
    """Observations built exactly as FrameStackObservation builds them (reset frame repeated), with
    episodes ending at random, alternately terminated and truncated, and the next observation after
    an end being the final one (bootstrap). Same-step autoreset: the env restarts at once; next-step
    autoreset: the step after an end only resets (valid=False, acting on the final observation)."""
    rng = np.random.default_rng(seed)
    frame_id = iter(range(1, 10**9))
    new_frame = lambda: np.full(shape, next(frame_id) % 251, np.uint8) + rng.integers(0, 3, shape, dtype=np.uint8)  # noqa: E731
    stacks = [np.stack([new_frame()] * 4) for _ in range(n_envs)]
    resetting = np.zeros(n_envs, bool)
    for t in range(steps):
        obs = np.stack(stacks)
        next_obs, terminated, truncated = [], np.zeros(n_envs, bool), np.zeros(n_envs, bool)
        valid = ~resetting
        for e in range(n_envs):
            if resetting[e]:
                stacks[e] = np.stack([new_frame()] * 4)
                next_obs.append(stacks[e])
                resetting[e] = False
                continue
            f = new_frame()
            nxt = np.concatenate([stacks[e][1:], f[None]])
            next_obs.append(nxt)
            if rng.random() < 0.15:
                (terminated if rng.random() < 0.5 else truncated)[e] = True
                if next_step:
                    stacks[e], resetting[e] = nxt, True
                else:
                    stacks[e] = np.stack([new_frame()] * 4)  # reset
            else:
                stacks[e] = nxt
        rewards = np.where(valid, rng.normal(size=n_envs), 0.0)
        yield obs, rng.integers(0, 4, n_envs), rewards, np.stack(next_obs), terminated, truncated, valid


SPACE = gym.spaces.Box(0, 255, (4, 6, 5), np.uint8)
ACTIONS = gym.spaces.Discrete(4)


@pytest.mark.parametrize("next_step", [False, True])
@pytest.mark.parametrize("n_step", [1, 3])
def test_frame_buffer_matches_a_buffer_of_full_stacks(n_step, next_step):
    frames = make_replay_buffer(60, 3, SPACE, ACTIONS)  # 20 rows: wraps around below
    plain = ReplayBuffer(60, 3, SPACE, ACTIONS)
    assert isinstance(frames, FrameReplayBuffer)
    for i, (obs, act, rew, nxt, term, trunc, valid) in enumerate(frame_stream(47, 3, next_step=next_step)):
        frames.add(obs, act, rew, nxt, term, trunc, valid if next_step else None)
        plain.add(obs, act, rew, nxt, term, trunc, valid if next_step else None)
        if i in (10, 46):  # before and after wrap-around
            row, env = frames.sample_index(400)
            a, b = frames.batch(row, env, n_step, 0.9), plain.batch(row, env, n_step, 0.9)
            for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "discount"):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None and y is None) or torch.equal(x, y), name
            assert frames.valid[row, env].all()  # autoreset steps are never sampled
            assert not next_step or not frames.valid.all()
    assert len(frames) == (20 - 4) * 3  # the 4 rows after the write position lost their history
    assert frames.frames.nbytes * 4 == plain.obs.nbytes  # one frame per step instead of 4 (and no next_obs)


def test_frame_buffer_on_the_real_pipeline():
    # Breakout's lost lives end training episodes often: resets, padding and final frames as
    # Gymnasium's FrameStackObservation makes them, through the same path DQN stores steps by.
    from ascent.algorithms.common.offpolicy import step_into_buffer

    vec = VecEnv(make_vec_env("ALE/Breakout-v5", 2))
    frames = make_replay_buffer(400, 2, vec.observation_space, vec.action_space)
    plain = ReplayBuffer(400, 2, vec.observation_space, vec.action_space)
    both = type("Both", (), {"add": lambda self, *step: (frames.add(*step), plain.add(*step))})()
    obs, ends = vec.reset(seed=0), 0
    for _ in range(260):  # 200 rows: wraps around
        obs, done = step_into_buffer(vec, both, obs, *[vec.env.action_space.sample()] * 2, lambda _: None)
        ends += int(done.sum())
    assert ends >= 4 and frames.full
    row, env = frames.sample_index(256)
    a, b = frames.batch(row, env, 3, 0.99), plain.batch(row, env, 3, 0.99)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "discount"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.terminated.any()  # lost lives among the sampled n-step transitions


def test_make_replay_buffer_keeps_other_observations_in_a_plain_buffer():
    box = gym.spaces.Box(-1, 1, (3,), np.float32)
    assert type(make_replay_buffer(10, 1, box, ACTIONS)) is ReplayBuffer
    assert make_replay_buffer(10, 1, box, ACTIONS, optimize_memory_usage=True).lean
    rgb = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)  # channel-last images are not frame stacks
    assert type(make_replay_buffer(10, 1, rgb, ACTIONS)) is ReplayBuffer


def test_rows_with_overwritten_history_are_never_sampled():
    buffer = FrameReplayBuffer(30, 1, SPACE, ACTIONS)  # 30 rows
    for obs, act, rew, nxt, term, trunc, _ in frame_stream(75, 1, seed=3):
        buffer.add(obs, act, rew, nxt, term, trunc)
    row, _ = buffer.sample_index(5000)
    assert set(row.tolist()) == {(buffer.pos + 4 + i) % 30 for i in range(26)}
    per = PrioritizedReplay(FrameReplayBuffer(30, 1, SPACE, ACTIONS), alpha=1.0)
    for obs, act, rew, nxt, term, trunc, _ in frame_stream(75, 1, seed=3):
        per.add(obs, act, rew, nxt, term, trunc)
    row, *_ = per.sample_index(5000, beta=0.4, rng=np.random.default_rng(0))
    assert set(row.tolist()) <= {(per.buffer.pos + 4 + i) % 30 for i in range(26)}


def test_frame_buffer_save_load_round_trip_and_resume_after_a_reset():
    buffer = FrameReplayBuffer(60, 2, SPACE, ACTIONS)
    stream = [item[:-1] for item in frame_stream(25, 2, seed=1)]
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
    for *item, _ in frame_stream(10, 2, seed=2):
        copy.add(*item)
        plain.add(*item)
    row, env = copy.sample_index(300)
    assert torch.equal(copy.batch(row, env).obs, plain.batch(row, env).obs)
    assert torch.equal(copy.batch(row, env).next_obs, plain.batch(row, env).next_obs)
    with pytest.raises(ascent.ConfigError, match="cut_episodes"):  # a reset the buffer was not told of
        copy.add(*next(frame_stream(1, 2, seed=5))[:-1])


def test_dqn_runs_on_pong_with_the_frame_buffer():
    agent = ascent.DQN("ALE/Pong-v5", seed=0, verbose=0, n_envs=2, buffer_size=400, learning_starts=64,
                       batch_size=8, train_freq=4, n_step=3, prioritized_replay=True)
    assert agent.preset == "atari" and isinstance(agent.replay.buffer, FrameReplayBuffer)
    agent.learn(160)
    assert agent.act(np.zeros((4, 84, 84), np.uint8)) in range(6)

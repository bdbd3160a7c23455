"""MBPO: the rollout-length schedule, branched rollouts that stop at predicted terminations, the
known termination functions against the MuJoCo envs, the real/model mix of SAC's batches, the model
buffer's retention, the refusal of discrete actions, and a short learning run on Pendulum."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.errors import AscentError, ConfigError
from ascent.model_based.ensemble import Transition
from ascent.model_based.mbpo import KNOWN_TERMINATIONS, MBPO, rollout_length

SMALL = dict(net_arch=(16, 16), model_net_arch=(16, 16), n_members=3, n_elites=2, batch_size=32, model_train_freq=50,
             gradient_steps=1, rollout_batch_size=64, learning_starts=10**6, epoch_length=100, buffer_size=1000, verbose=0)


def random_steps_agent(**overrides) -> MBPO:
    """An MBPO agent on Pendulum whose real buffer holds 50 random steps (no model fitted yet)."""
    agent = MBPO("Pendulum-v1", seed=0, **{**SMALL, **overrides})
    agent.learn(50, progress_bar=False)
    assert len(agent.replay) == 50 and not agent.counters.fitted
    return agent


def stub_model(agent: MBPO, monkeypatch, reward=None, learned_end=None) -> None:
    """Replace the ensemble's step by known dynamics: theta_dot (obs[2]) grows by 1 every step; the
    reward is theta_dot before the step (or `reward`); `learned_end(next_obs)` as its termination."""
    shift = torch.tensor([0.0, 0.0, 1.0])

    def step(obs, action, member, generator=None):
        assert member.shape == (len(obs),) and set(member.tolist()) <= set(agent.ensemble.elites.tolist())
        nxt = obs + shift
        r = obs[:, 2].clone() if reward is None else torch.full((len(obs),), float(reward))
        return Transition(nxt, r, None if learned_end is None else learned_end(nxt))

    monkeypatch.setattr(agent.ensemble, "step", step)


# ---- the rollout length -------------------------------------------------------------------------------
def test_rollout_length_follows_the_papers_schedule():
    hopper = (20, 100, 1, 15)  # k: 1 until epoch 20, then linear to 15 at epoch 100, floored
    assert [rollout_length(hopper, e) for e in (0, 19, 20, 21, 25, 60, 99, 100, 500)] == [1, 1, 1, 1, 1, 8, 14, 15, 15]
    # 25: 1 + 5/80 * 14 = 1.875 -> 1; 60: 1 + 40/80 * 14 = 8; 99: 1 + 79/80 * 14 = 14.825 -> 14
    assert [rollout_length((1, 15, 1, 1), e) for e in (0, 7, 100)] == [1, 1, 1]
    assert [rollout_length((0, 4, 5, 1), e) for e in (0, 1, 2, 4, 9)] == [5, 4, 3, 1, 1]  # (a shrinking one)
    with pytest.raises(ConfigError, match="rollout_schedule"):
        MBPO("Pendulum-v1", rollout_schedule=(10, 10, 1, 5), verbose=0)


# ---- branched rollouts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["known", "learned"])
def test_branched_rollouts_stop_at_predicted_terminations(where, monkeypatch):
    """theta_dot grows by 1 a step and an episode ends where it passes 4: a branch from theta_dot c
    ends at its step t with c + t + 1 > 4, stored terminal, and has no transition after it."""
    agent = random_steps_agent(rollout_schedule=(0, 1, 6, 6))  # k = 6
    agent.replay.obs[:50, 0, 2] = torch.linspace(-6.0, 6.0, 50)  # start states of every length 1..6
    end = lambda next_obs: next_obs[..., 2] > 4.0  # noqa: E731
    if where == "known":
        stub_model(agent, monkeypatch)
        agent.terminated_fn = end
    else:
        stub_model(agent, monkeypatch, learned_end=end)
        agent.terminated_fn = None
    metrics = agent.branched_rollouts()
    r, k, M = agent.model_replay, 6, 64
    rows = torch.arange(r.pos - k, r.pos) % r.rows  # this rollout's rows, in order
    valid, terminated, truncated = r.valid[rows], r.terminated[rows], r.truncated[rows]  # (k, M)
    start = r.obs[rows[0], :, 2]  # theta_dot of each branch's start state
    lasts = []
    for b in range(M):
        ends = [t for t in range(k) if start[b] + t + 1 > 4.0]
        last = ends[0] if ends else k - 1
        lasts.append(last + 1)
        assert valid[:last + 1, b].all() and not valid[last + 1:, b].any()  # nothing continues past a terminal
        assert terminated[:last, b].sum() == 0 and terminated[last, b] == float(bool(ends))
        assert truncated[last, b] == float(not ends)  # a branch cut by k is truncated: SAC bootstraps
        for t in range(last):  # each step continues from the last one's predicted state
            assert torch.equal(r.next_obs[rows[t], b], r.obs[rows[t + 1], b])
    assert set(lasts) == set(range(1, k + 1))
    assert metrics["rollout_mean_steps"] == pytest.approx(np.mean(lasts))
    assert metrics["model_buffer_size"] == sum(lasts)
    batch = agent.sample_model(2000)  # sampling never returns a dead branch's row
    assert torch.equal(batch.rewards, batch.obs[:, 2]) and torch.equal(batch.terminated, (batch.next_obs[:, 2] > 4).float())


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5", "Ant-v5"])
def test_known_terminations_agree_with_the_env(env_id):
    pytest.importorskip("mujoco")
    env = gym.make(env_id)
    fn, ended = KNOWN_TERMINATIONS[env_id], 0
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(2000):  # random actions, the env's own terminated flag against the function's
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        predicted = bool(fn(torch.as_tensor(obs)))
        assert predicted == terminated, f"{env_id}: predicted {predicted}, the env {terminated} at {obs[:2]}"
        ended += terminated
        if terminated or truncated:
            env.reset()
    assert ended > 0 or env_id == "Ant-v5"  # (random Hoppers and Walkers fall within 2000 steps; Ants rarely flip)


# ---- SAC's batches and the model buffer ------------------------------------------------------------------
@pytest.mark.parametrize("real_ratio", [0.05, 0.5, 1.0])
def test_sac_batches_mix_real_and_model_transitions_by_real_ratio(real_ratio, monkeypatch):
    agent = random_steps_agent(real_ratio=real_ratio, batch_size=256)
    stub_model(agent, monkeypatch, reward=-1000.0)  # model transitions: reward -1000; Pendulum's are >= -16.3
    agent.counters.fitted = True
    agent.branched_rollouts()
    batch = agent.mixed_batch()
    n_real = int(256 * real_ratio)
    assert len(batch.rewards) == 256
    assert torch.equal(batch.rewards > -100, torch.arange(256) < n_real)  # int(B real_ratio) real ones, first
    seen = []  # SAC's own update, given the mixed batches: gradient_steps of them per env step
    monkeypatch.setattr(agent, "update", lambda b: seen.append(int((b.rewards > -100).sum())) or {"critic_loss": 0.0})
    monkeypatch.setattr(agent, "fit_model", lambda: {})
    agent.config = dataclasses.replace(agent.config, learning_starts=0, gradient_steps=3)
    agent.train_iteration()
    assert seen == [n_real] * (3 * 50)


def test_model_buffer_keeps_model_retain_epochs_of_rollouts(monkeypatch):
    """Epochs of 100 steps and a rollout every 50: 2 rollouts an epoch. With model_retain_epochs=1
    and k=2 the newest 2 rollouts (4 rows) are sampled; when k grows to 4 the buffer holds 2 rollouts
    of 4 steps, the older short ones kept until they are pushed out (the paper's reallocation)."""
    agent = random_steps_agent(rollout_schedule=(1, 2, 2, 4), rollout_batch_size=8, learning_starts=0)
    agent.counters.fitted = True
    assert agent.model_replay.rows == 1 * 2 * 4  # room for the longest k
    rows_sampled = [2, 4, 4, 4, 8, 8]
    for i, (steps, k) in enumerate([(0, 2), (50, 2), (100, 2), (150, 2), (200, 4), (250, 4)]):
        stub_model(agent, monkeypatch, reward=i)
        agent.num_steps = steps  # epoch = steps // 100: k = 2 in epochs 0-1, 4 from epoch 2
        metrics = agent.branched_rollouts()
        assert metrics["rollout_length"] == k
        drawn = set(agent.sample_model(3000).rewards.tolist())
        kept = {0: {0}, 1: {0, 1}, 2: {1, 2}, 3: {2, 3}, 4: {2, 3, 4}, 5: {4, 5}}[i]
        assert drawn == set(map(float, kept)), i
        assert metrics["model_buffer_size"] == 8 * rows_sampled[i]


# ---- errors, metrics, learning --------------------------------------------------------------------------
def test_discrete_actions_are_refused_naming_the_space():
    with pytest.raises(AscentError, match=r"Discrete\(2\).*sac.*dqn"):
        MBPO("CartPole-v1", verbose=0)
    with pytest.raises(ConfigError, match="termination"):
        MBPO("Pendulum-v1", termination="known", verbose=0)


def test_an_iteration_logs_the_model_the_rollouts_and_sac():
    agent = MBPO("Pendulum-v1", seed=0, **{**SMALL, "learning_starts": 50})
    rows = []
    agent.learn(250, progress_bar=False, callbacks=lambda a, m: rows.append(m) or True)
    assert {"model_mse_1step", "model_mse_kstep", "reward_mse", "model_train_nll", "model_holdout_mse",
            "rollout_length", "model_buffer_size", "critic_loss", "actor_loss", "alpha"} <= set(rows[-1])
    assert "episode_return_100" in rows[-1] and agent.num_steps == 250


# SAC at 10 updates an env step on 64 x 64 nets, a 5 x (64, 64, 64) ensemble, 10k rollouts: the
# preset's algorithm at a quarter of its cost. Measured at 2500 env steps (10-episode evaluation,
# seeds 0, 1, 2): -150, -295, -670, each about 85 s of one CPU core; a random policy scores about -1200.
FAST_PENDULUM = dict(learning_starts=500, gradient_steps=10, net_arch=(64, 64), learning_rate=1e-3,
                     rollout_batch_size=10_000, model_net_arch=(64, 64, 64), n_members=5, n_elites=3, patience=20,
                     model_max_epochs=100)


def test_learns_pendulum():
    agent = MBPO("Pendulum-v1", seed=0, verbose=0, **FAST_PENDULUM)
    agent.learn(2500, progress_bar=False)
    assert agent.evaluate(10)["mean_return"] > -800

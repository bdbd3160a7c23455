"""IPPO, IDQN and MAPPO on a team's rows (ascent/multiagent/independent.py, mappo.py): the rows' layout
against a hand-built one, env steps counted per copy of the game, MAPPO's critic receiving the global
state while its actor does not, value normalization against the running statistics, the numpy
actor equal to torch's, team evaluation, short learning runs, and bad input."""

import numpy as np
import pytest
import torch

from ascent.envs.multiagent import AgentRowsVecEnv, MultiAgentVecEnv, make_parallel_env, team_rows
from ascent.errors import EnvError
from ascent.multiagent.independent import IDQN, IPPO
from ascent.multiagent.mappo import MAPPO
from ascent.nets.normalize import merge_moments

SPREAD = "mpe2:simple_spread_v3"
SMALL_PPO = dict(n_envs=2, n_steps=8, batch_size=16, n_epochs=2, net_arch=(16,))


def test_team_rows_puts_each_agents_observation_its_id_and_the_state_in_one_row():
    obs = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)  # 2 copies, 3 agents, 2 features
    state = np.array([[10.0, 11.0], [20.0, 21.0]], np.float32)
    rows = team_rows(obs, state)
    assert rows.shape == (6, 2 + 3 + 2)
    np.testing.assert_array_equal(rows[4], [8, 9, 0, 1, 0, 20, 21])  # copy 1, agent 1
    np.testing.assert_array_equal(rows[2], [4, 5, 0, 0, 1, 10, 11])  # copy 0, agent 2
    np.testing.assert_array_equal(team_rows(obs, None), rows[:, :5])


def test_rows_env_steps_every_copy_once_and_ends_all_rows_of_a_copy_together():
    env = AgentRowsVecEnv("two_step", n_copies=3)
    assert (env.num_envs, env.env_steps_per_step, env.n_agents) == (6, 3, 2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 3 + 2)  # one-hot state of the game, one-hot agent id
    _, reward, term, trunc, info = env.step(np.array([1, 0, 0, 0, 1, 1]))  # agent 0 of copies 0 and 2 picks 2B
    assert not term.any() and not trunc.any() and reward.tolist() == [0.0] * 6
    _, reward, term, _, info = env.step(np.array([1, 1, 1, 1, 0, 1]))
    # 2B then (B, B): 8; 2A: 7 whatever is played; 2B then (A, B): 1; every row gets its team's reward
    assert reward.tolist() == [8.0, 8.0, 7.0, 7.0, 1.0, 1.0] and term.all()
    assert info["_final_obs"].all() and info["final_obs"][0].shape == (5,)
    assert [r.tolist() for r, _ in env.pop_ended()] == [[8.0, 8.0], [7.0, 7.0], [1.0, 1.0]] and env.pop_ended() == []


def test_ippo_counts_env_steps_of_the_game_and_stores_a_row_per_agent():
    agent = IPPO("two_step", seed=0, verbose=0, **SMALL_PPO)
    agent.start_episodes()
    metrics = agent.train_iteration()
    assert agent.num_steps == 8 * 2  # n_steps x copies, not x rows
    assert agent.storage.rewards.shape[:2] == (8, 2 * 2)
    assert {"team_return", "return_agent_0", "return_agent_1"} <= set(metrics)


def test_mappo_critic_sees_the_global_state_and_the_actor_only_its_agents_view():
    agent = MAPPO(SPREAD, seed=0, verbose=0, **SMALL_PPO)
    team = MultiAgentVecEnv(lambda: make_parallel_env(SPREAD), 2)
    obs, state = team.reset(seed=0)
    assert agent.envs.observation_space.shape == (team.obs_dim + 3 + state.shape[1],)
    assert agent.policy.actor_dim == team.obs_dim + 3
    x = torch.as_tensor(team_rows(obs, state))
    moved_state, moved_view = x.clone(), x.clone()
    moved_state[:, agent.policy.actor_dim:] += 1.0
    moved_view[:, 0] += 1.0
    with torch.no_grad():
        logits, value = agent.policy.dist_params(x), agent.policy.value(x)
        assert torch.equal(agent.policy.dist_params(moved_state), logits)  # decentralized actor
        assert not torch.allclose(agent.policy.value(moved_state), value)  # centralized critic
        assert not torch.allclose(agent.policy.dist_params(moved_view), logits)
    ippo = IPPO(SPREAD, seed=0, verbose=0, **SMALL_PPO)
    assert ippo.envs.observation_space.shape == (team.obs_dim + 3,) and ippo.policy.actor_dim is None


def test_value_normalization_tracks_the_returns_and_maps_the_critic_back():
    agent = MAPPO("two_step", seed=0, verbose=0, **SMALL_PPO)
    assert agent.config.normalize_value and agent.policy.value_norm is not None
    returns = []
    update = agent.update

    def spy(batch):
        returns.append(batch["returns"].double().clone())
        return update(batch)

    agent.update = spy
    agent.start_episodes()
    for _ in range(3):
        agent.train_iteration()
    mean, var, count = torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64), torch.tensor(1e-4, dtype=torch.float64)
    for r in returns:  # (the returns of each rollout, in the returns' own scale)
        mean, var, count = merge_moments(mean, var, count, r.mean(), r.var(unbiased=False), r.numel())
    norm = agent.policy.value_norm
    torch.testing.assert_close(norm.mean, mean)
    torch.testing.assert_close(norm.var, var)
    x = torch.rand(5, agent.envs.observation_space.shape[0])
    with torch.no_grad():
        expected = agent.policy.critic(x) * (var + norm.eps).sqrt().float() + mean.float()
        torch.testing.assert_close(agent.policy.value(x), expected)
        _, _, acted_value = agent.policy.act(x)
        torch.testing.assert_close(acted_value, expected)
    _, _, numpy_value = agent.policy.numpy_actor(np.random.default_rng(0))(x.numpy())
    np.testing.assert_allclose(numpy_value, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_team_evaluation_plays_whole_episodes_of_every_agent():
    agent = MAPPO("two_step", seed=0, verbose=0, **SMALL_PPO)
    result = agent.evaluate(episodes=4)
    assert result["episodes"] == 4 and result["lengths"] == [2] * 4
    assert set(result["metrics"]) == {"eval_return_agent_0", "eval_return_agent_1"}
    assert result["mean_return"] in (0.0, 1.0, 7.0, 8.0)  # greedy: the same joint play every episode
    with pytest.raises(EnvError, match="video"):
        agent.evaluate(episodes=1, video_dir="videos")


@pytest.mark.parametrize("cls", [IPPO, MAPPO, IDQN])
def test_a_single_agent_env_is_refused_with_its_spaces(cls):
    with pytest.raises(EnvError, match=r"CartPole-v1 \(observations Box"):
        cls("CartPole-v1", seed=0, verbose=0)


def test_agents_with_different_action_spaces_are_refused():
    with pytest.raises(EnvError, match="mismatched agent spaces"):
        IPPO("mpe2:simple_world_comm_v3", seed=0, verbose=0)  # (its leader also speaks: 20 actions, the others 5)


@pytest.mark.slow
@pytest.mark.parametrize("cls,kwargs", [(IPPO, dict(n_envs=8, n_steps=16, batch_size=64, learning_rate=3e-3)),
                                        (MAPPO, dict(n_envs=8, n_steps=16, batch_size=64, learning_rate=3e-3)),
                                        (IDQN, dict(learning_starts=200, exploration_fraction=0.5, train_freq=1,
                                                    target_update_interval=100, learning_rate=1e-3))])
def test_team_learners_find_the_two_step_games_seven(cls, kwargs):
    """Independent learners (and MAPPO, whose critic does not change what each actor can learn) reach the safe 7 of the two-step game (the optimum 8 needs coordination:
    QMIX's test). Random play scores 4.75 on average; greedy joint play scores 0, 1, 7 or 8."""
    agent = cls("two_step", seed=0, verbose=0, net_arch=(32,), **kwargs)
    agent.learn(4000, progress_bar=False)
    assert agent.evaluate(episodes=4)["mean_return"] >= 7.0


@pytest.mark.slow
def test_mappo_learns_to_spread_better_than_random():
    """simple_spread_v3 (3 agents, 25 steps): random play scores -26.8 +- 0.8 (100 episodes, team return
    per agent); 24k env steps of MAPPO (16 copies, 200-row minibatches, step size 1e-3) take it above
    (-21.7 on seed 0)."""
    rng = np.random.default_rng(0)
    from ascent.envs.multiagent import evaluate_team

    random_return = evaluate_team(SPREAD, 50, 10_000, lambda o, s: rng.integers(5, size=o.shape[:2]))["mean_return"]
    agent = MAPPO(SPREAD, seed=0, verbose=0, n_envs=16, batch_size=200, learning_rate=1e-3)
    agent.learn(24_000, progress_bar=False)
    assert agent.evaluate(episodes=50)["mean_return"] > random_return + 3.0


def test_mpe_states_are_taken_from_the_observations_and_equal_the_envs_own():
    """mpe2's state() is its agents' observations concatenated: MultiAgentVecEnv builds it from the
    step's observations instead of observing every agent again; it must equal state(), ends included."""
    team = MultiAgentVecEnv(lambda: make_parallel_env(SPREAD + "(max_cycles=5)"), 2)
    assert not team.has_state
    _, state = team.reset(seed=0)
    np.testing.assert_array_equal(state, np.stack([env.state() for env in team.envs]))
    rng = np.random.default_rng(0)
    for _ in range(12):  # (two restarts)
        out = team.step(rng.integers(5, size=(2, 3)))
        np.testing.assert_array_equal(out["state"], np.stack([env.state() for env in team.envs]))

"""Tabular Q-learning, SARSA and expected SARSA: the update rules by hand on a one-step env, value
iteration against a hand-solved MDP, and learning checked against exact solutions of the envs."""

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import ascent
from ascent.cli import main as cli_main
from ascent.errors import ConfigError, EnvError
from ascent.theory.tabular_planning import (TabularModel, expected_return, greedy, value_iteration)


# ---- value iteration and exact policy evaluation ----------------------------------------------------


# ---- the update rules by hand on a one-step env ------------------------------------------------------
class OneStep(gym.Env):
    """From state 0 any action gives reward 1 and state 1, then ends as `mode` says."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, mode: str, reward: float = 1.0):
        self.mode, self.reward = mode, reward

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, self.reward, self.mode == "terminate", self.mode == "truncate", {}


def one_step_agent(cls, mode, n_envs=1, env=None, eps=0.5, **kw):
    agent = cls(env or functools.partial(OneStep, mode), seed=0, verbose=0, n_envs=n_envs, learning_rate=0.5,
                gamma=0.9, exploration_initial_eps=eps, exploration_final_eps=eps, **kw)
    agent.table.q[0] = -7.0  # the reset state: a wrong bootstrap from it would show
    agent.table.q[1] = agent.table.q.new_tensor([2.0, 4.0])
    return agent


@pytest.mark.parametrize("cls, kw, mode, target", [
    (ascent.QLearning, {}, "terminate", 1.0),                          # no bootstrap
    (ascent.QLearning, {}, "truncate", 1 + 0.9 * 4.0),                 # max_a Q(final obs, a)
    (ascent.SARSA, {}, "terminate", 1.0),
    (ascent.SARSA, {}, "truncate", 1 + 0.9 * (0.5 * 3.0 + 0.5 * 4.0)),  # no next action: the eps-greedy expectation
    (ascent.SARSA, {"expected": True}, "continue", 1 + 0.9 * 3.5),
])
def test_one_update_by_hand(cls, kw, mode, target):
    agent = one_step_agent(cls, mode, **kw)
    agent.learn(1)
    q = agent.q_table()
    changed = np.flatnonzero(q[0] != -7.0)
    assert len(changed) == 1
    assert q[0, changed[0]] == pytest.approx(-7.0 + 0.5 * (target + 7.0))
    np.testing.assert_array_equal(q[1], [2.0, 4.0])


def test_sarsa_bootstraps_from_the_next_action_taken():
    agent = one_step_agent(ascent.SARSA, "continue")
    agent.learn(1)
    a_next = int(agent.counters.next_action[0])  # drawn in s' before the update, and the action taken next
    q = agent.q_table()
    assert q[0].max() == pytest.approx(-7.0 + 0.5 * (1 + 0.9 * [2.0, 4.0][a_next] + 7.0))


def test_next_step_autoreset_skips_the_reset_step():
    vec = gym.vector.SyncVectorEnv([functools.partial(OneStep, "truncate")], autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = one_step_agent(ascent.QLearning, "truncate", env=vec)
    agent.learn(2)  # the truncating step, then the reset step whose action is ignored
    q = agent.q_table()
    assert sorted(q[0]) == pytest.approx([-7.0, -7.0 + 0.5 * (1 + 0.9 * 4.0 + 7.0)])
    np.testing.assert_array_equal(q[1], [2.0, 4.0])


def test_vector_envs_move_a_repeated_pair_by_the_mean_error():
    rewards = iter(range(6))  # env i pays reward i
    env = lambda: OneStep("terminate", float(next(rewards)))  # noqa: E731
    agent = one_step_agent(ascent.QLearning, "terminate", n_envs=6, env=env, eps=0.0)
    agent.table.q[0, 1] = -100.0  # all six envs take action 0
    agent.learn(6)
    assert agent.q_table()[0, 0] == pytest.approx(-7.0 + 0.5 * (np.mean(range(6)) + 7.0))


def test_exploration_breaks_greedy_ties_at_random():
    agent = ascent.QLearning("FrozenLake-v1", seed=0, verbose=0)  # a table of zeros: all tied
    assert set(agent.explore(np.zeros(200, dtype=np.int64), eps=0.0).tolist()) == {0, 1, 2, 3}


# ---- learning on the toy-text envs ------------------------------------------------------------------
def test_qlearning_reaches_the_optimal_success_rate_on_frozenlake():
    model = TabularModel.from_env("FrozenLake-v1")
    v, _, pi = value_iteration(model, gamma=0.99)
    agent = ascent.QLearning("FrozenLake-v1", seed=0, verbose=0)  # the preset: 8 envs, lin_0.1
    agent.learn(100_000)
    q = agent.q_table()
    assert expected_return(model, greedy(q)) >= expected_return(model, pi) - 0.02
    # Q near Q* where the optimal policy goes at least once per episode on average.
    visits, d = np.zeros(16), model.start.copy()
    c_pi = model.cont[np.arange(16), pi]
    for _ in range(100):
        visits += d
        d = d @ c_pi
    often = visits >= 1.0
    assert often.sum() >= 3
    np.testing.assert_allclose(q.max(1)[often], v[often], atol=0.05)  # seeds 0-6: at most 0.035


def cliff_return(agent) -> float:
    """The greedy policy's return on CliffWalking, exactly, then by a rollout (the env is deterministic
    and has no time limit: the rollout runs only when the exact value shows the policy ends)."""
    exact = expected_return(TabularModel.from_env("CliffWalking-v1"), greedy(agent.q_table()), horizon=1000)
    assert exact > -1000, "the greedy policy never reaches the goal"
    assert agent.evaluate(1)["mean_return"] == exact
    return exact


def test_qlearning_walks_the_cliff_edge_and_sarsa_keeps_away():
    model = TabularModel.from_env("CliffWalking-v1")
    _, _, best = value_iteration(model, gamma=1.0)
    optimal = expected_return(model, best, horizon=1000)  # -13
    q_agent = ascent.QLearning("CliffWalking-v1", seed=0, verbose=0)  # S&B 6.6: eps = 0.1, gamma = 1
    q_agent.learn(20_000)
    assert cliff_return(q_agent) == optimal
    s_agent = ascent.SARSA("CliffWalking-v1", seed=0, verbose=0)
    s_agent.learn(20_000)
    assert optimal - 4 <= cliff_return(s_agent) <= optimal - 2  # one or two rows up: -15 or -17


def test_expected_sarsa_converges_to_the_best_eps_greedy_policy():
    model = TabularModel.from_env("CliffWalking-v1")
    v_eps, _, pi_eps = value_iteration(model, gamma=1.0, eps=0.1)  # its fixed point at constant eps = 0.1
    agent = ascent.SARSA("CliffWalking-v1", seed=0, verbose=0, expected=True)
    agent.learn(50_000)
    assert cliff_return(agent) == expected_return(model, pi_eps, horizon=1000)  # -15
    start = int(np.argmax(model.start))
    q = agent.q_table()
    learned = 0.1 * q[start].mean() + 0.9 * q[start].max()  # V_eps(s) = eps mean_a Q + (1 - eps) max_a Q
    assert learned == pytest.approx(v_eps[start], abs=1.0)  # -20.7


# ---- contracts ---------------------------------------------------------------------------------------
def test_save_load_gives_the_same_table_and_actions(tmp_path):
    agent = ascent.SARSA("FrozenLake-v1", seed=0, verbose=0)
    agent.learn(4_000)
    agent.save(tmp_path / "sarsa.pt")
    loaded = ascent.load(tmp_path / "sarsa.pt", verbose=0)
    assert isinstance(loaded, ascent.SARSA)
    np.testing.assert_array_equal(agent.q_table(), loaded.q_table())
    states = np.arange(16)
    np.testing.assert_array_equal(agent.act(states), loaded.act(states))
    loaded.learn(800)  # and it keeps learning from there
    assert loaded.num_steps == agent.num_steps + 800


def test_same_seed_same_table():
    a, b = (ascent.QLearning("FrozenLake-v1", seed=3, verbose=0).learn(3_000) for _ in range(2))
    np.testing.assert_array_equal(a.q_table(), b.q_table())


def test_greedy_ties_go_to_the_lowest_action():
    agent = ascent.QLearning("FrozenLake-v1", seed=0, verbose=0)
    agent.table.q[5] = agent.table.q.new_tensor([0.0, 1.0, 1.0, 0.5])
    assert agent.act(5) == 1 and (agent.act(np.full(10, 5)) == 1).all()


class BoxActions(gym.Env):
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))


@pytest.mark.parametrize("env, words", [("CartPole-v1", ["Discrete observation", "ppo"]),
                                        ("Blackjack-v1", ["Discrete observation", "ravel_multi_index"]),
                                        (BoxActions, ["Discrete action", "sac"])])
def test_unsupported_spaces_say_what_to_use(env, words):
    with pytest.raises(EnvError) as err:
        ascent.QLearning(env, verbose=0)
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("override", [{"learning_rate": 0.0}, {"learning_rate": 1.5}, {"learning_rate": "lin_2"},
                                      {"exploration_final_eps": 1.5}, {"exploration_fraction": -0.1},
                                      {"normalize_obs": True}, {"gamma": 1.1}])
def test_invalid_hyperparameters(override):
    with pytest.raises(ConfigError):
        ascent.SARSA("FrozenLake-v1", verbose=0, **override)


def test_cli_table(tmp_path, capsys):
    run = tmp_path / "run"
    ascent.QLearning("FrozenLake-v1", seed=0, verbose=0, run_dir=run).learn(2_000)
    assert cli_main(["table", str(run)]) == 0
    out = capsys.readouterr().out
    assert "greedy policy" in out and "optimal policy at gamma=0.99: 0.740" in out
    assert (run / "q_table.png").exists()

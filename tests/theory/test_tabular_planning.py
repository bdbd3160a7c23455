"""Exact tabular planning: value iteration against a hand-solved MDP and FrozenLake's known optimum,
and the policy grid and Q heat-maps."""


import numpy as np

from ascent.core.evaluation import evaluate_policy
from ascent.theory.tabular_planning import (TabularModel, evaluate_policy_exact, expected_return, plot_q_table,
                                     policy_grid, value_iteration)


def two_state_mdp() -> TabularModel:
    """s0: a0 -> r 1, stay; a1 -> r 0, go to s1.  s1: a0 -> r 2, stay; a1 -> r 0, terminate.
    At gamma 0.9: V*(s1) = 2 / 0.1 = 20, V*(s0) = max(1 / 0.1, 0.9 * 20) = 18."""
    reward = np.array([[1.0, 0.0], [2.0, 0.0]])
    cont = np.zeros((2, 2, 2))
    cont[0, 0, 0] = cont[0, 1, 1] = cont[1, 0, 1] = 1.0  # s1, a1 terminates: no continuation
    return TabularModel(reward, cont, start=np.array([1.0, 0.0]))


# ---- value iteration and exact policy evaluation ----------------------------------------------------


def test_value_iteration_solves_the_two_state_mdp_by_hand():
    v, q, pi = value_iteration(two_state_mdp(), gamma=0.9)
    np.testing.assert_allclose(v, [18.0, 20.0], atol=1e-8)
    np.testing.assert_allclose(q, [[1 + 0.9 * 18, 18.0], [20.0, 0.0]], atol=1e-8)
    np.testing.assert_array_equal(pi, [1, 0])
    m = two_state_mdp()
    np.testing.assert_allclose(evaluate_policy_exact(m, np.array([0, 1]), 0.9), [10.0, 0.0])
    # Two steps of [a1, a0] from s0: 0, then 2 discounted once.
    np.testing.assert_allclose(evaluate_policy_exact(m, pi, 0.9, horizon=2), [0.9 * 2, 2 + 0.9 * 2])
    # A stochastic policy (half a0, half a1 in s0; a0 in s1) solves its own linear system.
    half = np.array([[0.5, 0.5], [1.0, 0.0]])
    v_half = evaluate_policy_exact(m, half, 0.9)
    np.testing.assert_allclose(v_half[0], 0.5 * (1 + 0.9 * v_half[0]) + 0.5 * 0.9 * 20.0)


def test_frozenlake_value_iteration_is_optimal_and_its_success_rate_is_074():
    model = TabularModel.from_env("FrozenLake-v1")
    v, q, pi = value_iteration(model, gamma=0.99)
    # Bellman optimality residual, and the greedy policy's own value equals V*.
    np.testing.assert_allclose(model.reward + 0.99 * model.cont @ q.max(1), q, atol=1e-8)
    np.testing.assert_allclose(evaluate_policy_exact(model, pi, 0.99), v, atol=1e-8)
    rng = np.random.default_rng(0)
    for _ in range(50):  # no policy beats V* anywhere
        assert (evaluate_policy_exact(model, rng.integers(4, size=16), 0.99) <= v + 1e-9).all()
    success = expected_return(model, pi)  # undiscounted, over the 100-step time limit
    assert 0.735 < success < 0.745
    # ... which 1000 real episodes agree with (std of the mean ~0.014).
    mc = evaluate_policy(lambda obs: pi[obs], "FrozenLake-v1", episodes=1000, seed=0)["mean_return"]
    assert abs(mc - success) < 0.05


def test_policy_grid_and_heat_maps(tmp_path):
    q = np.random.default_rng(0).normal(size=(16, 4))
    text = policy_grid(q, "FrozenLake-v1")
    rows = text.splitlines()[1:5]
    assert rows[0].split()[0] in "←↓→↑" and rows[1].split()[1] == "H" and rows[3].split()[3] == "G"
    assert "C C C" in policy_grid(np.zeros((48, 4)), "CliffWalking-v1")
    assert "greedy action per state (500 states)" in policy_grid(np.zeros((500, 6)), "Taxi-v4")
    for env, shape in (("FrozenLake-v1", (16, 4)), ("Taxi-v4", (500, 6))):
        png = plot_q_table(np.random.default_rng(0).normal(size=shape), env, tmp_path / f"{env}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

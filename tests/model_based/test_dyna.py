"""Dyna-Q, Dyna-Q+ and prioritized sweeping: the direct, model and planning updates computed by hand on
a three-state chain, Dyna-Q+'s bonus, the two-stage sampling of the planning step, learning the book's
maze (planning's speed-up of Figure 8.2) and bad input."""

import functools

import gymnasium as gym
import numpy as np
import pytest

from ascent.errors import ConfigError, EnvError
from ascent.model_based.dyna import DynaQ, DynaQConfig, DynaTables, pick

ALPHA, GAMMA = 0.1, 0.95
LEFT, RIGHT = 0, 1


class FixedDraws:
    """A stand-in generator whose random(shape) returns the given numbers: the planning step's
    (state, action) draws chosen by the test."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def random(self, shape):
        return self.values.reshape(shape)


def chain_tables() -> DynaTables:
    """One learner on the chain 0 -> 1 -> 2 (terminal): RIGHT moves right, LEFT moves left; reward 1 on
    reaching 2. Three states, two actions."""
    return DynaTables(1, 3, 2)


def learn(tables, s, a, r, s2, terminated, config, rng=None):
    one = lambda v, dtype: np.array([v], dtype=dtype)  # noqa: E731
    return tables.learn(one(s, np.int64), one(a, np.int64), one(r, np.float64), one(s2, np.int64),
                        one(terminated, bool), config, rng or np.random.default_rng(0))


def test_direct_update_model_and_planning_by_hand():
    real = DynaQConfig(gamma=GAMMA, planning_steps=0)
    tables = chain_tables()
    learn(tables, 0, RIGHT, 0.0, 1, False, real)  # Q(0, R) += 0.1 (0 + 0.95 * 0 - 0) = 0
    learn(tables, 1, RIGHT, 1.0, 2, True, real)  # Q(1, R) += 0.1 (1 - 0) = 0.1 (terminal: no bootstrap)
    q = tables.q.numpy()[0]
    np.testing.assert_allclose(q, [[0, 0], [0, 0.1], [0, 0]])
    # the model: the last outcome of each tried pair
    assert tables.next_state.numpy()[0, 0, RIGHT] == 1 and tables.next_state.numpy()[0, 1, RIGHT] == 2
    assert tables.reward.numpy()[0, 1, RIGHT] == 1.0 and tables.terminated.numpy()[0, 1, RIGHT]
    assert tables.tried.numpy()[0].tolist() == [[False, True], [False, True], [False, False]]

    # Three planning updates: the observed states are {0, 1}; u = 0.25 draws state 0, u = 0.75 state 1;
    # the only action tried in each is RIGHT, whatever the action draw.
    tables.plan(DynaQConfig(gamma=GAMMA, planning_steps=3), FixedDraws([[0.25, 0.75, 0.25], [0.9, 0.1, 0.5]]))
    q1 = 0.0 + ALPHA * (0.0 + GAMMA * 0.1 - 0.0)  # (0, R): bootstraps from Q(1, R) = 0.1 -> 0.0095
    q2 = 0.1 + ALPHA * (1.0 - 0.1)  # (1, R): terminal -> 0.19
    q3 = q1 + ALPHA * (GAMMA * q2 - q1)  # (0, R) again, from the new Q(1, R) -> 0.0266
    np.testing.assert_allclose(q, [[0, q3], [0, q2], [0, 0]])
    assert q3 == pytest.approx(0.0266)


def test_agent_learns_a_chain_transition_with_its_planning():
    """The same updates through the agent: one real step 1 -> 2 of a chain env, then planning
    replays it: Q(1, R) = 1 - (1 - alpha)^(1 + n) after the direct update and n planning updates."""

    class Chain(gym.Env):
        observation_space, action_space = gym.spaces.Discrete(3), gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return 1, {}

        def step(self, action):
            return (2, 1.0, True, False, {}) if action == RIGHT else (0, 0.0, False, False, {})

    agent = DynaQ(Chain, seed=0, verbose=0, gamma=GAMMA, epsilon=0.0, q_init=0.0, planning_steps=4)
    agent.tables.q.numpy()[0, 1, LEFT] = -1.0  # the greedy action is RIGHT
    agent.learn(1, progress_bar=False)
    assert agent.q_table()[1, RIGHT] == pytest.approx(1 - (1 - ALPHA) ** 5)
    assert agent.tables.time.item() == 1


def test_planning_picks_a_state_then_an_action_taken_in_it():
    """The book's (f): a random previously observed state, then a random action previously taken
    there; not a random pair (a state with one tried action is drawn as often as one with three)."""
    mask = np.array([[False, True, False, True, True]])
    u = (np.arange(6) + 0.5) / 6  # six evenly spread draws
    picks = pick(mask.cumsum(1), u[:, None])[:, 0]
    assert picks.tolist() == [1, 1, 3, 3, 4, 4]

    tables = DynaTables(1, 2, 3)
    tables.tried.numpy()[0] = [[True, True, True], [True, False, False]]
    tables.next_state.numpy()[0] = 1  # all lead to state 1
    tables.reward.numpy()[0] = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    tables.terminated.numpy()[0] = True
    tables.plan(DynaQConfig(gamma=GAMMA, planning_steps=4000, learning_rate=1e-4), np.random.default_rng(0))
    # 2000 updates of (1, 0) expected towards reward 1: Q = 1 - (1 - 1e-4)^k
    k = np.log(1 - tables.q.numpy()[0, 1, 0]) / np.log(1 - 1e-4)
    assert 1850 < k < 2150


def test_dyna_q_plus_bonus_and_untried_actions():
    real = DynaQConfig(gamma=GAMMA, planning_steps=0)
    tables = chain_tables()
    for s, a, s2 in [(0, RIGHT, 1), (1, LEFT, 0), (0, RIGHT, 1), (1, LEFT, 0)]:  # four real steps, rewards 0
        learn(tables, s, a, 0.0, s2, False, real)
    assert tables.time.item() == 4 and tables.last_tried.numpy()[0, 0, RIGHT] == 3
    plus = DynaQConfig(gamma=GAMMA, planning_steps=2, plus=True, kappa=0.5)
    # draw 1: state 0, action LEFT (u = 0.25 of 2 actions), never tried: modelled as staying in 0, reward 0,
    #         tau = 4 steps since the start: r + kappa sqrt(tau) = 0 + 0.5 * 2 = 1
    # draw 2: state 0, action RIGHT, last tried at step 3: tau = 1, bonus 0.5, leads to 1 (Q(1, .) = 0)
    tables.plan(plus, FixedDraws([[0.25, 0.25], [0.25, 0.75]]))
    q = tables.q.numpy()[0]
    assert q[0, LEFT] == pytest.approx(ALPHA * (0.5 * np.sqrt(4) + GAMMA * 0.0))
    assert q[0, RIGHT] == pytest.approx(ALPHA * (0.5 * np.sqrt(1) + GAMMA * 0.0))
    # plain Dyna-Q, same draws: never the untried action, and no bonus
    tables.q.numpy()[...] = 0.0
    tables.plan(DynaQConfig(gamma=GAMMA, planning_steps=2), FixedDraws([[0.25, 0.25], [0.25, 0.75]]))
    np.testing.assert_array_equal(q, 0.0)


def test_prioritized_sweeping_by_hand():
    config = DynaQConfig(gamma=GAMMA, planning_steps=2, prioritized=True, theta=0.0)
    tables = chain_tables()
    td, updates = learn(tables, 0, RIGHT, 0.0, 1, False, config)
    assert td[0] == 0.0 and updates == 0  # P = 0 is not above theta: nothing queued, nothing updated
    td, updates = learn(tables, 1, RIGHT, 1.0, 2, True, config)
    # P = 1: (1, R) is queued and swept first: Q(1, R) = 0.1 (no direct update besides: not 0.19); then
    # its predecessor (0, R), queued with |0 + 0.95 * 0.1 - 0| = 0.095: Q(0, R) = 0.1 * 0.095
    assert td[0] == 1.0 and updates == 2
    np.testing.assert_allclose(tables.q.numpy()[0], [[0, ALPHA * GAMMA * 0.1], [0, 0.1], [0, 0]])
    assert not tables.priority.numpy().any()  # the queue is empty: nothing leads to state 0


# ---- learning the book's maze -------------------------------------------------------------------------------
def episode_lengths(agent: DynaQ, episodes: int) -> list[int]:
    lengths: list[int] = []
    agent.start_episodes()
    while len(lengths) < episodes:
        agent.train_iteration()
        lengths += [n for _, n in agent.iteration_episodes]
        agent.iteration_episodes.clear()
    return lengths[:episodes]


def test_planning_finds_the_short_path_within_a_few_episodes():
    """Figure 8.2: with n = 50 the agent walks near the 14-step optimum from about the third episode,
    while one-step Q-learning (n = 0) still wanders after six."""
    lengths = {n: episode_lengths(DynaQ("ascent/DynaMaze-v0", seed=1, verbose=0, planning_steps=n), 6) for n in (0, 50)}
    assert np.mean(lengths[50][3:]) < 22, lengths[50]
    assert np.mean(lengths[0][3:]) > 60, lengths[0]
    greedy = DynaQ("ascent/DynaMaze-v0", seed=1, verbose=0, planning_steps=50)
    episode_lengths(greedy, 5)
    assert greedy.evaluate(2)["mean_length"] == 14


def test_prioritized_sweeping_solves_the_maze():
    """(alpha = 0.5 as in the reproductions of Example 8.4: with 0.1 a pair needs many sweeps, and the
    pairs near the start wait behind larger errors in the queue.)"""
    agent = DynaQ("ascent/DynaMaze-v0", seed=0, verbose=0, prioritized=True, planning_steps=10, learning_rate=0.5)
    episode_lengths(agent, 8)
    assert agent.evaluate(1)["mean_length"] <= 16  # (the optimum is 14)


def test_dyna_q_plus_walks_short_paths_on_the_maze():
    """Its greedy policy is not the test: Q holds the exploration bonus, so a long-untried bump into
    a wall can look best to an agent that then never learns it is one (acting does not update Q)."""
    agent = DynaQ("ascent/DynaMaze-v0", seed=0, verbose=0, plus=True, planning_steps=20, kappa=1e-3)
    assert np.mean(episode_lengths(agent, 12)[7:]) < 40  # (a random walk takes hundreds of steps)


# ---- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hp, named", [
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(epsilon=1.5), "epsilon"),
    (dict(planning_steps=-1), "planning_steps"),
    (dict(kappa=-1.0), "kappa"),
    (dict(plus=True, prioritized=True), "prioritized"),
    (dict(normalize_reward=True), "normalize_reward"),
])
def test_bad_hyperparameters_are_config_errors(hp, named):
    with pytest.raises(ConfigError, match=named):
        DynaQ("ascent/DynaMaze-v0", seed=0, verbose=0, **hp)


class SpacesEnv(gym.Env):
    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space


@pytest.mark.parametrize("obs, action, named, fix", [
    (gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Discrete(2), "Box(-1.0, 1.0, (3,), float32)", "dqn, ppo, or cem"),
    (gym.spaces.Discrete(5), gym.spaces.Box(-1.0, 1.0, (1,)), "Box(-1.0, 1.0, (1,), float32)", "sac, td3, ppo or cem"),
])
def test_continuous_spaces_are_refused_naming_the_space_and_the_alternative(obs, action, named, fix):
    with pytest.raises(EnvError) as err:
        DynaQ(functools.partial(SpacesEnv, obs, action), seed=0, verbose=0)
    assert named in str(err.value) and fix in str(err.value)

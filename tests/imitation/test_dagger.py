"""DAgger: the beta schedules, the aggregation of expert-labelled states, and learning from one episode."""

import numpy as np
import pytest

from ascent.core.agent import load_agent
from ascent.errors import ConfigError
from ascent.imitation.dagger import DAgger, beta


def test_beta_schedules():
    assert [beta("linear", i, 4, 0.5) for i in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert [beta("exponential", i, 4, 0.5) for i in range(4)] == [1.0, 0.5, 0.25, 0.125]
    assert beta("exponential", 3, 4, 0.0) == 0.0


def test_rounds_aggregate_states_labelled_by_the_expert(weak_expert, cartpole_demos):
    agent = DAgger("CartPole-v1", seed=0, verbose=0, expert=weak_expert, dataset=cartpole_demos, n_episodes=1,
                   round_steps=50, train_steps=5, initial_train_steps=5, eval_every=0, n_envs=2,
                   normalize_obs=False)  # (x is then the raw observation, which the expert reads)
    assert len(agent.data) == 500  # the one demonstrated episode
    agent.learn(100, progress_bar=False)
    assert agent.counters.round == 3  # round 0 was the dataset; rounds 1 and 2 ran
    # every new state is kept (NEXT_STEP autoreset's reset steps aside) and labelled by the expert
    new_x, new_labels = agent.data.x[500:], agent.data.actions[500:]
    assert 90 <= len(new_x) <= 100
    expert = load_agent(f"{weak_expert}/model.pt")
    np.testing.assert_array_equal(new_labels.numpy(), expert.act(new_x.numpy(), deterministic=True))


def test_expert_share_follows_beta(weak_expert):
    agent = DAgger("CartPole-v1", seed=0, verbose=0, expert=weak_expert, round_steps=400, train_steps=1,
                   beta_schedule="linear", beta_rampdown=2, eval_every=0)
    rows = []
    agent.learn(1200, callbacks=lambda a, m: rows.append(m), progress_bar=False)
    assert [r["beta"] for r in rows] == [1.0, 0.5, 0.0]
    shares = [r["expert_action_share"] for r in rows]
    assert shares[0] == 1.0 and shares[2] == 0.0 and 0.4 < shares[1] < 0.6


def test_dagger_needs_an_expert_of_the_same_env(weak_expert):
    with pytest.raises(ConfigError, match="expert=RUN_DIR"):
        DAgger("CartPole-v1", verbose=0)
    with pytest.raises(ConfigError, match="acts in"):
        DAgger("Acrobot-v1", verbose=0, expert=weak_expert)


@pytest.mark.slow
def test_dagger_from_one_episode_reaches_495_within_five_rounds(ppo_cartpole_expert, cartpole_demos):
    agent = DAgger("CartPole-v1", seed=0, verbose=0, expert=ppo_cartpole_expert, dataset=cartpole_demos, n_episodes=1,
                   eval_every=0)
    agent.learn(5 * agent.config.round_steps, progress_bar=False)
    assert agent.counters.round == 6
    assert agent.evaluate(10)["mean_return"] >= 495

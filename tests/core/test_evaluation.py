"""evaluate_policy: quotas of episodes, and the cut of an episode that never ends."""

import numpy as np

from ascent.core.evaluation import evaluate_policy


def test_an_episode_that_never_ends_is_cut_and_counted(capsys):
    # CliffWalking-v1 has no time limit; always moving up from the start (a wall) never ends an episode.
    result = evaluate_policy(lambda obs: np.zeros(len(obs), dtype=np.int64), "CliffWalking-v1", episodes=3, seed=0,
                             max_episode_steps=50)
    assert result["episodes"] == 3 and result["lengths"] == [50, 50, 50]
    assert result["returns"] == [-50.0, -50.0, -50.0]  # -1 a step
    assert "cut 3 episode(s) at 50 steps" in capsys.readouterr().err


def test_episodes_that_end_are_reported_whole_and_never_cut(capsys):
    # CartPole: pushing right ends the episode within a few dozen steps; each env meets its quota.
    result = evaluate_policy(lambda obs: np.ones(len(obs), dtype=np.int64), "CartPole-v1", episodes=5, seed=0,
                             max_parallel=2, max_episode_steps=1_000)
    assert result["episodes"] == 5 and all(8 <= n < 60 for n in result["lengths"])
    assert result["returns"] == [float(n) for n in result["lengths"]]  # +1 a step
    assert "cut" not in capsys.readouterr().err

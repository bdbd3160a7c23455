"""Self-play with a population: bad input refused with clear errors, the opponents' sampling
probabilities, the pool (snapshots every save_steps, at most `window`, in the checkpoint), legal moves
only in the rollout, the Elo update against a hand computation, and a short learning run that can fail."""

import types

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from ascent.envs import turn_based  # noqa: E402
from ascent.envs.turn_based import play_games, random_mover  # noqa: E402
from ascent.errors import EnvError  # noqa: E402
from ascent.multiagent import selfplay  # noqa: E402
from ascent.multiagent.selfplay import SelfPlay, elo_expected, policy_mover  # noqa: E402

TTT = "pettingzoo:tictactoe_v3"
SMALL = dict(n_envs=2, n_steps=8, batch_size=16, n_epochs=1, net_arch=(16,), elo_every=0)


def test_a_single_agent_or_parallel_env_is_refused_with_what_plays_it():
    with pytest.raises(EnvError, match="turn-based two-player games.*CartPole-v1.*single-agent"):
        SelfPlay("CartPole-v1", verbose=0, **SMALL)
    with pytest.raises(EnvError, match="soccer.*parallel .*ippo"):
        SelfPlay("soccer", verbose=0, **SMALL)
    with pytest.raises(EnvError, match="pettingzoo:rps_v2.*parallel"):
        SelfPlay("pettingzoo:rps_v2", verbose=0, **SMALL)


def test_mismatched_agent_spaces_are_refused(monkeypatch):
    class Mismatched:
        possible_agents = ["a", "b"]

        def observation_space(self, agent):
            size = 9 if agent == "a" else 7
            return gym.spaces.Dict({"observation": gym.spaces.Box(0, 1, (size,)), "action_mask": gym.spaces.Box(0, 1, (9,))})

        def action_space(self, agent):
            return gym.spaces.Discrete(9)

    monkeypatch.setattr(turn_based, "_aec_module", lambda name: types.SimpleNamespace(raw_env=Mismatched))
    with pytest.raises(EnvError, match="mismatched agent spaces"):
        SelfPlay("pettingzoo:lopsided_v0", verbose=0, **SMALL)


def test_opponents_are_random_the_latest_policy_or_a_snapshot_with_the_configured_odds():
    agent = SelfPlay(TTT, seed=0, verbose=0, **SMALL, save_steps=16, window=3, random_opponent_ratio=0.2,
                     play_against_latest_model_ratio=0.25)
    agent.learn(80, progress_bar=False)
    env = agent.envs.env
    assert len(agent.pool) == 3 and agent.pool.born == [48, 64, 80]  # one each 16 steps, the 3 newest kept
    odds = dict(zip(env.keys, env.probs))
    assert odds["random"] == pytest.approx(0.2) and odds["latest"] == pytest.approx(0.8 * 0.25)
    assert [odds[f"snapshot@{s}"] for s in (48, 64, 80)] == pytest.approx([0.8 * 0.75 / 3] * 3)
    assert sum(odds.values()) == pytest.approx(1.0)
    fresh = SelfPlay(TTT, seed=0, verbose=0, **SMALL)  # the initial policy is the pool's first snapshot
    assert len(fresh.pool) == 1 and fresh.pool.born == [0]


def test_the_rollout_holds_legal_moves_only():
    agent = SelfPlay(TTT, seed=1, verbose=0, **{**SMALL, "n_steps": 64})
    agent.learn(128, progress_bar=False)
    s, mask = agent.storage, agent.policy.mask_slice
    legal = s.x[..., mask].reshape(-1, 9).bool()  # (T, N, 9) masks stored in x
    actions = s.actions.reshape(-1)
    assert legal[np.arange(len(actions)), actions].all()
    assert ((s.rewards != 0) <= s.terminated).all()  # (a reward only where a game ends)


def test_elo_ratings_move_game_by_game_against_a_hand_computation(monkeypatch):
    assert elo_expected(0.0, 0.0) == 0.5 and elo_expected(400.0, 0.0) == pytest.approx(10 / 11)
    agent = SelfPlay(TTT, seed=0, verbose=0, **SMALL, elo_games=2, elo_opponents=1, elo_k=16.0)
    scripted = iter([[1.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])  # vs random, vs the snapshot, greedy vs random

    def fake_play(game, mover, opponent, games, seed):
        outcomes = next(scripted)
        return {"wins": outcomes.count(1.0), "draws": outcomes.count(0.0), "losses": outcomes.count(-1.0),
                "outcomes": outcomes}

    monkeypatch.setattr(selfplay, "play_games", fake_play)
    metrics = agent.elo_round()
    r = 0.0
    r += 16 * (1 - 0.5)  # beats random (anchored at 0)
    r += 16 * (1 - 1 / (1 + 10 ** ((0 - r) / 400)))  # and again
    snap = 0.0
    for outcome in (-1.0, 0.0):  # then loses and draws against the snapshot (entered at 0)
        delta = 16 * ((outcome + 1) / 2 - elo_expected(r, snap))
        r, snap = r + delta, snap - delta
    assert metrics["elo"] == pytest.approx(r) and agent.pool.ratings == [pytest.approx(snap)]
    assert metrics["random_win"] == 0.5 and metrics["random_draw"] == 0.5 and metrics["random_loss"] == 0.0
    assert metrics["score_vs_pool"] == 0.25


def test_the_pool_and_ratings_are_in_the_checkpoint(tmp_path):
    agent = SelfPlay(TTT, seed=0, verbose=0, **{**SMALL, "elo_every": 32}, save_steps=16, elo_games=4)
    agent.learn(64, progress_bar=False)
    loaded = SelfPlay.load(agent.save(tmp_path / "model.pt"), verbose=0)
    assert loaded.pool.born == agent.pool.born and loaded.pool.ratings == agent.pool.ratings
    assert loaded.pool.learner_rating == agent.pool.learner_rating != 0.0
    obs = {"action_mask": np.ones((3, 9), np.int8), "observation": np.zeros((3, 3, 3, 2), np.int8)}
    for a, b in zip(agent.pool.snapshots, loaded.pool.snapshots):
        np.testing.assert_array_equal(a.numpy_logits()(obs), b.numpy_logits()(obs))
    loaded.set_opponents()  # (as every iteration starts)
    assert set(loaded.envs.env.keys) == {"random", "latest", *(f"snapshot@{s}" for s in agent.pool.born)}


def test_self_play_learns_to_beat_random_at_tic_tac_toe():
    """A short real run (~40 s, the preset's settings): the greedy policy must not lose 10% of its games
    against random (untrained: 71% and 42% non-losses from the two seats; measured at 100k moves: 1 and 8 losses in 100
    from each seat)."""
    agent = SelfPlay(TTT, seed=0, verbose=0, elo_every=0)
    agent.learn(100_000, progress_bar=False)
    r = play_games(TTT, policy_mover(agent.policy, greedy=True), random_mover, 200, seed=123)
    non_losses = {seat: (r[seat]["wins"] + r[seat]["draws"]) / 100 for seat in ("as_first", "as_second")}
    assert non_losses["as_first"] >= 0.9 and non_losses["as_second"] >= 0.8, r
    assert (r["wins"] + r["draws"]) / 200 >= 0.9, r

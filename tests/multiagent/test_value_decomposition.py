"""VDN and QMIX: the mixers (VDN's sum, QMIX's monotonicity and its use of the state), the TD target
against a hand computation, the two-step game of the QMIX paper (QMIX 8 where VDN settles at 7),
the multi-agent env layer, and bad input."""

import numpy as np
import pytest
import torch

from ascent.envs.multiagent import MultiAgentVecEnv, make_parallel_env
from ascent.errors import EnvError
from ascent.multiagent.value_decomposition import QMIX, VDN, QMixer, SumMixer

SMALL = dict(net_arch=(16,), learning_starts=10, batch_size=8, buffer_size=200, mixing_embed=8, hypernet_embed=8)


def test_vdn_sums_and_qmix_is_monotonic_in_every_agents_q_and_depends_on_the_state():
    q = torch.randn(64, 3)
    assert torch.allclose(SumMixer()(q, torch.zeros(64, 5)), q.sum(1))
    torch.manual_seed(0)
    mixer = QMixer(3, 5, embed=8, hypernet_embed=16)
    q = torch.randn(256, 3, requires_grad=True)
    state = torch.randn(256, 5)
    mixer(q, state).sum().backward()
    assert (q.grad >= 0).all() and (q.grad > 0).any()  # non-negative mixing weights: dQ_tot/dQ_a >= 0
    with torch.no_grad():
        same_q = torch.ones(2, 3)
        assert not torch.allclose(mixer(same_q, torch.randn(2, 5)), mixer(same_q, torch.randn(2, 5)))


def test_the_td_target_against_a_hand_computation():
    agent = VDN("two_step", seed=0, verbose=0, **SMALL, gamma=0.9)
    batch = {"next_obs": torch.rand(2, 2, agent.team.obs_dim), "next_state": torch.rand(2, 3),
             "reward": torch.tensor([1.0, 2.0]), "terminated": torch.tensor([0.0, 1.0])}
    with torch.no_grad():
        online, target = agent.q_net(batch["next_obs"]), agent.target_q(batch["next_obs"])
    u = online.argmax(-1)  # double Q: the online network picks, the target evaluates, VDN sums
    expected = batch["reward"] + 0.9 * (1 - batch["terminated"]) * target.gather(-1, u.unsqueeze(-1)).squeeze(-1).sum(1)
    assert torch.allclose(agent.td_target(batch), expected)
    assert agent.td_target(batch)[1].item() == pytest.approx(2.0)  # (terminated: the reward alone)


@pytest.mark.slow
@pytest.mark.parametrize("cls, value", [(VDN, 7.0), (QMIX, 8.0)])
def test_the_two_step_game_qmix_finds_8_where_vdn_settles_at_7(cls, value):
    # the QMIX paper's setting: uniform exploration throughout (epsilon 1), then the greedy team
    agent = cls("two_step", seed=0, verbose=0, exploration_initial_eps=1.0, exploration_final_eps=1.0,
                learning_starts=100, target_update_interval=100, buffer_size=5000)
    agent.learn(4_000, progress_bar=False)
    assert agent.evaluate(5)["mean_return"] == value
    state_2b = np.zeros((1, 2, 3), np.float32)
    state_2b[0, :, 2] = 1.0  # both agents observe state 2B
    q = agent.q_values(state_2b)[0]
    with torch.no_grad():
        q_tot_bb = agent.mixer(torch.as_tensor(q[:, 1][None]), torch.tensor([[0.0, 0.0, 1.0]])).item()
    # QMIX represents 2B's payoff of 8 for (B, B); VDN's sum cannot (its fit under uniform play is ~6.5 < 7)
    assert (q_tot_bb == pytest.approx(8.0, abs=0.5)) if cls is QMIX else q_tot_bb < 7.0


def test_the_team_env_layer_one_hot_pads_and_restarts():
    team = MultiAgentVecEnv(lambda: make_parallel_env("two_step"), 2)
    obs, state = team.reset(seed=0)
    assert obs.shape == (2, 2, 3) and obs[:, :, 0].all() and state.tolist() == [[1, 0, 0]] * 2
    out = team.step(np.array([[1, 0], [0, 0]]))
    assert out["obs"][0, 0].tolist() == [0, 0, 1] and out["obs"][1, 0].tolist() == [0, 1, 0]
    out = team.step(np.array([[1, 1], [0, 1]]))
    assert out["terminated"].all() and out["rewards"].tolist() == [[8, 8], [7, 7]]
    assert [r.tolist() for r, _ in out["episodes"]] == [[8, 8], [7, 7]] and out["obs"][:, :, 0].all()  # restarted
    adversary = MultiAgentVecEnv(lambda: make_parallel_env("mpe2:simple_adversary_v3"), 1)
    obs, state = adversary.reset(seed=0)
    assert obs.shape == (1, 3, 10) and (obs[0, 0, 8:] == 0).all()  # the adversary's 8 numbers, padded to 10
    assert state.shape == (1, 28)  # the env's own global state


def test_bad_input_is_a_clear_error():
    with pytest.raises(EnvError, match="single-agent"):
        QMIX("CartPole-v1", verbose=0)
    with pytest.raises(EnvError, match="mismatched agent spaces"):
        VDN("mpe2:simple_speaker_listener_v4", verbose=0)
    with pytest.raises(EnvError, match="turn-based"):
        VDN("pettingzoo:tictactoe_v3", verbose=0)
    with pytest.raises(EnvError, match="simple_spread_v3"):
        make_parallel_env("mpe2:simple_sprad_v3")
    with pytest.raises(EnvError, match="name=value"):
        make_parallel_env("mpe2:simple_spread_v3(3)")

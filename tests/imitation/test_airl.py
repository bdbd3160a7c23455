"""AIRL: the disentangled discriminator f = g(s) + gamma h(s') - h(s) and its logit f - log pi against
hand-worked values, absorbing states in the shaping term, and the reward transfer's checks."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.errors import CheckpointError
from ascent.imitation.adversarial import PairEncoder
from ascent.imitation.airl import AIRL, AIRLDiscriminator


def linear_discriminator(gamma: float) -> AIRLDiscriminator:
    """g(z) = z . (1, 2, 0) and h(z) = z . (0, 1, 3) + 0.5 on an encoder that leaves 2-d observations as they are."""
    enc = PairEncoder(gym.spaces.Box(-10, 10, (2,), np.float32), gym.spaces.Discrete(2), None)
    disc = AIRLDiscriminator(enc, (), "relu", state_only=True, gamma=gamma)
    with torch.no_grad():
        for net, w, b in ((disc.g, [1.0, 2.0, 0.0], 0.0), (disc.h, [0.0, 1.0, 3.0], 0.5)):
            net.layers[0].weight.copy_(torch.tensor([w]))
            net.layers[0].bias.fill_(b)
    return disc


def rows(obs, next_obs, terminated):
    n = len(obs)
    return {"obs": torch.tensor(obs), "actions": torch.zeros(n, dtype=torch.long), "next_obs": torch.tensor(next_obs),
            "terminated": torch.tensor(terminated), "is_absorbing": torch.zeros(n, dtype=torch.bool)}


@torch.no_grad()
def test_f_is_g_plus_discounted_shaping_by_hand():
    gamma = 0.9
    disc = linear_discriminator(gamma)
    r = rows([[1.0, 2.0], [0.5, -1.0]], [[3.0, 1.0], [7.0, 7.0]], [False, True])
    # g(s) = s0 + 2 s1; h(s) = s1 + 3 flag + 0.5; the absorbing state: s = 0, flag = 1 -> h = 3.5
    g = [1 + 4, 0.5 - 2]
    h_s = [2 + 0.5, -1 + 0.5]
    h_next = [1 + 0.5, 3.5]  # a terminated step's next state is the absorbing one, whatever next_obs says
    np.testing.assert_allclose(disc.reward(r), g, rtol=1e-6)
    np.testing.assert_allclose(disc(r, absorbing=True), [g[i] + gamma * h_next[i] - h_s[i] for i in range(2)], rtol=1e-6)
    # without absorbing states h(s') counts 0 after a termination
    np.testing.assert_allclose(disc(r, absorbing=False), [g[0] + gamma * 1.5 - h_s[0], g[1] - h_s[1]], rtol=1e-6)
    # the absorbing state's own loop: f(s_a, ., s_a) = g(s_a) + (gamma - 1) h(s_a)
    loop = rows([[0.0, 0.0]], [[0.0, 0.0]], [True])
    loop["is_absorbing"][:] = True
    assert disc(loop, absorbing=True).item() == pytest.approx(0.0 + (gamma - 1) * 3.5)


@torch.no_grad()
def test_potential_shaping_telescopes_along_an_episode():
    """sum_t gamma^t (gamma h(s_t+1) - h(s_t)) = gamma^T h(s_T) - h(s_0): the shaping changes no
    policy's ranking (Ng et al. 1999), which is why g carries the reward."""
    gamma = 0.95
    disc = linear_discriminator(gamma)
    states = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    r = rows(states[:-1], states[1:], [False] * 5)
    shaping = (disc(r, absorbing=True) - disc.reward(r)).detach().numpy()
    h = lambda s: s[1] + 0.5  # noqa: E731
    assert sum(gamma ** t * shaping[t] for t in range(5)) == pytest.approx(gamma ** 5 * h(states[5]) - h(states[0]), rel=1e-5)


def test_discriminator_logit_is_f_minus_log_pi(cartpole_demos):
    agent = AIRL("CartPole-v1", seed=0, verbose=0, dataset=cartpole_demos, generator_set="n_envs=2;n_steps=16;batch_size=32")
    batch = {k: v[:8] for k, v in agent.expert.items()}
    with torch.no_grad():
        f = agent.discriminator(batch, True)
        policy = agent.generator.agent.policy
        logpi = policy.distribution(torch.as_tensor(batch["obs"])).log_prob(torch.as_tensor(batch["actions"]))
        loss, _ = agent.disc_loss(batch, batch)
    logits = (f - logpi).numpy()
    by_hand = np.mean([math.log(1 + math.exp(-z)) for z in logits]) + np.mean([math.log(1 + math.exp(z)) for z in logits])
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)


def test_reward_transfer_trains_on_g_alone_and_checks_its_source(cartpole_demos, tmp_path):
    small = dict(generator_set="n_envs=2;n_steps=16;batch_size=32", verbose=0)
    AIRL("CartPole-v1", seed=0, run_dir=tmp_path / "airl", dataset=cartpole_demos, **small).learn(64, progress_bar=False)
    fresh = AIRL("CartPole-v1", seed=1, reward_from=str(tmp_path / "airl"), **small)
    source = torch.load(tmp_path / "airl" / "model.pt", weights_only=True)["modules"]["discriminator"]
    for k, v in fresh.discriminator.state_dict().items():
        torch.testing.assert_close(v, source[k])
    before = {k: v.clone() for k, v in fresh.discriminator.state_dict().items()}
    rows_seen = []
    fresh.learn(64, callbacks=lambda a, m: rows_seen.append(m), progress_bar=False)
    assert "disc_loss" not in rows_seen[-1]  # no discriminator in transfer
    for k, v in fresh.discriminator.state_dict().items():
        torch.testing.assert_close(v, before[k])
    with pytest.raises(CheckpointError, match="net_arch"):
        AIRL("CartPole-v1", reward_from=str(tmp_path / "airl"), net_arch=(8,), **small)
    from ascent.algorithms.ppo import PPO

    PPO("CartPole-v1", run_dir=tmp_path / "ppo", verbose=0, n_envs=2, n_steps=16, batch_size=32).learn(32, progress_bar=False)
    with pytest.raises(CheckpointError, match="airl run"):
        AIRL("CartPole-v1", reward_from=str(tmp_path / "ppo"), **small)

"""Behavioural cloning: the loss is the expert actions' negative log-likelihood, computed here by hand;
validation and early stopping; a short learning run on CartPole."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.imitation.bc import BC
from ascent.imitation.common import ClonedPolicy, ImitationConfig, likelihood_loss


def test_categorical_loss_is_the_negative_log_likelihood():
    obs_space, act_space = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(4)
    policy = ClonedPolicy(obs_space, act_space, ImitationConfig(net_arch=(8,)))
    x = torch.randn(5, 3)
    actions = torch.tensor([0, 3, 1, 1, 2])
    net = policy.net
    logits = (torch.tanh(x @ net.actor_torso.layers[0].weight.T + net.actor_torso.layers[0].bias)
              @ net.action_head.weight.T + net.action_head.bias)
    p = torch.softmax(logits, -1)
    nll = -torch.log(p[torch.arange(5), actions]).mean()
    entropy = -(p * torch.log(p)).sum(-1).mean()
    loss, terms = likelihood_loss(policy, x, actions, ent_weight=0.1)
    assert terms["neglogp"].item() == pytest.approx(nll.item(), rel=1e-5)
    assert loss.item() == pytest.approx((nll - 0.1 * entropy).item(), rel=1e-5)
    l2 = sum(float((q.detach() ** 2).sum()) for q in policy.fitted_parameters()) / 2
    loss_l2, _ = likelihood_loss(policy, x, actions, l2_weight=0.01)
    assert loss_l2.item() == pytest.approx(nll.item() + 0.01 * l2, rel=1e-5)


def test_gaussian_and_squashed_losses_match_the_densities_by_hand():
    obs_space, act_space = gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    x, a = torch.randn(6, 2), torch.tensor([[-1.5], [0.3], [1.9], [0.0], [2.0], [-2.0]])
    gauss = ClonedPolicy(obs_space, act_space, ImitationConfig(net_arch=(8,), log_std_init=-0.5))
    mean = gauss.net.dist_params(x)
    std = math.exp(-0.5)
    by_hand = -(-0.5 * ((a - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1).mean()
    assert likelihood_loss(gauss, x, a)[1]["neglogp"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    for kind in ("actor_critic", "sac"):
        squashed = ClonedPolicy(obs_space, act_space, ImitationConfig(net_arch=(8,), policy=kind, squash_actions=True))
        dist = squashed.distribution(x)
        u_mean, log_std = dist.normal.mean, dist.normal.log_std.expand_as(dist.normal.mean)
        unit = (a / 2.0).clamp(-1 + 1e-6, 1 - 1e-6)  # env action -> (-1, 1)
        pre = torch.atanh(unit)
        # change of variables: log pi(a) = log N(atanh a) - log(1 - a^2) (the scale to the bounds is a constant)
        log_n = -0.5 * ((pre - u_mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        expected = -(log_n - torch.log(1 - unit ** 2)).sum(-1).mean()
        got = likelihood_loss(squashed, x, a)[1]["neglogp"].item()
        assert got == pytest.approx(expected.item(), rel=1e-3), kind


def test_sac_policy_needs_box_actions():
    from ascent.errors import EnvError

    with pytest.raises(EnvError, match="Discrete"):
        ClonedPolicy(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2), ImitationConfig(policy="sac"))


def test_bc_without_a_dataset_says_how_to_make_one():
    from ascent.errors import DatasetError

    with pytest.raises(DatasetError, match="ascent collect"):
        BC("CartPole-v1", verbose=0)


def test_early_stopping_ends_training_with_the_best_weights(cartpole_demos, tmp_path):
    agent = BC("CartPole-v1", seed=0, run_dir=tmp_path / "run", verbose=0, dataset=cartpole_demos, n_episodes=3,
               validation_fraction=0.34, eval_interval=20, patience=2, learning_rate=3e-2, net_arch=(256, 256),
               eval_every=0)
    agent.learn(100_000, progress_bar=False)
    assert agent.finished and agent.num_steps < 100_000, "the validation loss never stopped improving"
    with torch.no_grad():
        val = likelihood_loss(agent.cloned, *agent.val)[1]["neglogp"].item()
    assert val == pytest.approx(agent.counters.best_val, rel=1e-5)  # the weights are the best ones
    resumed = BC.load(tmp_path / "run" / "model.pt", verbose=0)
    assert resumed.finished


@pytest.mark.slow
def test_bc_clones_cartpole_from_ten_episodes(cartpole_demos):
    agent = BC("CartPole-v1", seed=0, verbose=0, dataset=cartpole_demos, eval_every=0)
    agent.learn(3000, progress_bar=False)
    assert agent.evaluate(10)["mean_return"] >= 475

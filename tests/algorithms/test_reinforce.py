"""REINFORCE: the variance-optimal baseline against brute force, learning with each switch."""

import numpy as np
import pytest
import torch

import ascent
from ascent.algorithms.common.onpolicy import collect_agent_episodes
from ascent.algorithms.reinforce import optimal_baseline
from mdps import Bandit, TinyMDP, exact_policy_gradient


def test_optimal_baseline_minimizes_estimator_variance_on_a_bandit():
    """Per parameter, b* = E[g^2 R] / E[g^2] must be the b minimizing the sample variance of g (R - b),
    found here by a brute-force search over a fine grid."""
    torch.manual_seed(0)
    logits = torch.tensor([0.3, -0.2], requires_grad=True)
    probs = torch.softmax(logits, 0).detach()
    actions = torch.multinomial(probs, 4000, replacement=True)
    rewards = actions.float() + 0.5 + 0.5 * torch.randn(4000)
    grads = torch.stack([torch.autograd.grad(torch.log_softmax(logits, 0)[a], logits)[0] for a in actions])
    b = optimal_baseline(grads, grads * rewards[:, None])
    grid = torch.linspace(-2, 3, 5001)
    for k in range(2):
        g = grads[:, k]
        variance = ((g[:, None] * (rewards[:, None] - grid[None])) ** 2).mean(0) - (
            (g[:, None] * (rewards[:, None] - grid[None])).mean(0) ** 2)
        second_moment = ((g[:, None] * (rewards[:, None] - grid[None])) ** 2).mean(0)
        assert abs(grid[second_moment.argmin()] - b[k]) < 2e-3  # exact minimizer of the second moment
        assert abs(grid[variance.argmin()] - b[k]) < 0.05  # and of the variance, up to sampling noise


@pytest.mark.parametrize("baseline, return_type", [("value", "reward_to_go"), ("optimal", "full"),
                                                   ("optimal", "reward_to_go"),
                                                   ("mean", "reward_to_go"), ("none", "full")])
def test_reinforce_learns_the_bandit(baseline, return_type):
    agent = ascent.REINFORCE(Bandit, seed=0, verbose=0, n_envs=4, n_episodes=32, learning_rate=0.05,
                             baseline=baseline, return_type=return_type)
    agent.learn(3_000)
    assert agent.evaluate(20, env=Bandit)["mean_return"] > 1.2  # arm 1 (1.5 expected) chosen


@pytest.mark.slow
def test_reinforce_learns_cartpole():
    agent = ascent.REINFORCE("CartPole-v1", seed=0, verbose=0)
    agent.learn(60_000)
    assert agent.evaluate(10)["mean_return"] >= 195


def test_reinforce_invalid_switches():
    with pytest.raises(ascent.ConfigError, match="baseline"):
        ascent.REINFORCE("CartPole-v1", baseline="median")
    with pytest.raises(ascent.ConfigError, match="return_type"):
        ascent.REINFORCE("CartPole-v1", return_type="causal")


@pytest.mark.parametrize("baseline, return_type", [("none", "full"), ("none", "reward_to_go"),
                                                   ("value", "reward_to_go"), ("optimal", "reward_to_go")])
def test_policy_gradient_estimators_are_unbiased_on_a_small_mdp(baseline, return_type):
    """The mean of many independent estimates lies within a few standard errors of the exact gradient."""
    agent = ascent.REINFORCE(TinyMDP, seed=1, verbose=0, gamma=1.0, n_envs=8, n_episodes=250, net_arch=(),
                             baseline=baseline, return_type=return_type)
    with torch.no_grad():  # a non-uniform policy and a (fixed, arbitrary) value baseline
        agent.policy.action_head.weight.copy_(torch.tensor([[0.5, -0.3], [0.2, 0.4]]))
        agent.policy.action_head.bias.copy_(torch.tensor([0.1, -0.2]))
    _, exact = exact_policy_gradient(agent.policy)
    estimates = torch.stack([agent.gradient_estimate(collect_agent_episodes(agent, agent.config.n_episodes)) for _ in range(40)])
    mean = estimates.mean(0)
    stderr = estimates.std(0) / np.sqrt(len(estimates))
    assert ((mean - exact).abs() <= 4 * stderr + 1e-3).all(), (mean, exact, stderr)
    assert exact.abs().max() > 10 * stderr.max()  # the check has power: the gradient is far from zero

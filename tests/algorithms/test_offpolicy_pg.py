"""Off-policy policy gradient: the estimators against naive loops and against the exact gradient of
small problems with known dynamics (data from a behaviour policy theta, gradient at a target theta'),
on-policy equivalence with REINFORCE, truncation, logged data, learning, save/load."""

import numpy as np
import pytest
import torch

import ascent
from ascent.algorithms.common.onpolicy import collect_agent_episodes
from ascent.algorithms.offpolicy_pg import off_policy_objective, pad_episodes
from mdps import (Bandit, ContextualBandit, TinyMDP, action_probs, exact_bandit_gradient, exact_first_order_gradient,
                  exact_policy_gradient, sample_tiny_mdp)

ESTIMATORS = ("trajectory", "per_decision", "first_order")


def tabular_agent(env, estimator, logit_gap=(0.0, 0.0), **overrides):
    """An agent whose policy is tabular: with net_arch=() the logits are a linear function of the
    one-hot state; pi(a=1|s) = sigmoid(logit_gap[s])."""
    kwargs = dict(seed=1, verbose=0, gamma=1.0, n_envs=8, n_episodes=250, net_arch=(), estimator=estimator,
                  baseline="none")
    agent = ascent.OffPolicyPG(env, **{**kwargs, **overrides})
    set_logit_gap(agent, logit_gap)
    return agent


def set_logit_gap(agent, logit_gap):
    with torch.no_grad():
        agent.policy.action_head.weight.copy_(torch.tensor([[0.0, 0.0], list(logit_gap)]))
        agent.policy.action_head.bias.zero_()


def mean_and_stderr(agent, batches):
    estimates = torch.stack([agent.gradient_estimate(batch) for batch in batches])
    return estimates.mean(0), estimates.std(0) / np.sqrt(len(batches))


# ---- the estimators against naive loops -----------------------------------------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("baseline, max_weight", [("none", 0.0), ("mean", 0.0), ("mean", 1.5)])
def test_estimator_weights_match_a_naive_loop(estimator, baseline, max_weight):
    """d objective / d log pi_t = psi_t / N, psi_t from the equations written out as loops (gamma < 1)."""
    gen = torch.Generator().manual_seed(0)
    gamma, lengths = 0.9, [3, 1, 5]
    episodes = [{"rewards": torch.randn(T, generator=gen), "logprobs": -torch.rand(T, generator=gen)} for T in lengths]
    logprob = torch.cat([ep["logprobs"] + 0.3 * torch.randn(len(ep["logprobs"]), generator=gen) for ep in episodes])
    logprob.requires_grad_()
    objective, _ = off_policy_objective(logprob, pad_episodes(episodes, gamma), estimator, gamma, baseline, max_weight)
    (grad,) = torch.autograd.grad(objective, logprob)

    cap = max_weight or float("inf")
    behaviour = torch.cat([ep["logprobs"] for ep in episodes])
    rhos = list(torch.split((logprob.detach() - behaviour).exp().double(), lengths))
    rewards = [ep["rewards"].double() for ep in episodes]
    G = [[sum(gamma ** (k - t) * r[k] for k in range(t, len(r))) for t in range(len(r))] for r in rewards]
    expected = []
    for i, (rho, r, g) in enumerate(zip(rhos, rewards, G)):
        others = [G[j] for j in range(len(G)) if j != i]  # leave-one-out
        if baseline == "none":
            b = 0.0
        elif estimator == "trajectory":
            b = np.mean([o[0] for o in others])
        else:
            b = np.mean([x for o in others for x in o])
        T = len(r)
        for t in range(T):
            if estimator == "trajectory":
                expected.append(min(cap, rho.prod()) * (g[0] - b))
            elif estimator == "per_decision":
                w = [min(cap, rho[:k + 1].prod()) for k in range(T)]
                expected.append(sum(gamma ** (k - t) * w[k] * r[k] for k in range(t, T)) - w[t] * b)
            else:
                expected.append(min(cap, rho[t]) * (g[t] - b))
    torch.testing.assert_close(grad.double(), torch.tensor([float(e) for e in expected], dtype=torch.float64) / 3)


def test_on_policy_the_estimators_are_reinforce():
    """theta' = theta: every rho_t = 1, and the estimates equal REINFORCE's on the same episodes."""
    offpg = ascent.OffPolicyPG("CartPole-v1", seed=0, verbose=0, n_envs=4, n_episodes=8, gamma=0.97)
    episodes = collect_agent_episodes(offpg, offpg.config.n_episodes)
    pairs = [("trajectory", "none", "full"), ("per_decision", "none", "reward_to_go"),
             ("first_order", "none", "reward_to_go"), ("per_decision", "mean", "reward_to_go"),
             ("first_order", "mean", "reward_to_go")]
    for estimator, baseline, return_type in pairs:
        agent = ascent.OffPolicyPG("CartPole-v1", seed=0, verbose=0, n_envs=1, gamma=0.97, estimator=estimator,
                                   baseline=baseline)
        reinforce = ascent.REINFORCE("CartPole-v1", seed=0, verbose=0, n_envs=1, gamma=0.97, baseline=baseline,
                                     return_type=return_type)
        agent.policy.load_state_dict(offpg.policy.state_dict())
        reinforce.policy.load_state_dict(offpg.policy.state_dict())
        ours = agent.gradient_estimate(episodes)
        theirs = reinforce.gradient_estimate([dict(ep) for ep in episodes])
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6, msg=f"{estimator}, baseline {baseline}")


# ---- unbiasedness against the exact gradient ------------------------------------------------------------
BEHAVIOUR, TARGET, NEARBY = (0.0, 0.0), (1.0, -1.0), (0.1, -0.1)  # logit gaps: pi(a=1|s) = .5,.5 / .73,.27 / .52,.48


@pytest.fixture(scope="module")
def behaviour_batches():
    """80 batches of 250 logged TinyMDP episodes from the uniform behaviour policy."""
    episodes = sample_tiny_mdp(np.full((2, 2), 0.5), 80 * 250, np.random.default_rng(0))
    return [episodes[i:i + 250] for i in range(0, len(episodes), 250)]


@pytest.mark.parametrize("estimator, baseline", [("trajectory", "none"), ("per_decision", "none"),
                                                 ("trajectory", "mean"), ("per_decision", "mean")])
def test_full_and_per_decision_weights_are_unbiased_on_a_small_mdp(behaviour_batches, estimator, baseline):
    """Data from theta, gradient at a clearly different theta': the mean of many independent estimates
    lies within 4 standard errors of the exact grad J(theta'), while the exact gradients at theta
    and theta' are many standard errors apart (so an estimator that ignored the weights would fail)."""
    batches = behaviour_batches[:40]
    behaviour = tabular_agent(TinyMDP, estimator, BEHAVIOUR)
    _, behaviour_grad = exact_policy_gradient(behaviour.policy)
    agent = tabular_agent(TinyMDP, estimator, TARGET, baseline=baseline)
    _, exact = exact_policy_gradient(agent.policy)
    mean, stderr = mean_and_stderr(agent, batches)
    assert ((mean - exact).abs() <= 4 * stderr).all(), (mean, exact, stderr)
    assert (exact.abs() / stderr).max() > 15  # power: the gradient is far from zero
    assert ((behaviour_grad - exact).abs() / stderr).max() > 8  # and far from the behaviour's own


def test_first_order_is_close_nearby_and_biased_far_away(behaviour_batches):
    """first_order is unbiased for the gradient of the surrogate sum_s d_theta(s) sum_a pi_theta'(a|s)
    Q_theta(s, a) (its exact expectation here), which matches grad J(theta') to first order: within a
    few percent for a nearby theta', and measurably off (the Monte Carlo check fails) for a distant one."""
    behaviour_pi = action_probs(tabular_agent(TinyMDP, "first_order", BEHAVIOUR).policy).detach()
    near = tabular_agent(TinyMDP, "first_order", NEARBY, baseline="mean")
    _, exact = exact_policy_gradient(near.policy)
    surrogate = exact_first_order_gradient(near.policy, behaviour_pi)
    mean, stderr = mean_and_stderr(near, behaviour_batches)
    assert (surrogate - exact).norm() / exact.norm() < 0.03
    assert ((mean - exact).abs() <= 4 * stderr).all()  # the bias is below what 20,000 episodes can detect
    assert (mean - exact).norm() / exact.norm() < 0.1

    far = tabular_agent(TinyMDP, "first_order", TARGET)
    _, exact = exact_policy_gradient(far.policy)
    surrogate = exact_first_order_gradient(far.policy, behaviour_pi)
    mean, stderr = mean_and_stderr(far, behaviour_batches)
    assert ((mean - surrogate).abs() <= 4 * stderr).all(), (mean, surrogate, stderr)  # unbiased for the surrogate
    assert (surrogate - exact).norm() / exact.norm() > 0.15  # which is not grad J(theta')
    assert ((mean - exact).abs() / stderr).max() > 5  # and the sampling noise does not hide it


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_estimator_is_unbiased_on_a_contextual_bandit(estimator):
    """One step, and the context distribution does not depend on the policy: no state-marginal ratio
    to drop, so all three estimators (here one and the same) are unbiased. Episodes collected through
    the envs, with the behaviour log-probs that collect_episodes records."""
    agent = tabular_agent(ContextualBandit, estimator, BEHAVIOUR, n_episodes=200)
    batches = [collect_agent_episodes(agent, agent.config.n_episodes) for _ in range(30)]
    _, behaviour_grad = exact_bandit_gradient(agent.policy)
    set_logit_gap(agent, (2.0, -2.0))
    _, exact = exact_bandit_gradient(agent.policy)
    mean, stderr = mean_and_stderr(agent, batches)
    assert ((mean - exact).abs() <= 4 * stderr).all(), (mean, exact, stderr)
    assert ((behaviour_grad - exact).abs() / stderr).max() > 8


# ---- truncation -------------------------------------------------------------------------------------
def test_truncation_raises_ess_and_cuts_variance(behaviour_batches):
    batches = behaviour_batches
    plain = tabular_agent(TinyMDP, "trajectory", TARGET)
    truncated = tabular_agent(TinyMDP, "trajectory", TARGET, max_weight=1.5)
    x, actions, batch = plain.prepare(batches[0])
    _, m_plain = plain.objective(x, actions, batch)
    _, m_truncated = truncated.objective(x, actions, batch)
    assert m_plain["log_max_weight"] > np.log(1.5)  # some weights are truncated
    assert m_truncated["ess"] > m_plain["ess"]
    sd_plain = torch.stack([plain.gradient_estimate(b) for b in batches]).std(0)
    sd_truncated = torch.stack([truncated.gradient_estimate(b) for b in batches]).std(0)
    assert (sd_truncated < sd_plain).all(), (sd_truncated, sd_plain)
    assert sd_truncated.square().sum() < 0.75 * sd_plain.square().sum()  # total variance


# ---- logged data, errors ------------------------------------------------------------------------------
def test_learning_from_logged_episodes_improves_J(behaviour_batches):
    """A user's logged dataset (obs, actions, rewards, behaviour logprobs): Adam steps on it raise the
    exact J above the behaviour policy's."""
    agent = tabular_agent(TinyMDP, "per_decision", BEHAVIOUR, baseline="mean", learning_rate=0.05)
    J_behaviour, _ = exact_policy_gradient(agent.policy)
    metrics = agent.update_from_episodes(behaviour_batches[0] + behaviour_batches[1], n_updates=20)
    J_after, _ = exact_policy_gradient(agent.policy)
    assert J_after > J_behaviour + 0.3, (J_behaviour, J_after)
    assert 0 < metrics["ess_fraction"] < 1 and metrics["mean_log_ratio"] < 0


def test_logged_episodes_are_checked():
    agent = ascent.OffPolicyPG(TinyMDP, verbose=0, n_envs=1)
    good = {"obs": np.array([0, 1]), "actions": np.array([1, 0]), "rewards": np.array([0.0, 1.0]),
            "logprobs": np.log([0.5, 0.5])}
    with pytest.raises(ascent.ConfigError, match="episode 1 lacks logprobs"):
        agent.update_from_episodes([good, {k: v for k, v in good.items() if k != "logprobs"}])
    with pytest.raises(ascent.ConfigError, match="obs \\(or x\\)"):
        agent.gradient_estimate([{k: v for k, v in good.items() if k != "obs"}])
    with pytest.raises(ascent.ConfigError, match="different lengths"):
        agent.gradient_estimate([{**good, "rewards": np.array([1.0])}])


def test_invalid_config():
    for key, value, match in [("estimator", "causal", "trajectory, per_decision, first_order"),
                              ("baseline", "value", "none, mean"), ("max_weight", 0.5, "max_weight"),
                              ("n_batches_kept", 0, "n_batches_kept"), ("normalize_reward", True, "normalize_reward")]:
        with pytest.raises(ascent.ConfigError, match=match):
            ascent.OffPolicyPG("CartPole-v1", verbose=0, **{key: value})


# ---- learning, save/load -------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_learns_the_bandit_reusing_old_batches(estimator, tmp_path):
    agent = ascent.OffPolicyPG(Bandit, seed=0, verbose=0, n_envs=4, n_episodes=32, learning_rate=0.02,
                               estimator=estimator, n_batches_kept=2, run_dir=tmp_path)
    agent.learn(2_000)
    assert agent.evaluate(20, env=Bandit)["mean_return"] > 1.2  # arm 1 (1.5 expected) chosen
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"ess", "ess_fraction", "log_max_weight", "mean_log_ratio"} <= set(header)


def test_save_load_gives_identical_actions_and_kept_batches(tmp_path):
    agent = ascent.OffPolicyPG("CartPole-v1", seed=0, verbose=0, n_envs=2, n_episodes=4)
    agent.learn(1_000)
    agent.save(tmp_path / "model.pt")
    loaded = ascent.OffPolicyPG.load(tmp_path / "model.pt", verbose=0)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), loaded.act(obs, deterministic=True))
    kept, restored = agent.kept.episodes(), loaded.kept.episodes()
    assert len(kept) == len(restored) == 8
    torch.testing.assert_close(agent.gradient_estimate(kept), loaded.gradient_estimate(restored))


@pytest.mark.parametrize("estimator", ["per_decision", pytest.param("first_order", marks=pytest.mark.slow)])
def test_learns_cartpole_reusing_the_previous_batch(estimator):
    agent = ascent.OffPolicyPG("CartPole-v1", seed=0, verbose=0, estimator=estimator, n_batches_kept=2)
    agent.learn(50_000)
    assert agent.evaluate(10)["mean_return"] >= 150

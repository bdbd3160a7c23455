"""`ascent diagnose`: the exact LQR quantities against finite differences and Monte Carlo, the
vanilla vs natural paths, the measured variance reductions on CartPole, and the CLI."""

import math
import os
import subprocess
import sys

import pytest
import torch

from ascent.diagnose import gradient_variance, parse_estimators
from ascent.errors import ConfigError
from ascent.lqr import LinearGaussianLQR, ascent_path, lqr_field


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


# ---- the 1-D linear-Gaussian problem -------------------------------------------------------------

@pytest.mark.parametrize("k, sigma", [(-0.2, 1.0), (-0.9, 0.3), (0.1, 0.5), (-1.5, 0.05)])
def test_lqr_gradient_matches_central_differences(k, sigma):
    problem = LinearGaussianLQR(horizon=20, action_cost=0.7)
    grad = problem.gradient(t64(k), t64(sigma))
    h = 1e-6
    J = lambda a, b: float(problem.expected_return(t64(a), t64(b)))  # noqa: E731
    fd = torch.tensor([(J(k + h, sigma) - J(k - h, sigma)) / (2 * h), (J(k, sigma + h) - J(k, sigma - h)) / (2 * h)],
                      dtype=torch.float64)
    assert torch.allclose(grad, fd, rtol=1e-6, atol=1e-6), (grad, fd)


def test_lqr_exact_moments_and_return_match_monte_carlo():
    problem = LinearGaussianLQR(horizon=15, action_cost=1.0)
    k, sigma, n = -0.4, 0.6, 40_000
    batch = problem.sample(k, sigma, n, torch.Generator().manual_seed(0))
    exact_m = problem.second_moments(t64(k), t64(sigma))
    mc_m = batch["states"].square().mean(0)
    se_m = batch["states"].square().std(0) / math.sqrt(n)
    assert ((mc_m - exact_m).abs() <= 4 * se_m).all(), (mc_m, exact_m, se_m)
    J = float(problem.expected_return(t64(k), t64(sigma)))
    se = float(batch["returns"].std()) / math.sqrt(n)
    assert abs(float(batch["returns"].mean()) - J) <= 4 * se
    # power: dropping the noise's own cost (T sigma^2) from E[a^2] would be many standard errors off
    assert problem.horizon * sigma**2 > 20 * se


def test_lqr_fisher_matches_the_covariance_of_the_trajectory_score():
    """F = E[grad log p(tau) grad log p(tau)^T], the score taken by autodiff of the Gaussian policy's
    log-density over sampled trajectories (the dynamics are deterministic and do not depend on theta)."""
    problem = LinearGaussianLQR(horizon=10)
    k0, s0, n = -0.5, 0.7, 40_000
    batch = problem.sample(k0, s0, n, torch.Generator().manual_seed(1))
    k = torch.full((n, 1), k0, dtype=torch.float64, requires_grad=True)  # one copy per trajectory:
    sigma = torch.full((n, 1), s0, dtype=torch.float64, requires_grad=True)  # per-trajectory gradients
    logp = torch.distributions.Normal(k * batch["states"], sigma).log_prob(batch["actions"]).sum()
    score = torch.cat(torch.autograd.grad(logp, (k, sigma)), 1)  # (n, 2)
    assert (score.mean(0).abs() <= 4 * score.std(0) / math.sqrt(n)).all()  # E[score] = 0
    outer = score[:, :, None] * score[:, None, :]  # (n, 2, 2)
    mc, se = outer.mean(0), outer.std(0) / math.sqrt(n)
    exact = problem.fisher(k0, s0)
    assert ((mc - exact).abs() <= 4 * se).all(), (mc, exact, se)
    assert exact[0, 0] > 20 * se[0, 0] and exact[1, 1] > 20 * se[1, 1]  # the check has power


def test_lqr_optimal_gain():
    problem = LinearGaussianLQR(horizon=40)
    k_star = problem.optimal_gain()
    J = lambda k: float(problem.expected_return(t64(k), t64(0.0)))  # noqa: E731
    assert J(k_star) >= max(J(k_star - 1e-3), J(k_star + 1e-3))
    assert abs(k_star - problem.riccati_gain()) < 1e-3  # long horizon: the stationary Riccati gain
    assert abs(problem.riccati_gain() - (1 - math.sqrt(5)) / 2) < 1e-12  # -0.618 for c = 1


def test_vanilla_collapses_sigma_while_npg_heads_to_k_star(tmp_path):
    """At the CLI defaults (start k = -0.2, sigma = 1, 100 steps, lr 0.002, KL step 0.02)."""
    s = lqr_field(tmp_path)
    vanilla, natural = s["vanilla"], s["natural"]
    assert vanilla["sigma_quarter_at"] <= 10  # sigma falls below 1/4 of its start within 10 steps
    assert natural["sigma_quarter_at"] is None or natural["sigma_quarter_at"] >= 4 * vanilla["sigma_quarter_at"]
    assert natural["final"][1] > 10 * vanilla["final"][1]
    assert natural["distance_to_k_star"] < vanilla["distance_to_k_star"] / 3
    assert natural["distance_to_k_star"] < 0.01
    assert (tmp_path / "lqr_field.png").stat().st_size > 10_000

    # each natural step has second-order KL exactly kl_step
    problem = LinearGaussianLQR()
    path = ascent_path(problem, "natural", (-0.2, 1.0), 3, kl_step=0.02)
    for before, after in zip(path[:-1], path[1:]):
        d = torch.tensor(after - before)
        assert 0.5 * float(d @ problem.fisher(*before) @ d) == pytest.approx(0.02, rel=1e-9)


def test_lqr_rejects_bad_numbers():
    with pytest.raises(ConfigError, match="horizon"):
        LinearGaussianLQR(horizon=0)
    with pytest.raises(ConfigError, match="kl_step"):
        lqr_field(".", kl_step=-1.0)


# ---- gradient variance on CartPole ---------------------------------------------------------------

def test_variance_reductions_show_up_and_estimators_agree_with_the_reference():
    # (100 batches: with 40, the variance ratios moved by +-0.2 from seed to seed, e.g. full+mean 0.28-0.62)
    report = gradient_variance("CartPole-v1", episodes_per_batch=8, batches=100, reference_episodes=800, seed=0,
                               net_arch=(16,))
    rows = {r["estimator"]: r for r in report.rows}
    assert set(rows) == {"full", "full+mean", "full+optimal", "rtg", "rtg+mean", "rtg+optimal", "rtg+value"}
    var = {name: r["total_variance"] for name, r in rows.items()}
    assert var["rtg"] < 0.5 * var["full"]  # causality
    assert var["full+mean"] < 0.5 * var["full"] and var["full+optimal"] < 0.5 * var["full"]  # baselines
    assert var["rtg+mean"] < var["rtg"] and var["rtg+value"] < var["rtg"] and var["rtg+optimal"] < var["rtg"]
    # Within a few standard errors of the reference: in norm (bias_z) and along it (scale). The mean
    # and optimal baselines are estimated on the batch they weight, an O(1/episodes) bias that is
    # below this sample's resolution (the next test shows one that is not).
    for name, r in rows.items():
        assert r["bias_z"] < 3, r
        assert abs(r["scale"] - 1) < 3 * r["scale_se"], r
        assert r["cosine"] > 0.4, r
    assert max(r["scale_se"] for r in report.rows) < 0.3  # and it can see a bias of a third of the gradient


def test_leave_one_out_baselines_stay_unbiased_with_two_episodes_per_batch():
    """With 2 episodes per batch an in-batch mean baseline would take half of each episode's own return
    away: E[s_i (R_i - (R_1 + R_2) / 2)] = grad J / 2 for the score s_i (equal lengths). The leave-one-out
    baselines of REINFORCE must not shrink the gradient, and the check has the power to see a halving."""
    report = gradient_variance("CartPole-v1", "full,full+mean,full+optimal", episodes_per_batch=2, batches=800,
                               reference_episodes=800, seed=0, net_arch=(16,))
    rows = {r["estimator"]: r for r in report.rows}
    for name in ("full", "full+mean", "full+optimal"):
        assert abs(rows[name]["scale"] - 1) < 3 * rows[name]["scale_se"], (name, rows[name])
    for name in ("full+mean", "full+optimal"):
        assert 0.5 < 1 - 3 * rows[name]["scale_se"]  # a halving would have been flagged


def test_policy_from_a_trained_run(tmp_path):
    import ascent
    from ascent.diagnose import make_agent

    trained = ascent.REINFORCE("CartPole-v1", seed=3, verbose=0, run_dir=tmp_path / "run", n_episodes=2, n_envs=2,
                               net_arch=(8,))
    trained.learn(100)
    agent, source = make_agent(None, tmp_path / "run", seed=0, gamma=1.0, n_envs=2, net_arch=(64, 64))
    assert "model.pt" in source and agent.env_id == "CartPole-v1"
    for a, b in zip(agent.policy.actor_parameters(), trained.policy.actor_parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="trained on CartPole-v1"):
        make_agent("Pendulum-v1", tmp_path / "run", seed=0, gamma=1.0, n_envs=1, net_arch=(8,))


def test_estimator_names():
    assert parse_estimators("rtg+value, full,rtg+value") == ["rtg+value", "full"]
    with pytest.raises(ConfigError, match="did you mean: rtg\\+value"):
        parse_estimators("rtg+valu")


# ---- CLI ----------------------------------------------------------------------------------------

def run(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "ascent.cli", "diagnose", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_cli_lqr_field(tmp_path):
    r = run("lqr-field", "--out", str(tmp_path), "--steps", "30")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lqr_field.png").stat().st_size > 10_000
    assert "k* = -0.6180" in r.stdout and "vanilla" in r.stdout and "natural" in r.stdout
    assert str(tmp_path / "lqr_field.png") in r.stdout


def test_cli_gradient_variance(tmp_path):
    r = run("gradient-variance", "--episodes", "4", "--batches", "4", "--reference-episodes", "40",
            "--estimators", "full,rtg,rtg+value", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("estimator"))
    assert [line.split()[0] for line in lines[header + 1:header + 4]] == ["full", "rtg", "rtg+value"]
    assert len({len(line) for line in lines[header:header + 4]}) == 1  # aligned columns
    for name in ("gradient_variance.png", "gradient_variance.csv", "gradient_variance.json"):
        assert (tmp_path / name).stat().st_size > 100, name


def test_cli_unknown_estimator_is_one_line(tmp_path):
    r = run("gradient-variance", "--estimators", "full,rtg+median", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "rtg+median" in r.stderr and "valid: full, full+mean" in r.stderr and "rtg+value" in r.stderr

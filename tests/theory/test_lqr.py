"""`ascent diagnose lqr-field`: the exact LQR quantities against finite differences and Monte Carlo,
the vanilla vs natural paths, and the CLI."""

import math
import os
import subprocess
import sys

import pytest
import torch

from ascent.errors import ConfigError
from ascent.theory.lqr import LinearGaussianLQR, ascent_path, lqr_field


def run(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "ascent.cli", "diagnose", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


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


def test_cli_lqr_field(tmp_path):
    r = run("lqr-field", "--out", str(tmp_path), "--steps", "30")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lqr_field.png").stat().st_size > 10_000
    assert "k* = -0.6180" in r.stdout and "vanilla" in r.stdout and "natural" in r.stdout
    assert str(tmp_path / "lqr_field.png") in r.stdout

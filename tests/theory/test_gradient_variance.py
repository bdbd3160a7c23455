"""`ascent diagnose gradient-variance`: the measured variance reductions on CartPole, and the CLI."""

import os
import subprocess
import sys

import pytest
import torch

from ascent.theory.gradient_variance import gradient_variance, parse_estimators
from ascent.errors import ConfigError


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
    from ascent.theory.gradient_variance import make_agent

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

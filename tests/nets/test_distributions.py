"""Distributions against torch.distributions, closed forms and a numerical change of variables."""

import math

import pytest
import torch
from torch import distributions as D

from ascent.nets.distributions import Categorical, DiagGaussian, MultiCategorical, TanhGaussian


def test_categorical_matches_torch():
    torch.manual_seed(0)
    logits, other = torch.randn(5, 4), torch.randn(5, 4)
    a = torch.randint(0, 4, (5,))
    ours, ref = Categorical(logits), D.Categorical(logits=logits)
    torch.testing.assert_close(ours.log_prob(a), ref.log_prob(a))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(ours.kl(Categorical(other)), D.kl_divergence(ref, D.Categorical(logits=other)))


def test_categorical_sampling_frequencies():
    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.2, 0.7])
    samples = Categorical(probs.log().expand(100_000, 3)).sample()
    freq = torch.bincount(samples, minlength=3).float() / samples.numel()
    torch.testing.assert_close(freq, probs, atol=0.01, rtol=0)


def test_uniform_categorical_entropy_is_log_n():
    assert Categorical(torch.zeros(1, 6)).entropy().item() == pytest.approx(math.log(6))


def test_multicategorical_is_sum_of_parts():
    torch.manual_seed(0)
    logits = torch.randn(3, 5)
    a = torch.tensor([[0, 2], [1, 0], [1, 1]])
    m = MultiCategorical(logits, [2, 3])
    expected = D.Categorical(logits=logits[:, :2]).log_prob(a[:, 0]) + D.Categorical(logits=logits[:, 2:]).log_prob(a[:, 1])
    torch.testing.assert_close(m.log_prob(a), expected)
    assert m.sample().shape == (3, 2)


def test_diag_gaussian_matches_torch_and_closed_form_kl():
    torch.manual_seed(0)
    m1, m2 = torch.randn(4, 3), torch.randn(4, 3)
    s1, s2 = torch.randn(3) * 0.3, torch.randn(3) * 0.3
    a = torch.randn(4, 3)
    p, q = DiagGaussian(m1, s1), DiagGaussian(m2, s2)
    rp = D.Normal(m1, s1.exp())
    torch.testing.assert_close(p.log_prob(a), rp.log_prob(a).sum(-1))
    torch.testing.assert_close(p.entropy(), rp.entropy().sum(-1))
    # 1-D closed form: log(s2/s1) + (s1^2 + (m1-m2)^2) / (2 s2^2) - 1/2, summed over dims
    closed = (s2 - s1) + (torch.exp(2 * s1) + (m1 - m2) ** 2) / (2 * torch.exp(2 * s2)) - 0.5
    torch.testing.assert_close(p.kl(q), closed.sum(-1))
    torch.testing.assert_close(p.kl(p), torch.zeros(4), atol=1e-6, rtol=0)


def test_tanh_gaussian_log_prob_change_of_variables():
    """Density of a = tanh(u) by a numerical derivative: p_A(a) = p_U(atanh(a)) * |d atanh(a)/da|."""
    mean, log_std = torch.tensor([[0.3]]), torch.tensor([-0.5])
    dist = TanhGaussian(mean, log_std)
    for a in [-0.9, -0.2, 0.0, 0.5, 0.95]:
        h = 1e-5
        du_da = (math.atanh(a + h) - math.atanh(a - h)) / (2 * h)
        u = math.atanh(a)
        expected = D.Normal(0.3, math.exp(-0.5)).log_prob(torch.tensor(u)).item() + math.log(du_da)
        assert dist.log_prob(torch.tensor([[a]])).item() == pytest.approx(expected, abs=1e-4)


def test_tanh_gaussian_sample_log_prob_consistent():
    torch.manual_seed(0)
    dist = TanhGaussian(torch.randn(6, 2), torch.tensor([-0.3, 0.2]))
    a, logp = dist.sample_with_log_prob()
    assert (a.abs() < 1).all()
    torch.testing.assert_close(logp, dist.log_prob(a), atol=2e-3, rtol=1e-3)


def test_sample_with_log_prob_matches_log_prob():
    torch.manual_seed(0)
    for dist in (DiagGaussian(torch.randn(5, 3), torch.randn(3) * 0.2), Categorical(torch.randn(5, 4)),
                 MultiCategorical(torch.randn(5, 5), [2, 3])):
        a, logp = dist.sample_with_log_prob()
        torch.testing.assert_close(logp, dist.log_prob(a))

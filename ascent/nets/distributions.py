"""Action distributions: small immutable objects built from network outputs on every call.

Written by hand rather than through `torch.distributions` because they sit on the hot path (one per
rollout step and per minibatch) and need no argument validation or broadcasting machinery; tests
check them against `torch.distributions` and closed forms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def expln(log_std: torch.Tensor) -> torch.Tensor:
    """gSDE's std from log_std without exp's growth past 1 (Raffin et al. 2021, SB3's use_expln):
    exp(x) for x <= 0, log(1 + x) + 1 above (continuous, slope 1 at 0)."""
    positive = log_std > 0
    return torch.where(positive, torch.log1p(log_std * positive + 1e-6) + 1.0, torch.exp(log_std * ~positive))


def gsde_sigma(log_std: torch.Tensor, use_expln: bool, features: int, actions: int) -> torch.Tensor:
    """gSDE's sigma as a (features, actions) matrix from its log_std (a matrix, or one column)."""
    return (expln(log_std) if use_expln else log_std.exp()).expand(features, actions)


def gsde_log_std(z: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log of the action std given the features z: 1/2 log(sum_i z_i^2 sigma_ij^2 + 1e-6) (SB3's 1e-6)."""
    return 0.5 * torch.log(z.square() @ sigma.square() + 1e-6)


class Categorical:
    """pi(a|s) = softmax(logits)[a]. logits: (B, n), unnormalized."""

    def __init__(self, logits: torch.Tensor):
        self.raw = logits
        self._log_probs: torch.Tensor | None = None

    @property
    def logits(self) -> torch.Tensor:
        """Normalized log-probabilities, computed on first use."""
        if self._log_probs is None:
            self._log_probs = F.log_softmax(self.raw, -1)
        return self._log_probs

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        action = self.sample()
        return action, self.log_prob(action)

    def sample(self) -> torch.Tensor:
        # Inverse-CDF sampling: the number of cumulative probabilities below u ~ U(0, 1).
        # (torch.multinomial costs ~4x more per call on small CPU batches.)
        cdf = F.softmax(self.raw, -1).cumsum_(-1)
        u = torch.rand(cdf.shape[:-1] + (1,), dtype=cdf.dtype)
        return (cdf < u).sum(-1).clamp_(max=cdf.shape[-1] - 1)

    def mode(self) -> torch.Tensor:
        return self.raw.argmax(-1)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        # log softmax(logits)[a] as one fused op
        return -F.cross_entropy(self.raw, action.long(), reduction="none")

    def entropy(self) -> torch.Tensor:
        return -(self.logits.exp() * self.logits).sum(-1)

    def kl(self, other: "Categorical") -> torch.Tensor:
        """KL(self || other) = sum_a p(a) (log p(a) - log q(a))."""
        return (self.logits.exp() * (self.logits - other.logits)).sum(-1)


class MultiCategorical:
    """Independent categoricals, one per MultiDiscrete dimension. logits: (B, sum(nvec))."""

    def __init__(self, logits: torch.Tensor, nvec: list[int]):
        self.parts = [Categorical(chunk) for chunk in torch.split(logits, nvec, dim=-1)]

    def sample(self) -> torch.Tensor:
        return torch.stack([p.sample() for p in self.parts], dim=-1)

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        action = self.sample()
        return action, self.log_prob(action)

    def mode(self) -> torch.Tensor:
        return torch.stack([p.mode() for p in self.parts], dim=-1)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return sum(p.log_prob(action[..., i]) for i, p in enumerate(self.parts))

    def entropy(self) -> torch.Tensor:
        return sum(p.entropy() for p in self.parts)

    def kl(self, other: "MultiCategorical") -> torch.Tensor:
        return sum(p.kl(q) for p, q in zip(self.parts, other.parts))


class DiagGaussian:
    """N(mean, diag(exp(log_std)^2)); log-prob and entropy summed over action dims. mean: (B, d)."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def sample(self) -> torch.Tensor:
        return self.mean + self.log_std.exp() * torch.randn_like(self.mean)

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        """a = mean + std * eps and log N(a) = sum(-eps^2 / 2 - log_std) - d log sqrt(2 pi), from eps directly."""
        eps = torch.randn_like(self.mean)
        action = self.mean + self.log_std.exp() * eps
        return action, (eps.square().mul_(-0.5) - self.log_std).sum(-1) - LOG_SQRT_2PI * eps.shape[-1]

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        z = (action - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 + LOG_SQRT_2PI).sum(-1)

    def kl(self, other: "DiagGaussian") -> torch.Tensor:
        """KL(p||q) = sum log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2."""
        var_ratio = torch.exp(2 * (self.log_std - other.log_std))
        t = (self.mean - other.mean).square() * torch.exp(-2 * other.log_std)
        return (0.5 * (var_ratio + t) - 0.5 - (self.log_std - other.log_std)).sum(-1)


class TanhGaussian:
    """a = tanh(u), u ~ N(mean, std^2): log pi(a) = log N(u) - sum log(1 - tanh(u)^2) (SAC, App. C).

    Actions live in (-1, 1); the caller rescales to the env's bounds. log_prob needs the
    pre-squash sample u for exactness, so `sample_with_log_prob` returns both together.
    """

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.normal = DiagGaussian(mean, log_std)

    @staticmethod
    def _log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), numerically stable form.
        return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.normal.mean + self.normal.log_std.exp() * torch.randn_like(self.normal.mean)  # reparameterized
        return torch.tanh(u), self.normal.log_prob(u) - self._log_det_jacobian(u)

    def sample(self) -> torch.Tensor:
        return torch.tanh(self.normal.sample())

    def mode(self) -> torch.Tensor:
        return torch.tanh(self.normal.mean)

    def log_prob(self, action: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        u = torch.atanh(action.clamp(-1 + eps, 1 - eps))
        return self.normal.log_prob(u) - self._log_det_jacobian(u)


class NoisyTanhGaussian(TanhGaussian):
    """A TanhGaussian whose sample is u = mean + `noise`, a noise drawn outside (gSDE: z(s)^T Theta,
    reparameterized through Theta); log pi(tanh(u)) as TanhGaussian's, whose Gaussian the noise follows."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor):
        super().__init__(mean, log_std)
        self.noise = noise

    def sample_with_log_prob(self) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.normal.mean + self.noise
        return torch.tanh(u), self.normal.log_prob(u) - self._log_det_jacobian(u)

    def sample(self) -> torch.Tensor:
        return torch.tanh(self.normal.mean + self.noise)


"""The 1-D linear-Gaussian control problem of the policy-gradient lectures, solved exactly, so the
vanilla and the natural gradient can be drawn and followed without sampling noise.

  dynamics  s_{t+1} = s_t + a_t,  s_0 ~ N(0, s0_var)   (a random start: every t has E[s_t] = 0)
  policy    a_t ~ N(k s_t, sigma^2)                     (parameters theta = (k, sigma), sigma > 0)
  reward    r_t = -s_t^2 - c a_t^2,  t = 0 .. T-1       (c = action_cost)

Everything is exact through the second moments m_t = E[s_t^2] (the means are zero):
  m_0 = s0_var,  m_{t+1} = (1 + k)^2 m_t + sigma^2,  E[a_t^2] = k^2 m_t + sigma^2
  J(k, sigma) = -sum_t (m_t + c (k^2 m_t + sigma^2))
The vanilla gradient is autodiff through this recursion. The Fisher information of the trajectory
distribution: the dynamics are deterministic given (s_t, a_t), so grad log p(tau) = sum_t grad log
pi(a_t|s_t); the cross terms t != t' vanish (E[grad log pi_t | past] = 0), and per step, with
a = k s + sigma eps, d/dk log pi = eps s / sigma and d/dsigma log pi = (eps^2 - 1) / sigma, so
  F_kk = sum_t m_t / sigma^2,  F_sigma_sigma = 2 T / sigma^2,  F_k_sigma = 0   (E[eps^3] = E[eps] = 0).
The natural gradient is F^-1 grad J (Kakade 2001); a natural step is scaled so that
1/2 d^T F d = kl_step, the second-order KL between consecutive trajectory distributions.

Noise only costs (J falls with sigma^2 at every k), so the optimum is sigma -> 0 at the best
stationary gain k* of the noise-free problem, found here by maximizing J(k, 0) numerically; the
infinite-horizon Riccati gain is printed alongside (-0.618 for c = 1: P^2 = P + c, k = -P / (c + P)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ascent.errors import ConfigError

SIGMA_FLOOR = 1e-3  # a step that would take sigma below this (sigma must stay > 0) stops there


@dataclass(frozen=True)
class LinearGaussianLQR:
    """The problem's constants; methods take (k, sigma) as float64 tensors of any (broadcast) shape."""

    horizon: int = 20
    action_cost: float = 1.0
    s0_var: float = 1.0

    def __post_init__(self):
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon <= 0:
            raise ConfigError(f"horizon must be a positive integer, got {self.horizon!r}")
        for name in ("action_cost", "s0_var"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")

    def second_moments(self, k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """m_t = E[s_t^2] for t = 0..T-1, stacked on a last axis: (..., T)."""
        m = [torch.full(torch.broadcast_shapes(k.shape, sigma.shape), self.s0_var, dtype=torch.float64)]
        for _ in range(self.horizon - 1):
            m.append((1 + k) ** 2 * m[-1] + sigma**2)
        return torch.stack(m, -1)

    def expected_return(self, k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """J(k, sigma) = -sum_t (E[s_t^2] + c E[a_t^2]), exact."""
        m = self.second_moments(k, sigma)
        return -(m + self.action_cost * (k[..., None] ** 2 * m + sigma[..., None] ** 2)).sum(-1)

    def gradient(self, k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """(dJ/dk, dJ/dsigma) by autodiff through the moment recursion: (..., 2)."""
        k = k.detach().clone().requires_grad_(True)
        sigma = sigma.detach().clone().requires_grad_(True)
        gk, gs = torch.autograd.grad(self.expected_return(k, sigma).sum(), (k, sigma))  # points are independent
        return torch.stack([gk, gs], -1)

    def fisher_diagonal(self, k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """(F_kk, F_sigma_sigma) of the trajectory distribution (F_k_sigma = 0): (..., 2)."""
        with torch.no_grad():
            f_kk = self.second_moments(k, sigma).sum(-1) / sigma**2
            f_ss = torch.full_like(f_kk, 2.0 * self.horizon) / sigma**2
        return torch.stack([f_kk, f_ss], -1)

    def fisher(self, k: float, sigma: float) -> torch.Tensor:
        """The 2x2 Fisher matrix at one point."""
        return torch.diag(self.fisher_diagonal(torch.tensor(float(k), dtype=torch.float64),
                                               torch.tensor(float(sigma), dtype=torch.float64)))

    def natural_gradient(self, k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """F^-1 grad J (F is diagonal): (..., 2)."""
        return self.gradient(k, sigma) / self.fisher_diagonal(k, sigma)

    def optimal_gain(self) -> float:
        """k* = argmax_k J(k, 0): the best stationary linear gain without noise, for this horizon
        (a grid over [-2.5, 0.5], then golden-section search in the best cell's neighbourhood)."""
        zero = torch.zeros((), dtype=torch.float64)
        grid = torch.linspace(-2.5, 0.5, 3001, dtype=torch.float64)
        with torch.no_grad():
            i = int(self.expected_return(grid, zero).argmax())
            lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
            ratio = (math.sqrt(5) - 1) / 2
            for _ in range(60):
                a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
                ja, jb = (float(self.expected_return(torch.tensor(x, dtype=torch.float64), zero)) for x in (a, b))
                lo, hi = (lo, b) if ja > jb else (a, hi)
        return (lo + hi) / 2

    def riccati_gain(self) -> float:
        """The infinite-horizon optimal gain: P = 1 + P - P^2 / (c + P)  =>  P^2 = P + c, k = -P / (c + P)."""
        c = self.action_cost
        p = (1 + math.sqrt(1 + 4 * c)) / 2
        return -p / (c + p)

    def sample(self, k: float, sigma: float, n: int,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """n Monte Carlo trajectories: states, actions, rewards (n, T) and returns (n,)."""
        s = torch.randn(n, generator=generator, dtype=torch.float64) * math.sqrt(self.s0_var)
        states, actions = [], []
        for _ in range(self.horizon):
            a = k * s + sigma * torch.randn(n, generator=generator, dtype=torch.float64)
            states.append(s)
            actions.append(a)
            s = s + a
        states, actions = torch.stack(states, 1), torch.stack(actions, 1)
        rewards = -states**2 - self.action_cost * actions**2
        return {"states": states, "actions": actions, "rewards": rewards, "returns": rewards.sum(1)}


def ascent_path(problem: LinearGaussianLQR, method: str, start: tuple[float, float], iterations: int,
                lr: float = 0.002, kl_step: float = 0.02) -> np.ndarray:
    """Gradient ascent on J from `start` = (k, sigma), with exact gradients: (iterations + 1, 2).

    method "vanilla": theta <- theta + lr grad J.
    method "natural": theta <- theta + sqrt(2 kl_step / (g^T F^-1 g)) F^-1 g, a step of second-order
    KL exactly kl_step (the NPG step of Kakade 2001 / TRPO without the line search).
    sigma is kept >= SIGMA_FLOOR (a step past zero stops at the floor)."""
    if method not in ("vanilla", "natural"):
        raise ConfigError(f"method must be vanilla or natural, got {method!r}")
    theta = torch.tensor(start, dtype=torch.float64)
    path = [theta.clone()]
    for _ in range(iterations):
        k, sigma = theta[0], theta[1]
        g = problem.gradient(k, sigma)
        if method == "vanilla":
            step = lr * g
        else:
            nat = g / problem.fisher_diagonal(k, sigma)
            step = torch.sqrt(2 * kl_step / (g @ nat).clamp(min=1e-300)) * nat
        theta = theta + step
        theta[1] = theta[1].clamp(min=SIGMA_FLOOR)
        path.append(theta.clone())
    return torch.stack(path).numpy()


def lqr_field(out: str | Path = ".", horizon: int = 20, action_cost: float = 1.0, iterations: int = 100,
              lr: float = 0.002, kl_step: float = 0.02, start_k: float = -0.2, start_sigma: float = 1.0) -> dict:
    """Draw the vanilla and natural gradient fields over (k, sigma) with the two ascent paths from
    the same start, into OUT/lqr_field.png. Returns a summary: k*, the Riccati gain, the paths'
    final points and J, and the iteration at which each path's sigma first fell below start/4."""
    for name, value in (("lr", lr), ("kl_step", kl_step), ("start_sigma", start_sigma)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(start_k):
        raise ConfigError(f"start_k must be a finite number, got {start_k!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations <= 0:
        raise ConfigError(f"iterations must be a positive integer, got {iterations!r}")
    problem = LinearGaussianLQR(horizon, action_cost)
    start = (start_k, start_sigma)
    paths = {m: ascent_path(problem, m, start, iterations, lr, kl_step) for m in ("vanilla", "natural")}
    k_star = problem.optimal_gain()
    summary = {"k_star": k_star, "riccati_gain": problem.riccati_gain(), "start": (start_k, start_sigma),
               "iterations": iterations, "lr": lr, "kl_step": kl_step, "horizon": horizon}
    for m, path in paths.items():
        final = path[-1]
        collapsed = np.nonzero(path[:, 1] < start_sigma / 4)[0]
        summary[m] = {
            "final": (float(final[0]), float(final[1])),
            "J": float(problem.expected_return(torch.tensor(final[0]), torch.tensor(final[1]))),
            "distance_to_k_star": abs(float(final[0]) - k_star),
            "sigma_quarter_at": int(collapsed[0]) if len(collapsed) else None,
            "steps_at_sigma_floor": int((path[1:, 1] <= SIGMA_FLOOR).sum()),
            "path": path.tolist(),
        }
    summary["png"] = str(plot_lqr_field(problem, paths, k_star, Path(out) / "lqr_field.png"))
    return summary


def plot_lqr_field(problem: LinearGaussianLQR, paths: dict[str, np.ndarray], k_star: float, out: Path) -> Path:
    """Two panels (vanilla, natural): normalized gradient arrows over (k, sigma > 0) on contours of
    log10(-J), the path from the common start, and k* marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_points = np.concatenate(list(paths.values()))
    k_lo, k_hi = min(-1.4, all_points[:, 0].min() - 0.1), max(0.2, all_points[:, 0].max() + 0.1)
    s_hi = max(1.2, all_points[:, 1].max() * 1.1)
    kk, ss = torch.meshgrid(torch.linspace(k_lo, k_hi, 161, dtype=torch.float64),
                            torch.linspace(0.01, s_hi, 121, dtype=torch.float64), indexing="xy")
    with torch.no_grad():
        cost = torch.log10(-problem.expected_return(kk, ss))
    qk, qs = torch.meshgrid(torch.linspace(k_lo, k_hi, 22, dtype=torch.float64)[1:-1],
                            torch.linspace(0.03, s_hi, 16, dtype=torch.float64)[:-1], indexing="xy")
    fields = {"vanilla": problem.gradient(qk, qs), "natural": problem.natural_gradient(qk, qs)}
    titles = {"vanilla": "vanilla gradient  grad J", "natural": "natural gradient  F^-1 grad J"}

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=110, sharey=True, layout="constrained")
    for ax, method in zip(axes, ("vanilla", "natural")):
        cs = ax.contourf(kk.numpy(), ss.numpy(), cost.numpy(), levels=30, cmap="viridis_r", alpha=0.75)
        field = fields[method]
        direction = field / field.norm(dim=-1, keepdim=True).clamp(min=1e-300)  # arrows show direction only
        ax.quiver(qk.numpy(), qs.numpy(), direction[..., 0].numpy(), direction[..., 1].numpy(),
                  angles="xy", pivot="mid", scale=30, width=0.003, color="white")
        path = paths[method]
        ax.plot(path[:, 0], path[:, 1], "-o", color="tab:red", ms=2.5, lw=1.4,
                label=f"{method} path ({len(path) - 1} steps)")
        ax.plot(*path[0], "s", color="black", ms=7, label=f"start ({path[0, 0]:.2f}, {path[0, 1]:.2f})")
        ax.plot(*path[-1], "D", color="tab:red", mec="black", ms=7, label=f"end ({path[-1, 0]:.3f}, {path[-1, 1]:.3f})")
        ax.axvline(k_star, color="orange", ls="--", lw=1.2)
        ax.plot(k_star, 0, "*", color="orange", mec="black", ms=16, clip_on=False, zorder=5,
                label=f"optimum k* = {k_star:.3f}, sigma -> 0")
        ax.set_xlim(k_lo, k_hi)
        ax.set_ylim(0, s_hi)
        ax.set_xlabel("k (policy mean gain: a ~ N(k s, sigma^2))")
        ax.set_title(titles[method])
        ax.legend(loc="upper left", fontsize=7.5, framealpha=0.85)
    axes[0].set_ylabel("sigma (exploration noise)")
    fig.colorbar(cs, ax=axes, label="log10 expected cost  -J(k, sigma)", shrink=0.9)
    cost_term = "a^2" if problem.action_cost == 1 else f"{problem.action_cost:g} a^2"
    fig.suptitle(f"s' = s + a, s_0 ~ N(0, {problem.s0_var:g}), r = -s^2 - {cost_term}, T = {problem.horizon}: "
                 "exact J, gradient and Fisher; arrows show direction only", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out

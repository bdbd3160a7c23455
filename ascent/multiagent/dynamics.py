"""Learning in matrix games, watched against the equilibria: fictitious play, independent
Q-learners and projected gradient ascent on the strategy simplex, and the figure that draws them.

- Fictitious play (Brown 1951): each player best-responds to the other's empirical mixture of past
  actions; the empirical mixtures converge to a Nash equilibrium in zero-sum games (Robinson 1951).
- Independent Q-learners (Claus & Boutilier 1998): each player keeps Q(a) of its own actions,
  Q(a) <- Q(a) + alpha (r - Q(a)), acting epsilon-greedily, blind to the other.
- Gradient ascent (Singh, Kearns & Mansour 2000, IGA): x <- proj(x + eta A y), y <- proj(y + eta B^T x);
  in matching pennies and rock-paper-scissors it circles the mixed equilibrium instead of reaching it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ascent.multiagent.normal_form import NormalFormGame, support_enumeration


def fictitious_play(game: NormalFormGame, iterations: int) -> np.ndarray:
    """(iterations, 2, n_actions max) empirical mixtures after each round (play starts at the first actions;
    ties go to the lowest-numbered action)."""
    A, B = game.row, game.column
    m, n = A.shape
    counts = [np.zeros(m), np.zeros(n)]
    counts[0][0] += 1
    counts[1][0] += 1
    out = np.zeros((iterations, 2, max(m, n)))
    for t in range(iterations):
        x, y = counts[0] / counts[0].sum(), counts[1] / counts[1].sum()
        counts[0][int(np.argmax(A @ y))] += 1  # the row player's best response to the column player's mixture
        counts[1][int(np.argmax(x @ B))] += 1
        out[t, 0, :m], out[t, 1, :n] = counts[0] / counts[0].sum(), counts[1] / counts[1].sum()
    return out


def independent_q_learners(game: NormalFormGame, steps: int, alpha: float = 0.1, epsilon: float = 0.1,
                           seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """(steps, 2, n_actions max) each learner's epsilon-greedy mixture after each step, and the final Q tables."""
    rng = np.random.default_rng(seed)
    A, B = game.row, game.column
    sizes = A.shape
    q = [np.zeros(k) for k in sizes]
    out = np.zeros((steps, 2, max(sizes)))

    def policy(values: np.ndarray) -> np.ndarray:
        p = np.full(len(values), epsilon / len(values))
        p[int(np.argmax(values))] += 1 - epsilon
        return p

    for t in range(steps):
        a = [int(rng.choice(k, p=policy(q[i]))) for i, k in enumerate(sizes)]
        rewards = (A[a[0], a[1]], B[a[0], a[1]])
        for i in range(2):
            q[i][a[i]] += alpha * (rewards[i] - q[i][a[i]])
            out[t, i, :sizes[i]] = policy(q[i])
    return out, q


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """The Euclidean projection onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    rho = np.nonzero(u * np.arange(1, len(v) + 1) > (css - 1))[0][-1]
    return np.maximum(v - (css[rho] - 1) / (rho + 1.0), 0.0)


def gradient_ascent(game: NormalFormGame, steps: int, eta: float = 0.01, start=None) -> np.ndarray:
    """(steps, 2, n_actions max) strategies of simultaneous projected gradient ascent on each player's payoff."""
    A, B = game.row, game.column
    m, n = A.shape
    x, y = (np.asarray(s, float) for s in start) if start is not None else (np.eye(m)[0] * 0.8 + 0.2 / m,
                                                                           np.eye(n)[-1] * 0.8 + 0.2 / n)
    out = np.zeros((steps, 2, max(m, n)))
    for t in range(steps):
        x, y = project_to_simplex(x + eta * (A @ y)), project_to_simplex(y + eta * (B.T @ x))
        out[t, 0, :m], out[t, 1, :n] = x, y
    return out


def draw(game: NormalFormGame, path: str | Path, iterations: int = 10_000, seed: int = 0) -> dict:
    """The three dynamics on the strategy space with the Nash equilibria marked: for 2x2 games the unit
    square of (P(row's first action), P(column's first action)); for 3 actions the row player's
    simplex. Returns the final points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {"fictitious play": fictitious_play(game, iterations),
            "independent Q-learners": independent_q_learners(game, iterations, seed=seed)[0],
            "gradient ascent": gradient_ascent(game, iterations)}
    nash = support_enumeration(game)
    m, n = game.row.shape
    fig, ax = plt.subplots(figsize=(6, 5.5))
    if m == 2 and n == 2:
        to_xy = lambda traj: (traj[:, 0, 0], traj[:, 1, 0])  # noqa: E731
        ax.set(xlabel=f"P(row plays {game.actions[0][0]})", ylabel=f"P(column plays {game.actions[1][0]})",
               xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
        points = [(x[0], y[0]) for x, y in nash]
    elif m == 3:
        corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
        to_xy = lambda traj: tuple((traj[:, 0, :3] @ corners).T)  # noqa: E731
        ax.plot(*np.vstack([corners, corners[:1]]).T, color="grey", lw=0.8)
        for corner, name in zip(corners, game.actions[0]):
            ax.annotate(name, corner, ha="center", va="bottom" if corner[1] > 0 else "top")
        ax.set(title="the row player's strategy on the simplex", aspect="equal")
        ax.axis("off")
        points = [tuple(x @ corners) for x, _ in nash]
    else:
        plt.close(fig)
        return {}
    for (name, traj), color in zip(runs.items(), ("tab:blue", "tab:green", "tab:orange")):
        xs, ys = to_xy(traj)
        ax.plot(xs, ys, lw=0.8, color=color, label=name, alpha=0.8)
        ax.plot(xs[-1], ys[-1], "o", color=color)
    ax.plot(*zip(*points), "*", color="red", markersize=14, label="Nash equilibria", linestyle="none")
    ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{game.name}: learning dynamics ({iterations:,} iterations)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {name: traj[-1].tolist() for name, traj in runs.items()}

"""Exact solutions of small known MDPs, to check what the tabular learners learn.

A Gymnasium toy-text env (FrozenLake, CliffWalking, Taxi) exposes its model as `env.unwrapped.P`:
P[s][a] = [(prob, s', r, terminated), ...]. `TabularModel` turns it into arrays; with them

  value iteration (Bellman optimality)   V(s) <- max_a [ R(s,a) + gamma sum_s' C(s,a,s') V(s') ]
  policy evaluation (Bellman expectation) V = R_pi + gamma C_pi V: a linear solve, or H backups for
                                          an H-step episode (a time limit), where gamma may be 1

with R(s,a) the expected reward and C(s,a,s') = P(s', not terminated | s, a): termination stops
the bootstrap, so a terminal state's own value never enters. Undiscounted H-step evaluation of a
policy gives its exact success rate on FrozenLake (reward 1 only at the goal) under the env's
time limit — what 1000 evaluation episodes estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from ascent.errors import EnvError


@dataclass
class TabularModel:
    """A finite MDP as arrays. reward: (S, A) expected reward; cont: (S, A, S) probability of moving
    to s' without terminating; start: (S,) initial-state distribution; horizon: the env's time limit."""

    reward: np.ndarray
    cont: np.ndarray
    start: np.ndarray
    horizon: int | None = None

    @classmethod
    def from_env(cls, env: str | gym.Env) -> "TabularModel":
        """The model of an env id or instance whose `unwrapped.P` holds its transitions."""
        made = isinstance(env, str)
        env = gym.make(env) if made else env
        try:
            u = env.unwrapped
            if not hasattr(u, "P"):
                raise EnvError(f"{type(u).__name__} has no transition model `P`; value iteration needs a "
                               "toy-text env such as FrozenLake-v1, CliffWalking-v1 or Taxi-v4")
            n_s, n_a = int(env.observation_space.n), int(env.action_space.n)
            reward = np.zeros((n_s, n_a))
            cont = np.zeros((n_s, n_a, n_s))
            for s in range(n_s):
                for a in range(n_a):
                    for prob, s2, r, terminated in u.P[s][a]:
                        reward[s, a] += prob * r
                        if not terminated:
                            cont[s, a, s2] += prob
            start = np.asarray(getattr(u, "initial_state_distrib", np.full(n_s, 1.0 / n_s)), dtype=np.float64)
            horizon = env.spec.max_episode_steps if env.spec is not None else None
            return cls(reward, cont, start, horizon)
        finally:
            if made:
                env.close()


def _check_gamma(gamma: float, horizon: int | None) -> None:
    if not 0.0 <= gamma <= 1.0 or (gamma == 1.0 and horizon is None):
        raise ValueError(f"gamma must be in [0, 1) (or 1 with a finite horizon), got {gamma}")


def value_iteration(model: TabularModel, gamma: float, eps: float = 0.0, tol: float = 1e-10,
                    max_iterations: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V*, Q*, greedy policy) of the infinite-horizon problem, iterated until the Bellman optimality
    residual max|V_{k+1} - V_k| < tol. gamma = 1 converges when the problem is a stochastic shortest
    path (CliffWalking: every step costs, some policy always ends); otherwise RuntimeError.
    Ties go to the lowest action.

    eps > 0 gives instead the values of the best eps-greedy policy, backing up
    V(s) = eps mean_a Q(s, a) + (1 - eps) max_a Q(s, a): the fixed point SARSA and expected SARSA
    converge to with a constant epsilon (Q-learning's is eps = 0, whatever it explores with)."""
    if not 0.0 <= gamma <= 1.0 or not 0.0 <= eps <= 1.0:
        raise ValueError(f"gamma and eps must be in [0, 1], got gamma={gamma}, eps={eps}")
    v = np.zeros(model.reward.shape[0])
    for _ in range(max_iterations):
        q = model.reward + gamma * model.cont @ v  # (S, A)
        v_new = eps * q.mean(axis=1) + (1.0 - eps) * q.max(axis=1)
        if np.max(np.abs(v_new - v)) < tol:
            v = v_new
            break
        v = v_new
    else:
        raise RuntimeError(f"value iteration did not converge to {tol} in {max_iterations} iterations")
    q = model.reward + gamma * model.cont @ v
    return v, q, greedy(q)


def greedy(q: np.ndarray) -> np.ndarray:
    """argmax_a Q(s, a) per state, ties to the lowest action (how every greedy choice in ascent breaks them)."""
    return np.asarray(q).argmax(axis=1)


def evaluate_policy_exact(model: TabularModel, policy: np.ndarray, gamma: float,
                          horizon: int | None = None) -> np.ndarray:
    """V^pi(s) for a deterministic policy (S,) of actions or a stochastic one (S, A) of probabilities.
    horizon=None: the infinite-horizon solution of (I - gamma C_pi) V = R_pi (gamma < 1);
    horizon=H: the expected return of at most H steps (gamma may be 1)."""
    _check_gamma(gamma, horizon)
    policy = np.asarray(policy)
    n_s = model.reward.shape[0]
    probs = policy if policy.ndim == 2 else np.eye(model.reward.shape[1])[policy]  # (S, A)
    r_pi = (probs * model.reward).sum(1)  # (S,)
    c_pi = np.einsum("sa,sat->st", probs, model.cont)  # (S, S)
    if horizon is None:
        return np.linalg.solve(np.eye(n_s) - gamma * c_pi, r_pi)
    v = np.zeros(n_s)
    for _ in range(horizon):
        v = r_pi + gamma * c_pi @ v
    return v


def expected_return(model: TabularModel, policy: np.ndarray, gamma: float = 1.0, horizon: int | None = None) -> float:
    """The policy's expected return from the start distribution; by default undiscounted over the
    env's time limit (FrozenLake: the success rate), which is what evaluation episodes measure."""
    horizon = horizon if horizon is not None else model.horizon
    return float(model.start @ evaluate_policy_exact(model, policy, gamma, horizon))


# ---- showing a table ----------------------------------------------------------------------------------
ARROWS = {"FrozenLakeEnv": "←↓→↑", "CliffWalkingEnv": "↑→↓←"}  # each env's action order


def grid_layout(env: str | gym.Env) -> tuple[int, int, list[str], str] | None:
    """(rows, cols, labels, arrows) of a grid world whose state is row * cols + col (FrozenLake,
    CliffWalking), else None. labels[s] marks the cells where no action matters: FrozenLake's holes H
    and goal G, CliffWalking's cliff C and goal G; '' elsewhere. arrows[a] draws action a."""
    e = gym.make(env) if isinstance(env, str) else env
    u = e.unwrapped
    try:
        shape = (getattr(u, "nrow", None), getattr(u, "ncol", None))
        if None in shape:
            shape = tuple(getattr(u, "shape", ()) or ())
        n = int(e.observation_space.n) if isinstance(e.observation_space, gym.spaces.Discrete) else -1
        if len(shape) != 2 or shape[0] * shape[1] != n:
            return None
        rows, cols = int(shape[0]), int(shape[1])
        labels = [""] * n
        if getattr(u, "desc", None) is not None:
            labels = [c.decode() if c in (b"H", b"G") else "" for c in np.asarray(u.desc).ravel()]
        else:
            for s in range(n):  # the cells only ever entered by a terminating transition
                for a in getattr(u, "P", {}).get(s, {}):
                    for _, s2, _, terminated in u.P[s][a]:
                        if terminated:
                            labels[s2] = "G"
            cliff = getattr(u, "_cliff", None)
            if cliff is not None:
                labels = ["C" if c else lab for c, lab in zip(np.asarray(cliff).ravel(), labels)]
        return rows, cols, labels, ARROWS.get(type(u).__name__, "0123456789")
    finally:
        if isinstance(env, str):
            e.close()


def policy_grid(q: np.ndarray, env: str | gym.Env) -> str:
    """The greedy policy of a table as text: arrows on a grid world, else the action of each state."""
    q = np.asarray(q)
    layout = grid_layout(env)
    if layout is None:
        actions = greedy(q)
        lines = [f"greedy action per state ({len(actions)} states):"]
        lines += [f"{s:5d}: " + " ".join(str(a) for a in actions[s:s + 25]) for s in range(0, len(actions), 25)]
        return "\n".join(lines)
    rows, cols, labels, symbols = layout
    cells = [lab or symbols[a] for a, lab in zip(greedy(q), labels)]
    arrows = "\n".join(" ".join(cells[r * cols:(r + 1) * cols]) for r in range(rows))
    values = "\n".join(" ".join(f"{v:6.2f}" for v in q.max(1)[r * cols:(r + 1) * cols]) for r in range(rows))
    return f"greedy policy:\n{arrows}\nmax_a Q(s, a):\n{values}"


def table_report(q: np.ndarray, env: str, gamma: float) -> str:
    """policy_grid plus, where the env has a model, the greedy policy's exact expected return next to
    the optimal one (undiscounted, over the time limit or 1000 steps)."""
    text = policy_grid(q, env)
    try:
        model = TabularModel.from_env(env)
    except EnvError:
        return text
    horizon = model.horizon or 1000
    _, _, best = value_iteration(model, gamma)
    ours, opt = expected_return(model, greedy(q), horizon=horizon), expected_return(model, best, horizon=horizon)
    return (f"{text}\ngreedy policy's expected return (exact, undiscounted, {horizon} steps): {ours:.4f}; "
            f"optimal policy at gamma={gamma:g}: {opt:.4f}")


def plot_q_table(q: np.ndarray, env: str | gym.Env, out: str | Path, title: str | None = None) -> Path:
    """PNG of a table: on a grid world a heat-map of max_a Q(s, a) with the greedy action drawn in
    every cell; otherwise Q itself as a (states x actions) image. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = np.asarray(q)
    layout = grid_layout(env)
    if layout is None:
        fig, ax = plt.subplots(figsize=(4, 6), dpi=110)
        im = ax.imshow(q, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_xlabel("action")
        ax.set_ylabel("state")
    else:
        rows, cols, labels, symbols = layout
        fig, ax = plt.subplots(figsize=(0.7 * cols + 1.5, 0.7 * rows + 0.8), dpi=110)
        # Cells where no action matters (holes, cliff, goal) are grey, off the colour scale.
        values = np.where([bool(lab) for lab in labels], np.nan, q.max(1)).reshape(rows, cols)
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
        im = ax.imshow(values, cmap=cmap, interpolation="nearest")
        low, high = np.nanmin(values), np.nanmax(values)
        for s, (a, lab) in enumerate(zip(greedy(q), labels)):
            dark = not lab and values.flat[s] < (low + high) / 2
            ax.text(s % cols, s // cols, lab or symbols[a], ha="center", va="center", fontsize=13,
                    color="white" if dark else "black", fontweight="bold" if lab else "normal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=ax, label="max_a Q(s, a)" if layout is not None else "Q(s, a)")
    ax.set_title(title or "Q table")
    fig.tight_layout()
    from ascent.core.plotting import save_figure

    return save_figure(fig, out)

"""Sutton & Barto (2018)'s Figures 8.2, 8.4 and 8.5, drawn from ascent's Dyna-Q (issue 18).

  python benchmarks/dyna_figures.py [--runs 30] [--out benchmarks/figures]

  Figure 8.2  the Dyna maze: steps per episode over the first 50 episodes, n = 0, 5, 50 planning
              steps, alpha 0.1, epsilon 0.1, gamma 0.95, Q = 0 at the start, ties broken at random
  Figure 8.4  the blocking maze (its opening moves after 1000 steps): cumulative reward over 3000
              steps, Dyna-Q against Dyna-Q+
  Figure 8.5  the shortcut maze (a shorter path opens after 3000 steps): cumulative reward over 6000

Averages of `--runs` independent runs. The book gives no parameters for Figures 8.4 and 8.5; these
use n = 10 planning steps, alpha = 1 (the model is deterministic: one update sets Q to its target)
and kappa = 1e-3 (BONUS below). The runs are learners of one `DynaTables` (ascent/model_based/dyna.py),
stepped together through the same `learn` (the direct update, the model, the planning) and the same
epsilon-greedy choice that `ascent train dynaq` runs, each in its own `ascent.envs.mazes.Maze`
(the registered env without its 10,000-step time limit, which the book does not have). Writes
dyna-figure-8-{2,4,5}.png to --out and prints the numbers. On the changing mazes the shortest path
is 10 steps before the blocking maze's change and after the shortcut maze's, 16 otherwise: an
epsilon-greedy agent on the 10-step path takes about 11-13 steps an episode (over 70 goals in 1000
steps), on the 16-step path about 17-19.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ascent.algorithms.tabular import epsilon_greedy
from ascent.envs.mazes import COLS, LAYOUTS, ROWS, Maze
from ascent.model_based.dyna import DynaQConfig, DynaTables

BOOK = dict(learning_rate=0.1, epsilon=0.1, gamma=0.95)  # Figure 8.2's parameters
CHANGING = dict(BOOK, learning_rate=1.0, planning_steps=10)  # Figures 8.4 and 8.5 (not given in the book)
BONUS = 1e-3  # Dyna-Q+'s kappa


def simulate(layout: str, config: DynaQConfig, runs: int, seed: int, steps: int | None = None,
             episodes: int | None = None) -> tuple[np.ndarray, list[list[int]]]:
    """`runs` learners on their own mazes for `steps` steps each, or until each has ended `episodes`
    episodes. Returns the cumulative reward (runs, steps taken) and each run's episode lengths.
    Acting and planning draw from two generators, so that, as in the book, a seed gives every n the
    same first episode (Q stays 0 until the goal is first reached, whatever the planning)."""
    act_rng, plan_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    tables = DynaTables(runs, ROWS * COLS, 4, config.q_init)
    mazes = [Maze(layout) for _ in range(runs)]
    s = np.array([m.reset(seed=seed + i)[0] for i, m in enumerate(mazes)], dtype=np.int64)
    rows = np.arange(runs)
    lengths: list[list[int]] = [[] for _ in range(runs)]
    length, rewards = np.zeros(runs, dtype=np.int64), []
    while (steps is not None and len(rewards) < steps) or \
            (episodes is not None and min(len(ep) for ep in lengths) < episodes):
        a = epsilon_greedy(tables.q.numpy()[rows, s], config.epsilon, act_rng)
        outcome = [m.step(int(action)) for m, action in zip(mazes, a)]
        s2 = np.array([o[0] for o in outcome], dtype=np.int64)
        r = np.array([o[1] for o in outcome])
        terminated = np.array([o[2] for o in outcome])
        tables.learn(s, a, r, s2, terminated, config, plan_rng)
        rewards.append(r)
        length += 1
        for i in np.flatnonzero(terminated):  # back to the start: the next episode
            lengths[i].append(int(length[i]))
            length[i] = 0
            s2[i] = mazes[i].reset()[0]
        s = s2
    return np.cumsum(np.array(rewards).T, axis=1), lengths


def figure_8_2(runs: int, out: Path) -> None:
    import matplotlib.pyplot as plt

    curves = {}
    for n in (0, 5, 50):
        start = time.perf_counter()
        _, lengths = simulate("dyna", DynaQConfig(**BOOK, planning_steps=n), runs, seed=0, episodes=50)
        curves[n] = np.mean([ep[:50] for ep in lengths], axis=0)
        print(f"  n={n}: {time.perf_counter() - start:.1f} s", flush=True)
    shown = [2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50]
    print("\nFigure 8.2, the Dyna maze: mean steps per episode (optimum 14), episode:")
    print("| n | ep 1 | " + " | ".join(str(e) for e in shown) + " | first episode <= 20 steps |")
    print("|---|---|" + "---|" * len(shown) + "---|")
    for n, curve in curves.items():
        near = np.flatnonzero(curve <= 20)
        print(f"| {n} | {curve[0]:.0f} | " + " | ".join(f"{curve[e - 1]:.1f}" for e in shown) +
              f" | {near[0] + 1 if len(near) else '-'} |")
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, curve in curves.items():
        ax.plot(range(2, 51), curve[1:], label=f"{n} planning steps" + (" (direct RL only)" if n == 0 else ""))
    ax.set(xlabel="episodes", ylabel="steps per episode", ylim=(0, 800), title=f"Figure 8.2: Dyna maze, {runs} runs")
    ax.legend()
    fig.savefig(out / "dyna-figure-8-2.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def figure_changing(layout: str, steps: int, number: str, runs: int, out: Path) -> None:
    import matplotlib.pyplot as plt

    change = LAYOUTS[layout][2]
    curves, last = {}, {}
    for name, plus in (("Dyna-Q", False), ("Dyna-Q+", True)):
        start = time.perf_counter()
        cumulative, lengths = simulate(layout, DynaQConfig(**CHANGING, plus=plus, kappa=BONUS), runs, seed=1,
                                       steps=steps)
        after = cumulative[:, -1] - cumulative[:, change - 1]  # (runs,) goals reached since the change
        final = cumulative[:, -1] - cumulative[:, -1001]  # (runs,) goals in the last 1000 steps
        curves[name], last[name] = cumulative.mean(0), ((after > 0).sum(), final.mean(), (final > 1000 / 14).sum())
        print(f"  {name}: {time.perf_counter() - start:.1f} s", flush=True)
    marks = sorted({change, *range(steps // 6, steps + 1, steps // 6)})
    print(f"\nFigure {number}, the {layout} maze (changes after {change} steps): mean cumulative reward at step")
    print("| agent | " + " | ".join(str(m) for m in marks) + f" | reward in the last {steps - change} steps | "
          "runs reaching the goal after the change | last 1000 steps: reward (runs under 14 steps an episode) |")
    print("|---|" + "---|" * len(marks) + "---|---|---|")
    for name, curve in curves.items():
        reached, final, fast = last[name]
        print(f"| {name} | " + " | ".join(f"{curve[m - 1]:.1f}" for m in marks) +
              f" | {curve[-1] - curve[change - 1]:.1f} | {reached}/{runs} | {final:.1f} ({fast}/{runs}) |")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(np.arange(1, steps + 1), curve, label=name)
    ax.axvline(change, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="time steps", ylabel="cumulative reward", title=f"Figure {number}: {layout} maze, {runs} runs")
    ax.legend()
    fig.savefig(out / f"dyna-figure-{number.replace('.', '-')}.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="independent runs averaged (the book: 30)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "figures"), help="folder of the PNGs")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    figure_8_2(args.runs, out)
    figure_changing("blocking", 3000, "8.4", args.runs, out)
    figure_changing("shortcut", 6000, "8.5", args.runs, out)
    print(f"\nwall time {time.perf_counter() - start:.1f} s; figures in {out}")


if __name__ == "__main__":
    main()

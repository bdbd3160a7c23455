"""Learning curves from run directories: one line per run, or mean and spread over seeds."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ascent.errors import CheckpointError, ConfigError, did_you_mean
from ascent.core.logger import read_csv


def load_curve(run_dir: str | Path, column: str = "episode_return") -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a metric from a run's metrics.csv, skipping rows where it is empty."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise CheckpointError(f"{run_dir} has no metrics.csv: is it an ascent run directory?")
    rows = [r for r in read_csv(path) if r.get(column, "") not in ("", None)]
    steps = np.array([float(r["steps"]) for r in rows])
    values = np.array([float(r[column]) for r in rows])
    return steps, values


def check_column(run_dirs: list[str | Path], column: str) -> None:
    """ConfigError when no run's metrics.csv has the column, listing the columns there are."""
    columns: list[str] = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "metrics.csv"
        if path.exists():
            with open(path, newline="") as f:
                columns += [c for c in next(csv.reader(f), []) if c != "steps" and c not in columns]
    if columns and column not in columns:
        raise ConfigError(f"no run has a column {column!r}{did_you_mean(column, columns)}; the columns: {', '.join(columns)}")


def run_label(run_dir: str | Path) -> str:
    """'algo env' of a run (runs sharing a label are seeds of one experiment)."""
    cfg = Path(run_dir) / "config.json"
    if cfg.exists():
        info = json.loads(cfg.read_text())
        return f"{info.get('algo', '?')} {info.get('env_id', '?')}"
    return Path(run_dir).name


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (same length; the first points average what exists so far)."""
    if window <= 1 or len(values) == 0:
        return values
    c = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_runs(run_dirs: list[str | Path], out: str | Path, column: str = "episode_return",
              smoothing: int = 10, title: str | None = None) -> Path:
    """Plot runs on one figure. Runs with the same label (algorithm and env) are seeds: drawn as
    their mean with a band of +-1 std, interpolated on a common step grid. Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run in run_dirs:
        steps, values = load_curve(run, column)
        if len(steps):
            groups[run_label(run)].append((steps, smooth(values, smoothing)))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, curves in groups.items():
        if len(curves) == 1:
            ax.plot(*curves[0], label=label, lw=1.6)
            continue
        end = min(s[-1] for s, _ in curves)
        start = max(s[0] for s, _ in curves)
        grid = np.linspace(start, end, 200)
        ys = np.stack([np.interp(grid, s, v) for s, v in curves])
        mean, std = ys.mean(0), ys.std(0)
        ax.plot(grid, mean, label=f"{label} (mean of {len(curves)} seeds)", lw=1.6)
        ax.fill_between(grid, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_title(title or "learning curve")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no {column} logged yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return save_figure(fig, out)


def save_figure(fig, out: str | Path) -> Path:
    """Write a matplotlib figure (creating the folder) and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out

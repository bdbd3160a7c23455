"""The run around an agent: the training loop's bookkeeping, the run directory, metrics, checkpoint
cadence, resume and the final plot. None of this is an algorithm's business: an algorithm fills in
the contract of `ascent.core.agent.Agent`, and `Agent.learn` / `Agent.resume` hand it to `train` /
`resume` here.

A run directory holds config.json, metrics.csv, tb/, checkpoints/last.pt (+ last.replay.pt),
model.pt, learning_curve.png and eval.json (README, "Run directory").
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ascent.core.logger import MetricsLog, ProgressBar, truncate_csv
from ascent.errors import CheckpointError, ConfigError, TrainingDiverged

# A callback gets the agent and the iteration's metrics; returning False stops training.
Callback = Callable[[Any, dict], Any]


class RunDirectory:
    """The files of one run, by name."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.csv"
        self.checkpoint = self.path / "checkpoints" / "last.pt"
        self.model = self.path / "model.pt"
        self.curve = self.path / "learning_curve.png"

    def write_config(self, info: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / "config.json.tmp"
        tmp.write_text(json.dumps({**info, "command": sys.argv}, indent=2) + "\n")
        tmp.replace(self.config)

    def read_config(self) -> dict[str, Any]:
        """config.json, or CheckpointError if the directory or the file is missing or unreadable."""
        if not self.path.is_dir():
            raise CheckpointError(f"no run directory at {self.path}")
        if not self.config.exists():
            raise CheckpointError(f"{self.path} is not an ascent run directory (no config.json)")
        try:
            return json.loads(self.config.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{self.config} is corrupt ({err}); the run's config cannot be read") from None

    def trained_model(self) -> Path:
        """model.pt, or the last checkpoint of a run that has not finished."""
        for path in (self.model, self.checkpoint):
            if path.exists():
                return path
        raise CheckpointError(f"{self.path} has no model.pt or checkpoint yet; there is no trained agent in it")


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run directory's config.json, or CheckpointError if missing or unreadable."""
    return RunDirectory(run_dir).read_config()


def next_multiple(steps: int, every: int) -> int:
    """The first multiple of `every` after `steps` (0 when `every` is 0: never)."""
    return (steps // every + 1) * every if every else 0


def check_finite(agent, metrics: dict[str, float], parameters: bool = True) -> None:
    """TrainingDiverged if a metric (or, with `parameters`, a network parameter) is NaN or inf.
    Parameters are scanned when a metric is bad and before every checkpoint, not every iteration."""
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad and not parameters:
        return
    bad_params = agent.non_finite_parameters()
    if bad or bad_params:
        where = ", ".join(bad + bad_params[:3])
        run = agent.run
        kept = (f"the last good checkpoint {run.checkpoint} is kept" if run is not None and run.checkpoint.exists()
                else "no checkpoint had been written yet")
        raise TrainingDiverged(
            f"training diverged at iteration {agent.iteration} (step {agent.num_steps}): non-finite {where}; "
            f"{kept}; try a lower learning_rate, max_grad_norm, or normalize_obs/normalize_reward"
        )


def episode_metrics(agent) -> dict[str, float]:
    """Mean return and length of the episodes that ended since the last row."""
    episodes, agent.iteration_episodes = agent.iteration_episodes, []
    if not episodes:
        return {}
    return {"episode_return": float(np.mean([r for r, _ in episodes])),
            "episode_length": float(np.mean([n for _, n in episodes]))}


def train(agent, total_steps: int, callbacks: Iterable[Callback] | Callback = (), progress_bar: bool | None = None):
    """Train `agent` for `total_steps` more env steps (see `Agent.learn`). Returns the agent.

    Every iteration: periodic evaluation, a metrics row every `log_interval` iterations (CSV,
    TensorBoard), the progress bar, a checkpoint every `checkpoint_every` steps, the callbacks;
    NaN/inf in a metric or parameter stops training with TrainingDiverged (the last good checkpoint
    kept). With a run directory, the end writes the checkpoint, model.pt and the learning curve.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps <= 0:
        raise ConfigError(f"total_steps must be a positive integer, got {total_steps!r}")
    callbacks = [callbacks] if callable(callbacks) else list(callbacks)
    c, run = agent.config, agent.run
    agent.target_steps = agent.num_steps + int(total_steps)
    log = None
    if run is not None:
        run.write_config(agent.run_info())
        log = MetricsLog(run.path)
    agent.start_episodes()
    show = (agent.verbose > 0) if progress_bar is None else progress_bar
    bar = ProgressBar(agent.target_steps, agent.num_steps, enabled=show, desc=f"{agent.algo} {agent.env_id or ''}".strip())
    start, start_steps = time.perf_counter(), agent.num_steps
    next_checkpoint = next_multiple(agent.num_steps, c.checkpoint_every)
    next_eval = next_multiple(agent.num_steps, c.eval_every)
    try:
        while agent.num_steps < agent.target_steps:
            before = agent.num_steps
            metrics = agent.train_iteration()
            agent.iteration += 1
            check_finite(agent, metrics, parameters=False)  # parameters: before each checkpoint
            if agent.episode_returns:
                metrics["episode_return_100"] = float(np.mean(agent.episode_returns))
            if next_eval and agent.num_steps >= next_eval:
                ev = agent.evaluate(c.eval_episodes)
                metrics["eval_return"], metrics["eval_return_std"] = ev["mean_return"], ev["std_return"]
                next_eval = next_multiple(agent.num_steps, c.eval_every)
            # A row every log_interval iterations (and with every evaluation); the episodes that
            # ended since the last row are averaged into it.
            if log is not None and (agent.iteration % c.log_interval == 0 or "eval_return" in metrics):
                elapsed = time.perf_counter() - start
                metrics.update(episode_metrics(agent))
                metrics["steps_per_s"] = (agent.num_steps - start_steps) / max(elapsed, 1e-9)
                metrics["wall_time"] = elapsed
                log.write(agent.num_steps, metrics)
            bar.update(agent.num_steps - before, metrics.get("episode_return_100"))
            if next_checkpoint and agent.num_steps >= next_checkpoint and run is not None:
                check_finite(agent, metrics)
                agent.save(run.checkpoint)
                next_checkpoint = next_multiple(agent.num_steps, c.checkpoint_every)
            if any(cb(agent, metrics) is False for cb in callbacks):
                break
    finally:
        bar.close()
        if log is not None:
            log.close()
    if run is not None:
        check_finite(agent, {})
        agent.save(run.checkpoint)
        agent.save(run.model, replay=False)
        from ascent.core.plotting import plot_runs  # matplotlib: only when a curve is drawn

        plot_runs([run.path], run.curve, title=f"{agent.algo} {agent.env_id or ''}")
    return agent


def resume(cls, run_dir: str | os.PathLike, progress_bar: bool | None = None, verbose: int = 1):
    """Continue an interrupted run of algorithm `cls` from its last checkpoint up to the steps it
    was asked for (see `Agent.resume`)."""
    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise CheckpointError(f"no run directory at {run.path}")
    if not run.checkpoint.exists():
        raise CheckpointError(f"{run.path} has no checkpoint (checkpoints/last.pt); it cannot be resumed, start it again")
    agent = cls.load(run.checkpoint, run_dir=run.path, verbose=verbose)
    truncate_csv(run.metrics, agent.num_steps)  # rows after the checkpoint are redone
    if agent.num_steps < agent.target_steps:
        train(agent, agent.target_steps - agent.num_steps, progress_bar=progress_bar)
    return agent

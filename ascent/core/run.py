"""The run around an agent: the training loop's bookkeeping, the run directory, metrics, checkpoint
cadence, resume and the final plot. None of this is an algorithm's business: an algorithm fills in
the contract of `ascent.core.agent.Agent`, and `Agent.learn` / `Agent.resume` hand it to `train` /
`resume` here.

A run directory holds config.json, metrics.csv, tb/, checkpoints/last.pt (+ last.replay.pt),
model.pt, learning_curve.png and eval.json (README, "Run directory"); videos/step-N/ where
`video_every` films, and tracking.json where a tracker (ascent.core.tracking) follows the run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ascent.core.logger import MetricsLog, ProgressBar, truncate_csv
from ascent.core.tracking import TRACKING_FILE, Tracker, check_tracker, open_tracker, read_tracking
from ascent.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted

# A callback gets the agent and the iteration's metrics; returning False stops training.
Callback = Callable[[Any, dict], Any]


class RunDirectory:
    """The files of one run, by name, and the lock that makes the directory one run's."""

    # What a run writes; `clear` removes exactly these (a user's own files stay).
    RUN_FILES = ("config.json", "metrics.csv", "tb", "checkpoints", "model.pt", "learning_curve.png", "eval.json",
                 "videos", "q_table.png", TRACKING_FILE)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.metrics = self.path / "metrics.csv"
        self.checkpoint = self.path / "checkpoints" / "last.pt"
        self.model = self.path / "model.pt"
        self.curve = self.path / "learning_curve.png"
        self.videos = self.path / "videos"
        self.lock_file = self.path / ".lock"

    def holds_a_run(self) -> bool:
        """Whether anything a run writes is already here."""
        return any((self.path / name).exists() for name in self.RUN_FILES)

    def clear(self) -> None:
        """Remove what a run wrote (`ascent train --overwrite`); refused while another run holds the lock."""
        with self.locked():
            for name in self.RUN_FILES:
                target = self.path / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's advisory lock (fcntl.flock on .lock, released when the process dies)
        while a run writes; a second writer is refused with the holder's PID."""
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(f"{self.path} is a file, not a run directory; pick another --run-dir")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise CheckpointError(f"{self.path} is being written by another run (PID {holder}); wait for it to "
                                      "finish, stop it, or pick another --run-dir") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # (closing releases the lock)

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


class StopSignals:
    """While training: SIGINT and SIGTERM ask the loop to stop after the iteration under way (it then
    writes a checkpoint); a second signal stops at once. Installed only in the main thread (signal
    handlers cannot be set elsewhere); the previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, saving: bool):
        self.saving = saving  # (a run directory: the stop writes a checkpoint)
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # the second one: stop now
            raise KeyboardInterrupt
        self.received = signum
        then = "stopping after this iteration and saving" if self.saving else "stopping after this iteration"
        print(f"\nascent: {signal.Signals(signum).name} received: {then} (send it again to stop at once)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


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


def train(agent, total_steps: int, callbacks: Iterable[Callback] | Callback = (), progress_bar: bool | None = None,
          track: str | None = None):
    """Train `agent` for `total_steps` more env steps (see `Agent.learn`). Returns the agent.

    Every iteration: periodic evaluation, a metrics row every `log_interval` iterations or
    `log_every_steps` env steps (CSV, TensorBoard, and the tracker `track` names: "mlflow" or
    "wandb"), a filmed evaluation episode every `video_every` steps, the progress bar, a checkpoint every
    `checkpoint_every` steps or `checkpoint_seconds`, the callbacks; NaN/inf in a metric or
    parameter stops training with TrainingDiverged (the last good checkpoint kept); SIGINT/SIGTERM
    stop it after the iteration under way with TrainingInterrupted, once the checkpoint is written.
    With a run directory, the end writes the checkpoint, model.pt and the learning curve; the
    directory is locked meanwhile, and a fresh agent is refused one that holds another run.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps <= 0:
        raise ConfigError(f"total_steps must be a positive integer, got {total_steps!r}")
    run = agent.run
    if run is None:
        if track is not None or agent.config.video_every:
            what = f"tracking (track={track!r})" if track is not None else "video_every"
            raise ConfigError(f"{what} works on a run directory (its metrics, videos and model): give the agent one, "
                              "run_dir=PATH (the CLI always does)")
        return _train(agent, int(total_steps), callbacks, progress_bar)
    if track is not None:
        check_tracker(track)  # (an unknown name or a missing package: before anything is written)
    if agent.config.video_every:  # (an env that cannot be filmed: now, not after video_every steps)
        agent.video_env(agent.env_source(), run.videos, 1)
    with run.locked():  # (a second writer is refused before it touches anything)
        if agent.num_steps == 0 and run.holds_a_run():
            resumable = " (it has a checkpoint: `ascent resume` continues it)" if run.checkpoint.exists() else ""
            raise ConfigError(f"{run.path} already holds a run{resumable}; pick another run directory, or start "
                              "over with `ascent train --overwrite` (RunDirectory(path).clear() in Python)")
        if agent.num_steps:  # a loaded agent continues its run: rows logged after its checkpoint are redone
            truncate_csv(run.metrics, agent.num_steps)
        if track is None:
            return _train(agent, int(total_steps), callbacks, progress_bar)
        with open_tracker(track, run.path, agent.run_info()) as tracker:  # (ends it as finished, interrupted or failed)
            return _train(agent, int(total_steps), callbacks, progress_bar, tracker)


def _train(agent, total_steps: int, callbacks, progress_bar, tracker: Tracker | None = None):
    callbacks = [callbacks] if callable(callbacks) else list(callbacks)
    c, run = agent.config, agent.run
    agent.target_steps = agent.num_steps + total_steps
    log = None
    if run is not None:
        run.write_config(agent.run_info())
        # Resuming: TensorBoard hides the events the interrupted run logged after the checkpoint.
        log = MetricsLog(run.path, purge_step=agent.num_steps + 1 if agent.num_steps else None)
    agent.start_episodes()
    show = (agent.verbose > 0) if progress_bar is None else progress_bar
    bar = ProgressBar(agent.target_steps, agent.num_steps, enabled=show, desc=f"{agent.algo} {agent.env_id or ''}".strip())
    start, start_steps, clock_before = time.perf_counter(), agent.num_steps, agent.train_seconds
    last_row_steps, last_checkpoint_time = agent.num_steps, start
    next_checkpoint = next_multiple(agent.num_steps, c.checkpoint_every)
    next_eval = next_multiple(agent.num_steps, c.eval_every)
    next_video = next_multiple(agent.num_steps, c.video_every)
    stop = StopSignals(saving=run is not None)
    try:
        with stop:
            while agent.num_steps < agent.target_steps and stop.received is None and not agent.finished:
                before = agent.num_steps
                with agent.on_device():
                    metrics = agent.train_iteration()
                agent.iteration += 1
                now = time.perf_counter()
                agent.train_seconds = clock_before + (now - start)  # carried across resumes
                check_finite(agent, metrics, parameters=False)  # parameters: before each checkpoint
                if agent.episode_returns:
                    metrics["episode_return_100"] = float(np.mean(agent.episode_returns))
                if next_eval and agent.num_steps >= next_eval:
                    ev = agent.evaluate(c.eval_episodes)
                    metrics["eval_return"], metrics["eval_return_std"] = ev["mean_return"], ev["std_return"]
                    metrics.update(ev.get("metrics", {}))  # (an algorithm's own evaluation figures: AlphaZero's rates)
                    next_eval = next_multiple(agent.num_steps, c.eval_every)
                # A row every log_interval iterations, at least every log_every_steps env steps, and
                # with every evaluation; the episodes that ended since the last row are averaged into it.
                due = (agent.iteration % c.log_interval == 0 or "eval_return" in metrics
                       or (c.log_every_steps and agent.num_steps - last_row_steps >= c.log_every_steps))
                if log is not None and due:
                    metrics.update(episode_metrics(agent))
                    metrics["steps_per_s"] = (agent.num_steps - start_steps) / max(now - start, 1e-9)
                    metrics["wall_time"] = agent.train_seconds
                    log.write(agent.num_steps, metrics)
                    if tracker is not None:
                        tracker.log_metrics(agent.num_steps, metrics)
                    last_row_steps = agent.num_steps
                if next_video and agent.num_steps >= next_video:  # one deterministic episode, filmed
                    folder = run.videos / f"step-{agent.num_steps:09d}"
                    agent.evaluate(1, video_dir=folder)
                    if tracker is not None:
                        tracker.log_video(agent.num_steps, folder)
                    next_video = next_multiple(agent.num_steps, c.video_every)
                bar.update(agent.num_steps - before, metrics.get("episode_return_100"))
                by_steps = next_checkpoint and agent.num_steps >= next_checkpoint
                by_time = c.checkpoint_seconds and now - last_checkpoint_time >= c.checkpoint_seconds
                if run is not None and (by_steps or by_time):
                    check_finite(agent, metrics)
                    agent.save(run.checkpoint)
                    next_checkpoint = next_multiple(agent.num_steps, c.checkpoint_every)
                    last_checkpoint_time = time.perf_counter()
                if any(cb(agent, metrics) is False for cb in callbacks):
                    break
    finally:
        bar.close()
        agent.release()
        if log is not None:
            log.close()
    if run is not None:
        check_finite(agent, {})
        agent.save(run.checkpoint)
        agent.save(run.model, replay=False)
        from ascent.core.plotting import plot_runs  # matplotlib: only when a curve is drawn

        plot_runs([run.path], run.curve, column=agent.curve_metric, title=f"{agent.algo} {agent.env_id or ''}")
        if tracker is not None:
            tracker.log_files(run.curve, run.model)
    if stop.received is not None:
        name = signal.Signals(stop.received).name
        if run is not None:
            tracked = f" --track {tracker.name}" if tracker is not None else ""
            saved = (f"saved {run.checkpoint} and {run.model} at step {agent.num_steps} of {agent.target_steps}; "
                     f"`ascent resume {run.path}{tracked}` continues")
        else:
            saved = f"stopped at step {agent.num_steps} of {agent.target_steps}; no run directory, so nothing was written"
        raise TrainingInterrupted(f"interrupted by {name}: {saved}", stop.received)
    return agent


def resume(cls, run_dir: str | os.PathLike, progress_bar: bool | None = None, verbose: int = 1,
           device: str | None = None, ray_address: str | None = None, track: str | None = None):
    """Continue an interrupted run of algorithm `cls` from its last checkpoint up to the steps it
    was asked for (see `Agent.resume`); `track` continues the tracked run that tracking.json names."""
    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise CheckpointError(f"no run directory at {run.path}")
    if not run.checkpoint.exists():
        raise CheckpointError(f"{run.path} has no checkpoint (checkpoints/last.pt); it cannot be resumed, start it again")
    agent = cls.load(run.checkpoint, run_dir=run.path, verbose=verbose, device=device, ray_address=ray_address)
    if agent.replay is not None and len(agent.replay) == 0 and agent.num_steps > 0:
        print(f"ascent: WARNING: resuming {agent.algo} at step {agent.num_steps} with an EMPTY replay buffer: the "
              "checkpoint was written without it (save_replay_buffer=false); learning continues from new "
              "transitions only", file=sys.stderr, flush=True)
    if agent.num_steps < agent.target_steps:
        tracked = sorted(read_tracking(run.path))
        if track is None and tracked and verbose > 0:
            print(f"ascent: {run.path} was tracked with {', '.join(tracked)}; this resume is not (--track {tracked[0]}, "
                  f"track={tracked[0]!r} in Python, continues the tracked run)", file=sys.stderr, flush=True)
        train(agent, agent.target_steps - agent.num_steps, progress_bar=progress_bar, track=track)
    return agent

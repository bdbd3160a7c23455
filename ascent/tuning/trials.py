"""What every trial of a study goes through, wherever it runs (a worker process of ascent.tuning.study,
or a Ray task of ascent.tuning.on_ray): the settings, the storage and its lock, taking the next
trial (`reserve`) within the --trials budget, the objective that trains and evaluates it, and a
trial whose process died failed and queued again. ascent.tuning.study describes the whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ascent.core.run import next_multiple
from ascent.errors import ConfigError, TrainingDiverged, TrainingInterrupted
from ascent.tuning import report
from ascent.tuning.spaces import Dimension, algorithm_space, load_space_file, space_record

STUDY_FILE, LOCK_FILE = "study.db", "study.lock"
MAX_RETRIES = 2  # a trial whose process dies this many times more is left failed
WAIT_SECONDS = 2.0  # a worker with nothing to start polls the trials still running this often


@dataclass(frozen=True)
class TuneSettings:
    """What a study is asked (each worker process and Ray task gets a copy)."""

    algo: str
    env: str
    trials: int
    steps: int
    out: str
    jobs: int = 1
    timeout: float | None = None  # seconds after which no trial starts (a running one finishes)
    space_file: str | None = None  # a TOML search space instead of the algorithm's SEARCH_SPACE
    seed: int = 0  # every trial trains on it; the sampler's seed derives from it
    eval_every: int | None = None  # None: a quarter of the steps
    eval_episodes: int = 5
    final_seeds: int = 3  # the finalists trained again on seed + 1 ... seed + final_seeds
    finalists: int = 3  # the best trials by value that are trained on the fresh seeds; the best mean there wins
    final_episodes: int = 20  # episodes of each fresh-seed run's evaluation (a trial's: eval_episodes)
    compare_preset: bool = False  # also train the env's preset (the defaults without one) on those seeds
    startup_trials: int = 5  # trials drawn at random and never pruned before TPE and the pruner act
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 60  # a running trial silent this long is stale: failed and queued again
    ray_address: str | None = None  # None: --jobs processes here; else trials as Ray tasks there (ascent.tuning.on_ray)

    @property
    def study_name(self) -> str:
        return f"{self.algo}-{self.env}"

    @property
    def every(self) -> int:
        return self.eval_every or max(self.steps // 4, 1)

    @property
    def n_evaluations(self) -> int:
        return -(-self.steps // self.every)

    def record(self, space: dict[str, Dimension]) -> dict[str, Any]:
        """What the study's trials depend on: a study is continued only with the same."""
        return {"algo": self.algo, "env": self.env, "steps": self.steps, "eval_every": self.every,
                "eval_episodes": self.eval_episodes, "seed": self.seed, "space": space_record(space),
                "reported_at": "evaluation number"}


def search_space(s: TuneSettings, cls: type) -> dict[str, Dimension]:
    """The space of --space FILE, else the algorithm's own."""
    return load_space_file(s.space_file, cls.Config, s.algo) if s.space_file else algorithm_space(cls)


def quiet_optuna() -> None:
    """Optuna's INFO line per trial and its warnings about experimental features (heartbeat, the retry
    callback, the matplotlib plots) off: the workers print their own line per trial."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("ascent tune needs Optuna: pip install 'ascent-rl[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # (ask/tell with heartbeats: the first one in `reserve`, then the worker's or the Ray driver's own)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


# ---- the storage -------------------------------------------------------------------------------------
def open_storage(s: TuneSettings):
    """OUT/study.db with heartbeats, and the callback that queues a stale trial again."""
    quiet_optuna()
    import optuna

    return optuna.storages.RDBStorage(
        f"sqlite:///{(Path(s.out) / STUDY_FILE).resolve()}",
        # Several processes write one SQLite file: each waits up to a minute for its lock.
        engine_kwargs={"connect_args": {"timeout": 60}},
        heartbeat_interval=s.heartbeat_interval, grace_period=s.grace_period,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))


def pruner(s: TuneSettings):
    """The median pruner, from the third of the evaluations on, once startup_trials have finished
    (RL-Zoo's n_warmup_steps = n_evaluations // 3). Trials report at their evaluation's number (1, 2,
    ...), as RL-Zoo's do, not at the env step: trials whose rollouts differ in size reach the
    evaluations at different steps, and the pruner compares the values reported at the same one."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=s.n_evaluations // 3)


def sampler(s: TuneSettings, n_trials: int):
    """TPE seeded with the seed and the number of trials so far: one worker draws the same sequence
    on every run, a resumed study does not draw its first trials again, and J workers differ."""
    import optuna

    return optuna.samplers.TPESampler(seed=s.seed + n_trials, n_startup_trials=s.startup_trials)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the study's lock file (fcntl.flock; released when the holder dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---- taking a trial, and one whose process died ------------------------------------------------------
def reserve(study, storage, s: TuneSettings):
    """(trial, True) for the next trial to run (a queued copy first), or (None, whether some trial
    still runs) once --trials count. Under the study's lock: stale trials are failed and queued
    again first, then counted, then the trial is asked for."""
    import optuna

    with locked(Path(s.out) / LOCK_FILE):
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        counted, running = budget(trials)
        if counted >= s.trials:
            return None, running > 0
        study.sampler = sampler(s, len(trials))
        trial = study.ask()
        # Its first heartbeat before the lock is let go: Optuna never finds a trial without one stale.
        # (`_trial_id`, as Optuna's own optimize loop uses it.)
        storage.record_heartbeat(trial._trial_id)
        return trial, True


def budget(trials) -> tuple[int, int]:
    """(trials that count toward --trials, of which running): the complete, pruned, running and
    failed ones, less the failed ones queued again (their copy stands for them)."""
    from optuna.trial import TrialState

    again = report.retried(trials)
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and t.number not in again)]
    return len(counted), sum(t.state == TrialState.RUNNING for t in trials)


def tell(study, storage, trial, value, state) -> None:
    """Tell the study a trial's result and print its line; a trial already failed as stale (its
    heartbeat came late) is left to the copy that runs it again."""
    import optuna

    try:
        study.tell(trial, value, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:
        print(f"trial {trial.number}: found stale while it ran (its heartbeat was late); its copy runs it again",
              flush=True)
        return
    print(report.trial_line(storage.get_trial(trial._trial_id)), flush=True)


def fail_and_queue_again(study, storage, trial, why: str) -> None:
    """FAIL a trial whose process was stopped or died under it, `why` in its `failed_because`, and
    queue a copy with its hyperparameters (at most MAX_RETRIES copies in a row); nothing if it was
    found stale already (it was failed and queued then)."""
    import optuna
    from optuna.trial import TrialState

    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr("failed_because", why)
        study.tell(trial, state=TrialState.FAIL)
        failed = storage.get_trial(trial._trial_id)  # (the copy takes its user attributes, not its reason)
        failed.user_attrs = {k: v for k, v in failed.user_attrs.items() if k != "failed_because"}
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, failed)


# ---- one trial's training ----------------------------------------------------------------------------
def objective(cls: type, s: TuneSettings, params: dict[str, Any], trial: Any):
    """One trial's training and its outcome, wherever it runs (a worker here, a Ray task): (value,
    state, user attributes): COMPLETE with the last evaluation; PRUNED by the pruner, or as an
    invalid combination ({"invalid": why}); FAIL for any other error ({"failed_because": why}: the
    study goes on). A signal (and a trial found stale, UpdateFinishedTrialError) is raised."""
    import optuna
    from optuna.trial import TrialState

    try:
        return train_and_evaluate(cls, s, params, s.seed, trial), TrialState.COMPLETE, {}
    except optuna.TrialPruned:
        return None, TrialState.PRUNED, {}
    except ConfigError as err:  # a combination the config refuses: pruned, so that TPE avoids it
        return None, TrialState.PRUNED, {"invalid": str(err)}
    except (TrainingInterrupted, optuna.exceptions.UpdateFinishedTrialError):
        raise
    except Exception as err:  # TrainingDiverged (NaN) or any other error: the study goes on
        return None, TrialState.FAIL, {"failed_because": f"{type(err).__name__}: {err}"}


class Evaluations:
    """The callback a trial trains with (ascent.core.run's contract: returning False stops training):
    every `every` env steps, the greedy policy's mean return over `episodes` episodes, reported to
    the trial at the evaluation's number, whose pruner may then stop it, except at the last
    evaluation (from `total` steps on: the trial is done and completes with that value)."""

    def __init__(self, trial: Any, every: int, episodes: int, total: int):
        self.trial, self.every, self.episodes, self.total = trial, every, episodes, total
        self.next_at, self.number = every, 0
        self.step, self.value, self.pruned = -1, math.nan, False

    def __call__(self, agent: Any, metrics: dict) -> bool | None:
        if agent.num_steps < self.next_at:
            return None
        self.next_at = next_multiple(agent.num_steps, self.every)
        self.evaluate(agent)
        if self.trial is not None and agent.num_steps < self.total and self.trial.should_prune():
            self.pruned = True
            return False
        return None

    def evaluate(self, agent: Any) -> None:
        value = float(agent.evaluate(self.episodes)["mean_return"])
        if not math.isfinite(value):
            raise TrainingDiverged(f"the evaluation's mean return is {value} at step {agent.num_steps}")
        self.step, self.value = agent.num_steps, value
        self.number += 1
        if self.trial is not None:
            self.trial.report(value, self.number)


def train_and_evaluate(cls: type, s: TuneSettings, params: dict[str, Any], seed: int, trial: Any = None,
                       run_dir: Path | None = None) -> float:
    """Train `cls` on the env (its preset, then `params`) for --steps from `seed` and return the mean
    return of its last evaluation (one at the end, at least). With a trial: evaluated every
    eval_every steps over eval_episodes, and optuna.TrialPruned when its pruner stops it; without
    (a finalist's fresh seed): once at the end, over final_episodes."""
    import optuna

    agent = cls(s.env, seed=seed, verbose=0, run_dir=run_dir, **params)
    episodes = s.eval_episodes if trial is not None else s.final_episodes
    evaluations = Evaluations(trial, s.every if trial is not None else s.steps, episodes, s.steps)
    try:
        agent.learn(s.steps, callbacks=[evaluations], progress_bar=False)
        if evaluations.pruned:
            raise optuna.TrialPruned(f"pruned at evaluation {evaluations.number}, step {evaluations.step} "
                                     f"({evaluations.value:.2f})")
        if evaluations.step != agent.num_steps:
            evaluations.evaluate(agent)
    finally:
        agent.envs.close()
    return evaluations.value

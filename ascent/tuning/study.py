"""`ascent tune`: hyperparameter search on Optuna (Akiba et al. 2019), resumable, shared by processes.

A study is a directory: OUT/study.db (Optuna's RDBStorage on SQLite) holds every trial, so running
the same command again continues it, and `--jobs J` worker processes draw trials from it at once.
A trial trains the algorithm on the env (the env's preset, then the sampled hyperparameters) for
--steps env steps; every --eval-every steps its greedy policy is evaluated and the mean return
reported to the trial, and Optuna's MedianPruner stops it when it is below the median of the
earlier trials at that step. The trial's value is its last evaluation. Hyperparameters are drawn by
TPE (Bergstra et al. 2011), seeded; RL-Zoo tunes with the same pair.

Every trial once: `--trials N` counts the complete, pruned, failed and running trials, and a worker
takes a trial only under OUT/study.lock (fcntl), so J workers start exactly N. A process killed
mid-trial (SIGKILL, a lost machine) leaves its trial RUNNING: each worker beats its trial's
heartbeat into the storage (Optuna's heartbeat), and a trial silent for the grace period is failed
and queued again with the same hyperparameters (RetryHeartbeatStaleTrialCallback); the copy runs
before any new trial, and the failed original no longer counts. SIGINT/SIGTERM do the same at
once. A worker that finds the budget spent waits for the trials still running (or for them to go
stale and come back), so a resumed study ends with exactly N finished trials.

Outcomes: a trial that diverges (TrainingDiverged) or raises any other error is FAIL, the reason in
its user attribute `failed_because`; one whose combination the config refuses (a ConfigError, e.g.
batch_size > n_steps * n_envs) is PRUNED with the reason in `invalid`: TPE ranks a pruned trial
without evaluations last, and so learns to avoid the region, where it would ignore a failed one.
At the end the best trial is trained again on --final-seeds fresh seeds, and OUT/best.toml, the
plots and the table of the top trials are written (ascent.tuning.report).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import multiprocessing
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ascent.core.config import PRESET_META_KEYS, resolve_preset
from ascent.core.run import RunDirectory, next_multiple
from ascent.errors import AscentError, ConfigError, TrainingDiverged, TrainingInterrupted
from ascent.registry import get_algorithm
from ascent.tuning import report
from ascent.tuning.spaces import Dimension, algorithm_space, load_space_file, sample, space_record, trial_params

STUDY_FILE, LOCK_FILE = "study.db", "study.lock"
MAX_RETRIES = 2  # a trial whose process dies this many times more is left failed
WAIT_SECONDS = 2.0  # a worker with nothing to start polls the trials still running this often


@dataclass(frozen=True)
class TuneSettings:
    """What a study is asked (each worker process gets a copy)."""

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
    final_seeds: int = 3  # the best trial trained again on seed + 1 ... seed + final_seeds
    startup_trials: int = 5  # trials drawn at random and never pruned before TPE and the pruner act
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 60  # a running trial silent this long is stale: failed and queued again

    @property
    def study_name(self) -> str:
        return f"{self.algo}-{self.env}"

    @property
    def every(self) -> int:
        return self.eval_every or max(self.steps // 4, 1)

    def record(self, space: dict[str, Dimension]) -> dict[str, Any]:
        """What the study's trials depend on: a study is continued only with the same."""
        return {"algo": self.algo, "env": self.env, "steps": self.steps, "eval_every": self.every,
                "eval_episodes": self.eval_episodes, "seed": self.seed, "space": space_record(space)}


def tune(s: TuneSettings) -> dict[str, Any]:
    """Run or continue the study `s` describes, then train its best trial on fresh seeds and write
    OUT/best.toml, the plots and the table (printed). Returns {best_trial, best_value, params,
    final, counts, wall_seconds, files}."""
    check_settings(s)
    s = dataclasses.replace(s, algo=s.algo.lower())  # (the study's name: "ppo", as the CLI has it)
    cls = get_algorithm(s.algo)
    space = search_space(s, cls)
    quiet_optuna()
    cls(s.env, seed=s.seed, verbose=0).envs.close()  # an env the algorithm cannot use: its EnvError now
    study, _ = open_study(s, space)
    counted = report.state_counts(study.get_trials(deepcopy=False))
    print(f"tuning {s.algo} on {s.env}: {s.trials} trials of {s.steps} steps, evaluated every {s.every} "
          f"({s.jobs} worker{'s' if s.jobs > 1 else ''}) -> {Path(s.out) / STUDY_FILE}"
          + (f"; continuing: {counted['finished']} finished" if counted["finished"] else ""), flush=True)
    started = time.perf_counter()
    try:
        if s.jobs == 1:
            work(s, 0)
        else:
            run_workers(s)
    except (TrainingInterrupted, KeyboardInterrupt) as err:
        number = getattr(err, "signal_number", signal.SIGINT)
        raise TrainingInterrupted(f"interrupted by {signal.Signals(number).name}: the study in {s.out} keeps its "
                                  "finished trials and queues the interrupted ones again; run the same command "
                                  "to continue it", number) from None
    wall = time.perf_counter() - started
    trials = study.get_trials(deepcopy=False)
    counts = report.state_counts(trials)
    print(report.format_table(trials, wall), flush=True)
    if counts["finished"] < s.trials:
        print(f"{counts['finished']} of {s.trials} trials: stopped by --timeout (or a worker's error); the same "
              "command continues the study")
    if not any(t.state.name == "COMPLETE" for t in trials):
        raise ConfigError(f"no trial of the study in {s.out} completed{report.first_reason(trials)}; widen the "
                          "space (--space), give more --steps, or more --trials")
    best = study.best_trial
    params = trial_params(space, best.params)
    final = final_evaluation(study, s, params)
    preset_name, preset_values = resolve_preset(s.algo, s.env, None)
    out = Path(s.out)
    report.write_best(out / "best.toml", s.algo, s.env, s.steps, s.seed, best, counts["finished"], params,
                      {k: v for k, v in preset_values.items() if k not in PRESET_META_KEYS}, preset_name, final)
    files, notes = report.plot_study(study, out)
    print(report.format_final(best, final))
    for note in notes:
        print(note)
    print(f"wrote {out / 'best.toml'}" + "".join(f", {f}" for f in files))
    return {"best_trial": best.number, "best_value": best.value, "params": params, "final": final,
            "counts": counts, "wall_seconds": wall, "files": [out / "best.toml", *files]}


def check_settings(s: TuneSettings) -> None:
    """ConfigError for a setting out of range (the CLI's parser checks them too; Python callers get this)."""
    for name in ("trials", "steps", "jobs", "eval_episodes", "heartbeat_interval", "grace_period"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    for name in ("final_seeds", "startup_trials", "seed"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    if s.eval_every is not None and (not isinstance(s.eval_every, int) or s.eval_every <= 0):
        raise ConfigError(f"eval_every must be a positive integer (or None: a quarter of the steps), got {s.eval_every!r}")
    if s.timeout is not None and not s.timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {s.timeout!r}")


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
    # (ask/tell with heartbeats: this module beats them itself, see `reserve` and `heartbeat`)
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


def open_study(s: TuneSettings, space: dict[str, Dimension]):
    """(study, storage) of OUT/study.db, created or continued; ConfigError for a directory that holds
    another algorithm's or env's study, or this one run with other steps, evaluations, seed or space."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory; pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    try:
        storage = open_storage(s)
        names = optuna.get_all_study_names(storage)
    except (SQLAlchemyError, RuntimeError) as err:
        raise ConfigError(f"{out / STUDY_FILE} is not an Optuna study database ({type(err).__name__}); pick "
                          "another --out") from None
    others = [name for name in names if name != s.study_name]
    if others:
        raise ConfigError(f"{out} holds the study {others[0]!r}, not {s.study_name!r}: another algorithm or env; "
                          f"pick another --out for {s.algo} on {s.env}")
    study = optuna.create_study(study_name=s.study_name, storage=storage, direction="maximize",
                                load_if_exists=True, pruner=pruner(s))
    record, found = s.record(space), study.user_attrs.get("ascent")
    if found is None:
        study.set_user_attr("ascent", record)
    elif found != record:
        differ = [f"{k} {found.get(k)!r}" if k != "space" else "another search space" for k in record
                  if found.get(k) != record[k]]
        raise ConfigError(f"the study in {out} was run with {', '.join(differ)}: its trials would not compare; "
                          "run it with the same settings to continue it, or pick another --out")
    return study, storage


def pruner(s: TuneSettings):
    """The median pruner, from the third of the steps on, once startup_trials have finished (RL-Zoo's
    n_warmup_steps = n_evaluations // 3)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=s.steps // 3)


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


# ---- the workers -------------------------------------------------------------------------------------
def run_workers(s: TuneSettings) -> None:
    """`--jobs J`: J worker processes on the study, waited for."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch threads or SQLite handles
    workers = [context.Process(target=worker_main, args=(s, i), name=f"ascent-tune-{i}") for i in range(s.jobs)]
    for w in workers:
        w.start()
    try:
        for w in workers:
            w.join()
    except KeyboardInterrupt:  # the workers got the signal too: each requeues its trial and ends
        for w in workers:
            w.join()
        raise
    for w in workers:
        if w.exitcode:
            print(f"ascent: worker {w.name} ended with exit code {w.exitcode}; its running trial, if any, is "
                  "queued again once stale", flush=True)


def worker_main(s: TuneSettings, worker: int) -> None:
    """A worker process: `work`, with its errors as one line and an exit code (the CLI's convention)."""
    try:
        work(s, worker)
    except (TrainingInterrupted, KeyboardInterrupt):
        raise SystemExit(130)
    except AscentError as err:
        print(f"ascent: error: worker {worker}: {err}", flush=True)
        raise SystemExit(2)


def work(s: TuneSettings, worker: int) -> None:
    """Take trials from the study and run them until --trials are finished, or --timeout."""
    import optuna

    quiet_optuna()
    cls = get_algorithm(s.algo)
    space = search_space(s, cls)
    storage = open_storage(s)
    study = optuna.load_study(study_name=s.study_name, storage=storage, pruner=pruner(s))
    deadline = time.monotonic() + s.timeout if s.timeout else None
    while deadline is None or time.monotonic() < deadline:
        trial, running = reserve(study, storage, s)
        if trial is not None:
            run_trial(study, storage, trial, s, space, cls, worker)
        elif running:  # the budget is spent, but a trial runs: it ends, or goes stale and comes back to run
            time.sleep(WAIT_SECONDS)
        else:
            return


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


@contextlib.contextmanager
def heartbeat(storage, trial_id: int, interval: int) -> Iterator[None]:
    """Record the trial's heartbeat every `interval` seconds from a thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # (a database busy past its timeout: the next beat tries again)
                pass

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_trial(study, storage, trial, s: TuneSettings, space: dict[str, Dimension], cls: type, worker: int) -> None:
    """Sample, train and tell one trial; its outcome (see the module docstring) printed as one line."""
    import optuna

    try:
        trial.set_user_attr("worker", worker)
        value, state = outcome(study, storage, trial, s, space, cls)
        study.tell(trial, value, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:  # its heartbeat came late: failed as stale, queued again
        print(f"trial {trial.number}: found stale while it ran (its heartbeat was late); its copy runs it again",
              flush=True)
        return
    print(report.trial_line(storage.get_trial(trial._trial_id)), flush=True)


def outcome(study, storage, trial, s: TuneSettings, space: dict[str, Dimension], cls: type):
    """(value, state) of the trial once trained: COMPLETE, PRUNED (by the pruner, or an invalid
    combination), FAIL (an error, the study goes on); a signal fails it, queues it again and is raised."""
    import optuna
    from optuna.trial import TrialState

    try:
        with heartbeat(storage, trial._trial_id, s.heartbeat_interval):
            return train_and_evaluate(cls, s, sample(trial, space), s.seed, trial), TrialState.COMPLETE
    except optuna.TrialPruned:
        return None, TrialState.PRUNED
    except ConfigError as err:  # a combination the config refuses: pruned, so that TPE avoids it
        trial.set_user_attr("invalid", str(err))
        return None, TrialState.PRUNED
    except (TrainingInterrupted, KeyboardInterrupt):  # stopped by a signal: failed, and queued again now
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # (unless found stale already)
            trial.set_user_attr("failed_because", "interrupted by a signal; queued again")
            study.tell(trial, state=TrialState.FAIL)
            interrupted = storage.get_trial(trial._trial_id)
            interrupted.user_attrs = {k: v for k, v in interrupted.user_attrs.items() if k != "failed_because"}
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, interrupted)
        raise
    except optuna.exceptions.UpdateFinishedTrialError:
        raise
    except Exception as err:  # TrainingDiverged (NaN) or any other error: the study goes on
        trial.set_user_attr("failed_because", f"{type(err).__name__}: {err}")
        return None, TrialState.FAIL


# ---- one training --------------------------------------------------------------------------------------
class Evaluations:
    """The callback a trial trains with (ascent.core.run's contract: returning False stops training):
    every `every` env steps, the greedy policy's mean return over `episodes` episodes, reported to
    the trial, whose pruner may then stop it."""

    def __init__(self, trial: Any, every: int, episodes: int):
        self.trial, self.every, self.episodes = trial, every, episodes
        self.next_at = every
        self.step, self.value, self.pruned = -1, math.nan, False

    def __call__(self, agent: Any, metrics: dict) -> bool | None:
        if agent.num_steps < self.next_at:
            return None
        self.next_at = next_multiple(agent.num_steps, self.every)
        self.evaluate(agent)
        if self.trial is not None and self.trial.should_prune():
            self.pruned = True
            return False
        return None

    def evaluate(self, agent: Any) -> None:
        value = float(agent.evaluate(self.episodes)["mean_return"])
        if not math.isfinite(value):
            raise TrainingDiverged(f"the evaluation's mean return is {value} at step {agent.num_steps}")
        self.step, self.value = agent.num_steps, value
        if self.trial is not None:
            self.trial.report(value, agent.num_steps)


def train_and_evaluate(cls: type, s: TuneSettings, params: dict[str, Any], seed: int, trial: Any = None,
                       run_dir: Path | None = None) -> float:
    """Train `cls` on the env (its preset, then `params`) for --steps from `seed` and return the mean
    return of its last evaluation (one at the end, at least). With a trial: evaluated every
    eval_every steps, and optuna.TrialPruned when its pruner stops it."""
    import optuna

    agent = cls(s.env, seed=seed, verbose=0, run_dir=run_dir, **params)
    evaluations = Evaluations(trial, s.every if trial is not None else s.steps, s.eval_episodes)
    try:
        agent.learn(s.steps, callbacks=[evaluations], progress_bar=False)
        if evaluations.pruned:
            raise optuna.TrialPruned(f"pruned at step {evaluations.step} ({evaluations.value:.2f})")
        if evaluations.step != agent.num_steps:
            evaluations.evaluate(agent)
    finally:
        agent.envs.close()
    return evaluations.value


def final_evaluation(study, s: TuneSettings, params: dict[str, Any]) -> dict[str, Any]:
    """The best trial's hyperparameters trained again from --final-seeds seeds that no trial used
    (seed + 1, ...), each a run directory OUT/final/seed-N; None for a seed that diverged. Kept in
    the study: a continued study whose best trial is the same does not train them again."""
    best = study.best_trial
    seeds = [s.seed + 1 + i for i in range(s.final_seeds)]
    kept = study.user_attrs.get("final")
    if kept and kept["trial"] == best.number and kept["seeds"] == seeds:
        return kept
    if seeds:
        print(f"training trial {best.number}'s hyperparameters on fresh seeds {', '.join(map(str, seeds))}", flush=True)
    if s.jobs > 1 and len(seeds) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(s.jobs, len(seeds)), mp_context=multiprocessing.get_context("spawn")) as pool:
            returns = list(pool.map(train_on_seed, [s] * len(seeds), [params] * len(seeds), seeds))
    else:
        returns = [train_on_seed(s, params, seed) for seed in seeds]
    final = {"trial": best.number, "seeds": seeds, "returns": returns}
    study.set_user_attr("final", final)
    return final


def train_on_seed(s: TuneSettings, params: dict[str, Any], seed: int) -> float | None:
    """One fresh-seed run of the final evaluation (None if it diverged)."""
    run = RunDirectory(Path(s.out) / "final" / f"seed-{seed}")
    if run.holds_a_run():
        run.clear()
    try:
        return train_and_evaluate(get_algorithm(s.algo), s, params, seed, run_dir=run.path)
    except TrainingDiverged:
        return None

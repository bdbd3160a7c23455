"""`ascent tune`: hyperparameter search on Optuna (Akiba et al. 2019), resumable, shared by processes.

A study is a directory: OUT/study.db (Optuna's RDBStorage on SQLite) holds every trial, so running
the same command again continues it, and `--jobs J` worker processes draw trials from it at once.
A trial trains the algorithm on the env (the env's preset, then the sampled hyperparameters) for
--steps env steps; every --eval-every steps its greedy policy is evaluated and the mean return
reported to the trial (at the evaluation's number), and Optuna's MedianPruner stops it when it is
below the median of the earlier trials at that evaluation; never at the last one, whose value the
trial completes with. The trial's value is its last evaluation. Hyperparameters are drawn by
TPE (Bergstra et al. 2011), seeded; RL-Zoo tunes with the same pair.

Every trial once: `--trials N` counts the complete, pruned, failed and running trials, and a worker
takes a trial only under OUT/study.lock (fcntl), so J workers start exactly N. A process killed
mid-trial (SIGKILL, a lost machine) leaves its trial RUNNING: each worker beats its trial's
heartbeat into the storage (Optuna's heartbeat), and a trial silent for the grace period is failed
and queued again with the same hyperparameters (RetryHeartbeatStaleTrialCallback); the copy runs
before any new trial, and the failed original no longer counts. SIGINT/SIGTERM do the same at
once. A worker that finds the budget spent waits for the trials still running (or for them to go
stale and come back), so a resumed study ends with exactly N finished trials. With --ray-address the
trials run as Ray tasks on a cluster and the study stays here: ascent.tuning.on_ray. What a trial
goes through wherever it runs (the settings, the storage, `reserve`, the objective) is
ascent.tuning.trials; this module runs the study and its local workers.

Outcomes: a trial that diverges (TrainingDiverged) or raises any other error is FAIL, the reason in
its user attribute `failed_because`; one whose combination the config refuses (a ConfigError, e.g.
batch_size > n_steps * n_envs) is PRUNED with the reason in `invalid`: TPE ranks a pruned trial
without evaluations last, and so learns to avoid the region, where it would ignore a failed one.
At the end the --finalists best trials are trained again on --final-seeds fresh seeds, the one with
the best mean there is chosen (a trial's value is one seed's), and OUT/best.toml, the plots and the
table of the top trials are written (ascent.tuning.report).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from ascent.core.config import PRESET_META_KEYS, resolve_preset
from ascent.core.run import RunDirectory
from ascent.errors import AscentError, ConfigError, TrainingDiverged, TrainingInterrupted
from ascent.registry import get_algorithm
from ascent.tuning import report
from ascent.tuning.spaces import Dimension, sample, trial_params
from ascent.tuning.trials import (STUDY_FILE, WAIT_SECONDS, TuneSettings, fail_and_queue_again, objective,
                                  open_storage, pruner, quiet_optuna, reserve, search_space, tell,
                                  train_and_evaluate)


def tune(s: TuneSettings) -> dict[str, Any]:
    """Run or continue the study `s` describes, then train its finalists on fresh seeds and write the
    chosen one's OUT/best.toml, the plots and the table (printed). Returns {best_trial, best_value, params,
    final, counts, wall_seconds, files}."""
    check_settings(s)
    s = dataclasses.replace(s, algo=s.algo.lower())  # (the study's name: "ppo", as the CLI has it)
    cls = get_algorithm(s.algo)
    space = search_space(s, cls)
    quiet_optuna()
    cls(s.env, seed=s.seed, verbose=0).envs.close()  # an env the algorithm cannot use: its EnvError now
    workers = f"{s.jobs} worker{'s' if s.jobs > 1 else ''}"
    if s.ray_address is not None:  # (an unreachable cluster: its ClusterError before the study is touched)
        from ascent.tuning.on_ray import join_ray, work_on_ray

        workers = f"{s.jobs} trial{'s' if s.jobs > 1 else ''} at a time on {join_ray(s)}"
    study, _ = open_study(s, space)
    counted = report.state_counts(study.get_trials(deepcopy=False))
    print(f"tuning {s.algo} on {s.env}: {s.trials} trials of {s.steps} steps, evaluated every {s.every} "
          f"({workers}) -> {Path(s.out) / STUDY_FILE}"
          + (f"; continuing: {counted['finished']} finished" if counted["finished"] else ""), flush=True)
    started = time.perf_counter()
    try:
        if s.ray_address is not None:
            work_on_ray(s)
        elif s.jobs == 1:
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
    final = final_evaluation(study, s, space)
    best = next(t for t in study.get_trials(deepcopy=False) if t.number == final["trial"])
    params = trial_params(space, best.params)
    preset_name, preset_values = resolve_preset(s.algo, s.env, None)
    out = Path(s.out)
    report.write_best(out / "best.toml", s.algo, s.env, s.steps, s.seed, best, counts["finished"], params,
                      {k: v for k, v in preset_values.items() if k not in PRESET_META_KEYS}, preset_name, final)
    files, notes = report.plot_study(study, out)
    print(report.format_final(best, final, study.get_trials(deepcopy=False)))
    for note in notes:
        print(note)
    print(f"wrote {out / 'best.toml'}" + "".join(f", {f}" for f in files))
    return {"best_trial": best.number, "best_value": best.value, "params": params, "final": final,
            "counts": counts, "wall_seconds": wall, "files": [out / "best.toml", *files]}


def check_settings(s: TuneSettings) -> None:
    """ConfigError for a setting out of range (the CLI's parser checks them too; Python callers get this)."""
    for name in ("trials", "steps", "jobs", "eval_episodes", "heartbeat_interval", "grace_period", "finalists",
                 "final_episodes"):
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
    if s.ray_address is not None and not isinstance(s.ray_address, str):
        raise ConfigError(f"ray_address must be a string ('local', 'auto', HOST:PORT) or None, got {s.ray_address!r}")


# ---- the study's file --------------------------------------------------------------------------------
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
    trial.set_user_attr("worker", worker)
    value, state = outcome(study, storage, trial, s, space, cls)
    tell(study, storage, trial, value, state)


def outcome(study, storage, trial, s: TuneSettings, space: dict[str, Dimension], cls: type):
    """(value, state) of the trial once trained (`objective`), its heartbeat beaten meanwhile and the
    user attributes the objective gives set on it; a signal fails it, queues it again and is raised."""
    try:
        with heartbeat(storage, trial._trial_id, s.heartbeat_interval):
            value, state, attrs = objective(cls, s, sample(trial, space), trial)
    except (TrainingInterrupted, KeyboardInterrupt):  # stopped by a signal: failed, and queued again now
        fail_and_queue_again(study, storage, trial, "interrupted by a signal; queued again")
        raise
    for name, text in attrs.items():
        trial.set_user_attr(name, text)
    return value, state


# ---- the finalists on fresh seeds --------------------------------------------------------------------
def finalists(study, s: TuneSettings) -> list:
    """The --finalists complete trials of highest value, best first."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return sorted(complete, key=lambda t: -t.value)[:max(s.finalists, 1)]


def fresh_mean(returns: list[float | None]) -> tuple[bool, float]:
    """A finalist's rank key on the fresh seeds: (no seed diverged, mean return of those that did not)."""
    finite = [r for r in returns if r is not None]
    return len(finite) == len(returns), (sum(finite) / len(finite) if finite else -math.inf)


def final_evaluation(study, s: TuneSettings, space: dict[str, Dimension]) -> dict[str, Any]:
    """The --finalists best trials' hyperparameters trained again from --final-seeds seeds that no
    trial used (seed + 1, ...), each a run directory OUT/final/trial-T-seed-N (a return of None: it
    diverged), and the one with the best mean there chosen: a trial's value is one seed's, and at a
    small budget the study's best is often the luckiest seed (measured: PPO on Pendulum, the top
    trial's -124 was -174 on fresh seeds). With compare_preset, the env's preset (no tuned value) on
    the same seeds too, OUT/final/preset-seed-N: did tuning beat it? Kept in the study: a continued
    study with the same finalists does not train them again.

    Each run is evaluated over final_episodes (20): a trial's few evaluation episodes are fixed start
    states per seed, whose luck the finalists would otherwise share (measured on PPO Pendulum: 5
    episodes gave -148 / -173 / -200 on seeds 1 / 2 / 3 for all three finalists, 100 gave -156 to -165).

    Returns {trial (the chosen), seeds, returns (the chosen's), finalists ({trial: returns}),
    preset_returns, episodes}."""
    chosen = finalists(study, s)
    numbers = [t.number for t in chosen]
    seeds = [s.seed + 1 + i for i in range(s.final_seeds)]
    kept = study.user_attrs.get("final")
    if kept and kept.get("finalists") is not None and [int(k) for k in kept["finalists"]] == numbers and \
            kept["seeds"] == seeds and kept.get("episodes") == s.final_episodes and \
            (kept.get("preset_returns") is not None or not s.compare_preset):
        return kept
    if not seeds:
        return {"trial": numbers[0], "seeds": [], "returns": [], "finalists": {str(numbers[0]): []},
                "preset_returns": [] if s.compare_preset else None, "episodes": s.final_episodes}
    print(f"training trial{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
          + (" and the preset" if s.compare_preset else "") + f" on fresh seeds {', '.join(map(str, seeds))}",
          flush=True)
    runs = [(trial_params(space, t.params), seed, f"trial-{t.number}-seed") for t in chosen for seed in seeds]
    runs += [({}, seed, "preset-seed") for seed in seeds] if s.compare_preset else []
    if s.jobs > 1 and len(runs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(s.jobs, len(runs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            returns = list(pool.map(train_on_seed, [s] * len(runs), *zip(*runs)))
    else:
        returns = [train_on_seed(s, *run) for run in runs]
    per_trial = {str(n): returns[i * len(seeds):(i + 1) * len(seeds)] for i, n in enumerate(numbers)}
    best = max(numbers, key=lambda n: fresh_mean(per_trial[str(n)]))  # (ties: the higher trial value, first)
    final = {"trial": best, "seeds": seeds, "returns": per_trial[str(best)], "finalists": per_trial,
             "preset_returns": returns[len(numbers) * len(seeds):] if s.compare_preset else None,
             "episodes": s.final_episodes}
    study.set_user_attr("final", final)
    return final


def train_on_seed(s: TuneSettings, params: dict[str, Any], seed: int, name: str = "seed") -> float | None:
    """One fresh-seed run of the final evaluation, OUT/final/NAME-SEED (None if it diverged)."""
    run = RunDirectory(Path(s.out) / "final" / f"{name}-{seed}")
    if run.holds_a_run():
        run.clear()
    try:
        return train_and_evaluate(get_algorithm(s.algo), s, params, seed, run_dir=run.path)
    except TrainingDiverged:
        return None

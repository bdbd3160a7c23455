"""`ascent tune --ray-address`: the trials as Ray tasks, the study in OUT/study.db here. On a local
Ray (one session serves every test of this process, as in tests/distributed): exactly N trials, the
same command continues the study, a trial whose Ray worker is killed is recorded failed and run
again once with its hyperparameters, and an unreachable cluster is one clear line."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("ray")

from ascent.cluster.session import ray_processes  # noqa: E402
from ascent.tuning import report  # noqa: E402
from ascent.tuning.on_ray import PrunerMirror, complete_evaluations  # noqa: E402
from ascent.tuning.study import TuneSettings, tune  # noqa: E402
from ascent.tuning.trials import budget, pruner  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def on_ray(tmp_path, **kw) -> TuneSettings:
    """Q-learning on Taxi (a second or two a trial), two trials at a time on a local Ray."""
    values = dict(algo="qlearning", env="Taxi-v4", trials=3, steps=5000, out=str(tmp_path / "study"), final_seeds=0,
                  jobs=2, ray_address="local")
    values.update(kw)
    return TuneSettings(**values)


def trials_of(s: TuneSettings):
    return optuna.load_study(study_name=s.study_name, storage=f"sqlite:///{Path(s.out) / 'study.db'}").get_trials()


def test_the_pruners_mirror_answers_as_the_studys_own_pruner():
    """What a Ray task is told (the mirror, from the complete trials' evaluations) is what a local
    worker's trial.should_prune() says on the storage, at every evaluation, before and after the
    startup trials and the warm-up steps."""
    s = TuneSettings("qlearning", "Taxi-v4", trials=30, steps=4000, out="unused", startup_trials=3)
    study = optuna.create_study(direction="maximize", pruner=pruner(s))
    rng = np.random.default_rng(0)
    steps = [1, 2, 3, 4]  # (the evaluations' numbers: every 1000 steps)
    answers = set()
    for number in range(25):
        mirror = PrunerMirror(s, complete_evaluations(study))
        trial, evaluations = study.ask(), {}
        for step in steps:
            evaluations[step] = float(rng.normal(step, 1.0))
            trial.report(evaluations[step], step)
            assert mirror.should_prune(dict(evaluations)) == trial.should_prune(), (number, step)
            answers.add(trial.should_prune())
        study.tell(trial, evaluations[4] if number % 3 else None,
                   state=optuna.trial.TrialState.COMPLETE if number % 3 else optuna.trial.TrialState.FAIL)
    assert answers == {True, False}


def test_trials_on_ray_are_exactly_n_and_the_same_command_continues_them(tmp_path):
    result = tune(on_ray(tmp_path, trials=2))
    trials = trials_of(on_ray(tmp_path))
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2 and result["counts"]["finished"] == 2
    assert all(t.user_attrs["worker"].startswith("ray") for t in trials)
    assert all(len(t.intermediate_values) == 4 for t in trials)  # every 1250 steps, reported from the tasks
    started = [t.datetime_start for t in trials]

    tune(on_ray(tmp_path, trials=3))  # one more wanted: only it runs
    trials = trials_of(on_ray(tmp_path))
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.datetime_start for t in trials][:2] == started


def kill_first_trial_worker(killed: dict, stop: threading.Event) -> None:
    """SIGKILL the Ray worker that runs trial 0 (its process title is ray::ascent-trial-0) once it runs."""
    while not stop.is_set():
        for pid, (_, cmd) in ray_processes().items():
            if cmd.startswith("ray::ascent-trial-0"):
                time.sleep(0.3)  # (inside its training)
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
        time.sleep(0.05)


def test_a_trial_whose_ray_worker_is_killed_is_failed_and_run_again_once(tmp_path):
    s = on_ray(tmp_path, trials=1, steps=10_000, jobs=1)
    killed, stop = {}, threading.Event()
    killer = threading.Thread(target=kill_first_trial_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        result = tune(s)
    finally:
        stop.set()
        killer.join()
    assert killed, "trial 0's Ray worker was never seen running"
    trials = trials_of(s)
    original = trials[0]
    assert original.state.name == "FAIL" and "its Ray worker died" in original.user_attrs["failed_because"]
    copies = [t for t in trials if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 0]
    assert len(copies) == 1 and copies[0].state.name == "COMPLETE" and copies[0].params == original.params
    assert budget(trials) == (1, 0) and len(trials) == 2  # the copy stands for the original: N, none lost or twice
    assert report.state_counts(trials)["retried"] == 1 and result["counts"]["finished"] == 1


def test_an_unreachable_cluster_is_one_clear_line(tmp_path):
    # (a process of its own: this one runs on the local Ray of the tests above)
    out = subprocess.run([sys.executable, "-m", "ascent.cli", "tune", "qlearning", "--env", "Taxi-v4", "--trials", "1",
                          "--steps", "500", "--out", str(tmp_path / "study"), "--ray-address", "127.0.0.1:9"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:9" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "study" / "study.db").exists()

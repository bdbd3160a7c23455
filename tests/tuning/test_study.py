"""`ascent tune`: a study resumes from its SQLite file with every trial once (a SIGKILL mid-trial
included), J workers share it, the median pruner stops a bad trial, a diverging or invalid trial is
recorded and the study goes on, best.toml is a preset `ascent train --preset` reads back, and bad
input gets one clear line. Budgets are tiny: Q-learning on Taxi (a few seconds a trial), PPO on
CartPole where the values must differ."""

import contextlib
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from ascent.algorithms.ppo import PPO  # noqa: E402
from ascent.algorithms.tabular import QLearning  # noqa: E402
from ascent.cli import main as cli_main  # noqa: E402
from ascent.core.config import build_config, coerce, field_types, load_preset_file, resolve_preset  # noqa: E402
from ascent.core.run import read_run_config  # noqa: E402
from ascent.errors import ConfigError, TrainingDiverged  # noqa: E402
from ascent.registry import get_algorithm  # noqa: E402
from ascent.tuning import report  # noqa: E402
from ascent.tuning import study as study_module  # noqa: E402
from ascent.tuning import trials as trials_module  # noqa: E402
from ascent.tuning.spaces import algorithm_space, load_space_file, parse_space, sample  # noqa: E402
from ascent.tuning.study import TuneSettings, open_study, search_space, tune  # noqa: E402
from ascent.tuning.trials import budget  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def taxi(tmp_path, **kw) -> TuneSettings:
    """Q-learning on Taxi: ~1 s per 5,000 steps, its default space."""
    values = dict(algo="qlearning", env="Taxi-v4", trials=2, steps=5000, out=str(tmp_path / "study"), final_seeds=0)
    values.update(kw)
    return TuneSettings(**values)


def load(s: TuneSettings):
    return optuna.load_study(study_name=s.study_name, storage=f"sqlite:///{Path(s.out) / 'study.db'}")


def states(study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


def stored_states(s: TuneSettings) -> list[str]:
    """The trials' states read straight from the SQLite file (milliseconds, where loading the study
    through Optuna can take a second on a loaded machine: long enough to miss a short trial)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(Path(s.out) / "study.db", timeout=30)) as db:
        return [state for _, state in db.execute("SELECT number, state FROM trials ORDER BY number")]


def write_space(tmp_path, text: str) -> str:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return str(path)


def enqueue(s: TuneSettings, *params: dict) -> None:
    """Create the study and queue trials with these hyperparameters (they run first, in order)."""
    study, _ = open_study(s, search_space(s, get_algorithm(s.algo)))
    for p in params:
        study.enqueue_trial(p)


# ---- resume: every trial once ---------------------------------------------------------------------------
def test_the_same_command_continues_the_study_and_runs_only_the_missing_trials(tmp_path):
    first = tune(taxi(tmp_path, trials=2))
    study = load(taxi(tmp_path))
    assert states(study) == ["COMPLETE", "COMPLETE"]
    started = [t.datetime_start for t in study.get_trials()]
    assert first["counts"]["finished"] == 2 and (tmp_path / "study" / "best.toml").exists()

    tune(taxi(tmp_path, trials=3))  # the same study, one more trial wanted
    study = load(taxi(tmp_path))
    assert states(study) == ["COMPLETE"] * 3
    assert [t.datetime_start for t in study.get_trials()][:2] == started  # the first two were not run again

    tune(taxi(tmp_path, trials=3))  # done already: nothing runs
    assert len(load(taxi(tmp_path)).get_trials()) == 3


def test_a_sigkill_mid_trial_loses_and_duplicates_nothing(tmp_path):
    """A worker killed with SIGKILL leaves its trial RUNNING; once its heartbeat is stale the resumed
    study fails it, runs the same hyperparameters again once, and ends with exactly N trials."""
    s = taxi(tmp_path, trials=3, steps=20_000, heartbeat_interval=1, grace_period=2)  # ~4 s a trial
    code = ("import torch; torch.set_num_threads(1)\n"
            "from ascent.tuning.study import TuneSettings, tune\n"
            f"tune(TuneSettings(**{s.__dict__!r}))\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for trial 0 done and trial 1 under way
            time.sleep(0.1)
            # (study.lock appears once the study is in the file: a worker takes its trials under it)
            if (Path(s.out) / "study.lock").exists() and stored_states(s)[:2] == ["COMPLETE", "RUNNING"]:
                break
        else:
            pytest.fail(f"the study's second trial was never seen running: {stored_states(s)}")
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    killed = load(s).get_trials()[1]
    assert killed.state.name == "RUNNING"  # what a killed process leaves behind

    tune(s)
    trials = load(s).get_trials()
    original = trials[1]
    assert original.state.name == "FAIL"
    copies = [t for t in trials if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 1]
    assert len(copies) == 1 and copies[0].state.name == "COMPLETE" and copies[0].params == killed.params
    assert budget(trials) == (3, 0)  # exactly N count: the failed original is replaced by its copy
    assert report.state_counts(trials) == {"complete": 3, "pruned": 0, "invalid": 0, "failed": 0, "retried": 1,
                                                "running": 0, "waiting": 0, "finished": 3}
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3 and len(trials) == 4


def test_jobs_share_one_study_and_start_exactly_n_trials(tmp_path):
    s = taxi(tmp_path, trials=4, steps=6000, jobs=2, final_seeds=2)
    result = tune(s)
    trials = load(s).get_trials()
    assert states(load(s)) == ["COMPLETE"] * 4
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert len(result["final"]["returns"]) == 2 and all(r is not None for r in result["final"]["returns"])
    assert len(result["final"]["finalists"]) == 3  # the 3 best of 4, each on the 2 fresh seeds
    assert (tmp_path / "study" / "final" / f"trial-{result['best_trial']}-seed-1" / "model.pt").exists()


# ---- pruning, divergence, invalid combinations ----------------------------------------------------------
def test_the_median_pruner_stops_a_trial_below_the_median_and_keeps_its_evaluations(tmp_path):
    # learning_rate 1e-7 leaves PPO's policy where it started (~33 on CartPole), 1e-3 learns (~70 at 3k steps).
    space = write_space(tmp_path, 'learning_rate = {type = "categorical", choices = [1e-3, 1e-7]}\n')
    s = TuneSettings("ppo", "CartPole-v1", trials=2, steps=6000, out=str(tmp_path / "study"), space_file=space,
                     eval_every=1500, startup_trials=1, final_seeds=0)
    enqueue(s, {"learning_rate": 1e-3}, {"learning_rate": 1e-7})
    tune(s)
    good, bad = load(s).get_trials()
    # reported at the evaluations' numbers (at steps 1536, 3072, 4608, 6144: RL-Zoo's convention)
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [1, 2, 3, 4]
    assert bad.state.name == "PRUNED"
    assert bad.intermediate_values and max(bad.intermediate_values) < 4  # reported, then stopped early
    last = max(bad.intermediate_values)
    assert bad.intermediate_values[last] < good.intermediate_values[last]


def test_a_trial_reports_at_evaluation_numbers_and_is_never_pruned_at_its_last():
    """The value a trial completes with is its last evaluation: a pruner that would stop it there
    (its steps are past --steps) is not asked."""
    from ascent.tuning.trials import Evaluations

    class AlwaysPrune:
        def __init__(self):
            self.reported = []

        def report(self, value, number):
            self.reported.append((number, value))

        def should_prune(self):
            return True

    class Agent:
        num_steps = 0

        def evaluate(self, episodes):
            return {"mean_return": float(self.num_steps)}

    agent, trial = Agent(), AlwaysPrune()
    evaluations = Evaluations(trial, every=100, episodes=1, total=300)
    agent.num_steps = 128
    assert evaluations(agent, {}) is False and evaluations.pruned  # mid-way: pruned
    trial, evaluations = AlwaysPrune(), Evaluations(AlwaysPrune(), every=100, episodes=1, total=300)
    evaluations.trial = trial
    for steps in (128, 256, 384):  # the last evaluation at 384 >= 300: reported, not pruned
        agent.num_steps = steps
        if steps < 300:
            trial.should_prune = lambda: False
        else:
            del trial.should_prune
        assert evaluations(agent, {}) is None
    assert trial.reported == [(1, 128.0), (2, 256.0), (3, 384.0)] and not evaluations.pruned


def test_a_diverging_trial_is_failed_with_its_reason_and_the_study_goes_on(tmp_path, monkeypatch):
    train_iteration = QLearning.train_iteration

    def nan_when_large_steps(self):
        metrics = train_iteration(self)
        if self.config.learning_rate > 0.5:
            metrics["td_error"] = math.nan  # ascent.core.run.check_finite raises TrainingDiverged
        return metrics

    monkeypatch.setattr(QLearning, "train_iteration", nan_when_large_steps)
    s = taxi(tmp_path, space_file=write_space(tmp_path, 'learning_rate = {type = "categorical", choices = [0.9, 0.1]}'))
    enqueue(s, {"learning_rate": 0.9}, {"learning_rate": 0.1})
    result = tune(s)
    failed, complete = load(s).get_trials()
    assert failed.state.name == "FAIL" and "TrainingDiverged" in failed.user_attrs["failed_because"]
    assert "non-finite td_error" in failed.user_attrs["failed_because"]
    assert complete.state.name == "COMPLETE" and result["best_trial"] == 1


def test_a_combination_the_config_refuses_is_pruned_as_invalid(tmp_path):
    # CartPole's PPO preset: 8 envs x 32 steps = rollouts of 256; a minibatch of 512 is refused.
    space = write_space(tmp_path, 'batch_size = {type = "categorical", choices = [512, 64]}\nn_steps = 32\n')
    s = TuneSettings("ppo", "CartPole-v1", trials=2, steps=512, out=str(tmp_path / "study"), space_file=space,
                     final_seeds=0)
    enqueue(s, {"batch_size": 512}, {"batch_size": 64})
    tune(s)
    invalid, complete = load(s).get_trials()
    assert invalid.state.name == "PRUNED" and "larger than a rollout" in invalid.user_attrs["invalid"]
    assert complete.state.name == "COMPLETE"
    assert report.state_counts(load(s).get_trials())["invalid"] == 1


# ---- best.toml ------------------------------------------------------------------------------------------
def test_best_toml_is_a_preset_that_train_reads_back_to_the_best_hyperparameters(tmp_path, capsys):
    s = TuneSettings("ppo", "CartPole-v1", trials=2, steps=1024, out=str(tmp_path / "study"), final_seeds=1)
    result = tune(s)
    best = tmp_path / "study" / "best.toml"
    values = load_preset_file(str(best))
    assert values["n_timesteps"] == 1024 and "trial" in values["description"]
    agent = PPO("CartPole-v1", preset=str(best), verbose=0)
    types = field_types(PPO.Config)
    for name, value in result["params"].items():  # every tuned value, the lists included
        assert getattr(agent.config, name) == coerce(name, value, types[name]), name
    assert agent.config.n_envs == 8 and agent.config.gae_lambda == result["params"]["gae_lambda"]  # preset + tuned
    assert (tmp_path / "study" / "history.png").stat().st_size > 0
    assert (tmp_path / "study" / "importances.png").exists() == (result["counts"]["complete"] >= 2)
    capsys.readouterr()

    rc = cli_main(["train", "ppo", "--env", "CartPole-v1", "--preset", str(best), "--steps", "256",
                   "--run-dir", str(tmp_path / "run"), "--no-progress", "--eval-episodes", "1"])
    assert rc == 0 and "preset " + str(best) in capsys.readouterr().out


def test_the_preset_can_be_trained_beside_the_best_trial_on_the_same_fresh_seeds(tmp_path, capsys):
    s = taxi(tmp_path, trials=2, final_seeds=2, compare_preset=True)
    final = tune(s)["final"]
    assert final["seeds"] == [1, 2] and len(final["returns"]) == 2 and len(final["preset_returns"]) == 2
    taxi_preset = resolve_preset("qlearning", "Taxi-v4", None)[1]
    for seed in (1, 2):  # the preset's runs have the preset's values, not the tuned ones
        tuned = read_run_config(tmp_path / "study" / "final" / f"trial-{final['trial']}-seed-{seed}")["config"]
        preset = read_run_config(tmp_path / "study" / "final" / f"preset-seed-{seed}")["config"]
        assert preset["learning_rate"] == taxi_preset["learning_rate"] != tuned["learning_rate"]
    out = capsys.readouterr().out
    assert "the env's preset on the same seeds: " in out
    load_preset_file(str(tmp_path / "study" / "best.toml"))  # (its two-line comment is still TOML)
    assert tune(s)["final"] == final  # kept in the study: not trained again


def test_the_finalist_best_on_fresh_seeds_is_chosen_not_the_luckiest_trial(tmp_path, monkeypatch, capsys):
    """A trial's value is one seed's: best.toml holds the finalist with the best mean on fresh seeds,
    and a finalist with a diverged seed ranks below those without. (The training is replaced by a
    table of returns: what is tested is the choice.)"""
    returns = {0.9: {0: 10.0, 1: 1.0, 2: 2.0}, 0.1: {0: 5.0, 1: 8.0, 2: 7.0}, 0.5: {0: 4.0, 1: 9.0, 2: None}}

    def table(cls, s, params, seed, trial=None, run_dir=None):
        value = returns[params["learning_rate"]][seed]
        if value is None:
            raise TrainingDiverged("a NaN loss")
        return value

    for module in (trials_module, study_module):
        monkeypatch.setattr(module, "train_and_evaluate", table)
    s = taxi(tmp_path, trials=3, final_seeds=2, finalists=3,
             space_file=write_space(tmp_path, 'learning_rate = {type = "categorical", choices = [0.9, 0.1, 0.5]}'))
    enqueue(s, {"learning_rate": 0.9}, {"learning_rate": 0.1}, {"learning_rate": 0.5})
    result = tune(s)
    assert result["final"]["finalists"] == {"0": [1.0, 2.0], "1": [8.0, 7.0], "2": [9.0, None]}
    assert result["best_trial"] == 1 and result["final"]["returns"] == [8.0, 7.0]
    assert load_preset_file(str(tmp_path / "study" / "best.toml"))["learning_rate"] == 0.1
    out = capsys.readouterr().out
    assert "best: trial 1, 5.00; on fresh seeds 1, 2: 8.00, 7.00 (mean 7.50 +- 0.50)" in out
    assert "the other finalists on the same seeds: trial 0 (10.00): 1.00, 2.00 (mean 1.50 +- 0.50); trial 2 " \
           "(4.00): 9.00, diverged (mean 9.00 +- 0.00)" in out
    s = dataclasses.replace(s, finalists=1)  # one finalist: the trial of highest value, as it is
    assert tune(s)["best_trial"] == 0


@pytest.mark.parametrize("name, value", [("clip_range_vf", None), ("net_arch", (64, 64)), ("learning_rate", "lin_0.001"),
                                         ("learning_rate", 1e-05), ("normalize_advantage", False), ("n_steps", 2048),
                                         ("activation", "relu")])
def test_preset_values_round_trip_through_toml(tmp_path, name, value):
    path = tmp_path / "p.toml"
    path.write_text(f"{name} = {report.toml_value(value)}\n")
    read = load_preset_file(str(path))[name]
    assert coerce(name, read, field_types(PPO.Config)[name]) == value


# ---- the declared spaces --------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["ppo", "a2c", "sac", "td3", "ddpg", "dqn", "qlearning", "sarsa"])
def test_every_declared_space_samples_configs_the_algorithm_accepts(algo):
    cls = get_algorithm(algo)
    space = algorithm_space(cls)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    refused = 0
    for _ in range(50):
        params = sample(study.ask(), space)
        try:
            build_config(cls.Config, algo, None, None, params)
        except ConfigError as err:  # only PPO's minibatch larger than its rollout may be refused
            assert algo == "ppo" and "larger than a rollout" in str(err), (algo, params, err)
            refused += 1
    assert refused < 25


# ---- bad input ------------------------------------------------------------------------------------------
def tune_cli(tmp_path, capsys, *args: str) -> tuple[int, str]:
    rc = cli_main(["tune", *args, "--trials", "1", "--steps", "500", "--out", str(tmp_path / "study"),
                   "--final-seeds", "0"])
    return rc, capsys.readouterr().err


def test_an_unknown_algorithm_or_env_is_one_line(tmp_path, capsys):
    rc, err = tune_cli(tmp_path, capsys, "ppx", "--env", "CartPole-v1")
    assert rc == 2 and "unknown algorithm 'ppx' (did you mean: ppo" in err
    rc, err = tune_cli(tmp_path, capsys, "ppo", "--env", "CartPol-v1")
    assert rc == 2 and "unknown environment 'CartPol-v1'" in err
    rc, err = tune_cli(tmp_path, capsys, "trpo", "--env", "CartPole-v1")
    assert rc == 2 and "trpo declares no search space; give one with --space" in err
    assert not (tmp_path / "study" / "study.db").exists()


def test_a_study_of_another_algorithm_or_other_settings_is_refused(tmp_path, capsys):
    s = taxi(tmp_path)
    open_study(s, search_space(s, QLearning))
    rc, err = tune_cli(tmp_path, capsys, "ppo", "--env", "CartPole-v1")
    assert rc == 2 and "holds the study 'qlearning-Taxi-v4', not 'ppo-CartPole-v1'" in err and "another --out" in err
    rc, err = tune_cli(tmp_path, capsys, "qlearning", "--env", "Taxi-v4")  # --steps 500, not 5000
    assert rc == 2 and "was run with steps 5000" in err
    assert len(load(s).get_trials()) == 0


@pytest.mark.parametrize("text, message", [
    ('learning_rat = {type = "float", low = 1e-5, high = 1e-2}', "unknown hyperparameter 'learning_rat' for ppo "
                                                                   "(did you mean: learning_rate"),
    ('batch_size = {type = "float", low = 16, high = 64}', "batch_size is not a real-valued hyperparameter"),
    ('learning_rate = {type = "uniform", low = 1e-5, high = 1e-2}', "type must be one of float, int, categorical"),
    ('learning_rate = {type = "float", low = 1e-2, high = 1e-5}', "low must be below high"),
    ('learning_rate = {type = "float", low = 0.0, high = 1e-2, log = true}', "a log scale needs low > 0"),
    ('gamma = {type = "float", low = 0.9, high = 1.5}', "gamma must be in [0.0, 1.0], got 1.5"),
    ('n_epochs = {type = "int", low = 1, high = 20, choices = [1]}', "type = \"int\" takes low, high, log, step; not choices"),
    ('activation = {type = "categorical", choices = ["tanh", "swish"]}', "activation must be one of tanh"),
    ('batch_size = {type = "categorical", choices = []}', "choices must be a non-empty list"),
    ('batch_size = "big"', "batch_size must be an integer, got 'big'"),
    ('batch_size = {type = "int", low = 16, high = 64', "is not valid TOML"),
])
def test_a_bad_space_file_names_the_entry_and_the_fix(tmp_path, text, message):
    path = write_space(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_space_file(path, PPO.Config, "ppo")
    assert message in str(err.value) and (path in str(err.value))


def test_a_space_file_replaces_the_algorithms_space_and_decodes_list_choices(tmp_path):
    path = write_space(tmp_path, 'net_arch = {type = "categorical", choices = [[64], [64, 64]]}\n'
                                 'n_epochs = {type = "int", low = 1, high = 20, step = 1}\ngamma = 0.99\n')
    space = load_space_file(path, PPO.Config, "ppo")
    assert set(space) == {"net_arch", "n_epochs", "gamma"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    drawn = [sample(study.ask(), space) for _ in range(20)]
    assert {d["net_arch"] for d in drawn} == {(64,), (64, 64)} and {d["gamma"] for d in drawn} == {0.99}
    assert all(1 <= d["n_epochs"] <= 20 and isinstance(d["n_epochs"], int) for d in drawn)
    with pytest.raises(ConfigError, match="the search space is empty"):
        parse_space({}, PPO.Config, "ppo", "space file x")

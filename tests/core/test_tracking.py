"""Tracking (ascent.core.tracking): what a tracked run sends to MLflow, read back through MLflow's
client; the W&B offline run written; a resumed run continues its tracked run; the clear errors."""

import json
import os
import signal
import subprocess
import sys

import pytest

import ascent
from ascent.core.logger import read_csv
from ascent.core.tracking import flat_params, wandb_logged_in
from ascent.errors import ConfigError, TrainingInterrupted

SMALL = dict(n_envs=2, n_steps=64, batch_size=64, n_epochs=2)


def interrupt_at(steps: int):
    """A callback that sends the process SIGINT once `steps` env steps are done: learn() then saves,
    and raises TrainingInterrupted (the run stays resumable)."""
    def callback(agent, metrics):
        if agent.num_steps >= steps:
            os.kill(os.getpid(), signal.SIGINT)
    return callback


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """An MLflow client on a SQLite store under tmp_path (the artifacts under tmp_path/mlruns)."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return mlflow.MlflowClient(uri)


def test_mlflow_holds_the_params_every_row_the_video_and_the_final_files(tmp_path, mlflow_store):
    pytest.importorskip("moviepy")
    run_dir = tmp_path / "run"
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=run_dir, video_every=256, net_arch=(32, 16), **SMALL)
    agent.learn(512, track="mlflow", progress_bar=False)

    run_id = json.loads((run_dir / "tracking.json").read_text())["mlflow"]["run_id"]
    run = mlflow_store.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert mlflow_store.get_experiment(run.info.experiment_id).name == "ascent"
    params = run.data.params
    assert params["algo"] == "ppo" and params["env_id"] == "CartPole-v1" and params["seed"] == "0"
    assert params["net_arch"] == "32,16" and params["n_steps"] == "64" and params["video_every"] == "256"
    assert params.keys() == flat_params(agent.run_info()).keys()  # every config field
    assert run.data.tags["run_dir"] == str(run_dir.resolve())
    rows = read_csv(run_dir / "metrics.csv")
    history = mlflow_store.get_metric_history(run_id, "value_loss")
    assert [m.step for m in history] == [int(r["steps"]) for r in rows]  # every row, at its env step
    assert [m.value for m in history] == pytest.approx([float(r["value_loss"]) for r in rows], rel=1e-5)

    def artifacts(path=None):
        return sorted(f.path for f in mlflow_store.list_artifacts(run_id, path))

    assert artifacts() == ["learning_curve.png", "model", "videos"]
    assert artifacts("model") == ["model/model.pt"]
    assert artifacts("videos") == ["videos/step-000000256", "videos/step-000000512"]
    assert artifacts("videos/step-000000256") == ["videos/step-000000256/rl-video-episode-0.mp4"]


def test_an_interrupted_run_is_marked_so_and_its_resume_continues_the_same_mlflow_run(tmp_path, mlflow_store):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match=f"`ascent resume {run_dir} --track mlflow` continues"):
        ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=run_dir, **SMALL).learn(
            512, callbacks=interrupt_at(256), track="mlflow", progress_bar=False)
    first = json.loads((run_dir / "tracking.json").read_text())["mlflow"]["run_id"]
    assert mlflow_store.get_run(first).info.status == "KILLED"
    assert [f.path for f in mlflow_store.list_artifacts(first, "model")] == ["model/model.pt"]  # (what was saved)
    agent = ascent.PPO.resume(run_dir, progress_bar=False, verbose=0, track="mlflow")
    assert agent.num_steps == 512
    assert json.loads((run_dir / "tracking.json").read_text())["mlflow"]["run_id"] == first
    run = mlflow_store.get_run(first)
    assert run.info.status == "FINISHED"
    assert len(mlflow_store.search_runs([run.info.experiment_id])) == 1  # the same run, not a second one
    assert max(m.step for m in mlflow_store.get_metric_history(first, "loss")) == 512


def test_wandb_offline_writes_its_run_directory(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    pytest.importorskip("moviepy")
    run_dir = tmp_path / "run"
    ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=run_dir, learning_rate=0.00123, video_every=256, **SMALL).learn(
        256, track="wandb", progress_bar=False)
    run_id = json.loads((run_dir / "tracking.json").read_text())["wandb"]["run_id"]
    [offline] = (tmp_path / "wandb").glob(f"offline-run-*-{run_id}")
    record = (offline / f"run-{run_id}.wandb").read_bytes()  # (protobuf records: their strings are stored as they are)
    for text in ("value_loss", "episode_return", "learning_rate", "0.00123", str(run_dir.resolve()), "model.pt"):
        assert text.encode() in record, text
    media = offline / "files" / "media"
    assert [p.name.split("_")[:2] for p in (media / "videos").glob("*.mp4")] == [["video", "256"]]  # at its step
    assert len(list((media / "images").glob("learning_curve_*.png"))) == 1


def test_without_a_wandb_login_it_logs_offline_and_says_so(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb")
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert not wandb_logged_in()
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_logged_in()
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path / "run", **SMALL).learn(
        128, track="wandb", progress_bar=False)
    assert "no W&B login found" in capsys.readouterr().err
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_an_unknown_tracker_is_refused_with_the_choices(tmp_path):
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path / "run", **SMALL)
    with pytest.raises(ConfigError, match=r"unknown tracker 'mlflwo' \(did you mean: mlflow\?\); choose one of mlflow, wandb"):
        agent.learn(128, track="mlflwo")
    assert not (tmp_path / "run").exists()  # refused before anything is written
    r = subprocess.run([sys.executable, "-m", "ascent.cli", "train", "ppo", "--env", "CartPole-v1", "--steps", "64",
                        "--track", "neptune"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "invalid choice: 'neptune' (choose from" in r.stderr, r.stderr


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_tracker_that_is_not_installed_names_the_extra(tmp_path, monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # (import then raises ImportError)
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path / "run", **SMALL)
    with pytest.raises(ConfigError, match=rf"tracking with {tracker} needs the {tracker} package: "
                                          r"pip install 'ascent-rl\[track\]'"):
        agent.learn(128, track=tracker)
    assert not (tmp_path / "run").exists()


def test_tracking_and_videos_need_a_run_directory():
    with pytest.raises(ConfigError, match="tracking .track='mlflow'. works on a run directory"):
        ascent.PPO("CartPole-v1", seed=0, verbose=0, **SMALL).learn(128, track="mlflow")
    with pytest.raises(ConfigError, match="video_every works on a run directory"):
        ascent.PPO("CartPole-v1", seed=0, verbose=0, video_every=64, **SMALL).learn(128)


def test_params_are_flat_strings():
    info = {"algo": "ppo", "env_id": "ALE/Pong-v5", "seed": 3, "preset": None,
            "config": {"net_arch": [64, 64], "target_kl": None, "schedule": {"kind": "lin", "start": 1e-3}}}
    assert flat_params(info) == {"algo": "ppo", "env_id": "ALE/Pong-v5", "seed": "3", "preset": "None",
                                 "net_arch": "64,64", "target_kl": "None", "schedule.kind": "lin",
                                 "schedule.start": "0.001"}

"""Experiment tracking: a run's config, metrics rows, videos and final files sent to MLflow or Weights &
Biases (`ascent train --track mlflow|wandb`, `agent.learn(steps, track="mlflow")`). The run directory's
own metrics.csv and TensorBoard events stay on: a tracker is one more place the same rows go.

MLflow logs into MLFLOW_TRACKING_URI, else a SQLite store `mlruns.db` in the working directory (the
artifacts under ./mlruns/; `mlflow ui --backend-store-uri sqlite:///mlruns.db` shows it), experiment
MLFLOW_EXPERIMENT_NAME or "ascent". W&B logs into the project WANDB_PROJECT or "ascent"; with no login
(`wandb login`, WANDB_API_KEY) and no WANDB_MODE it logs offline into ./wandb/ and says so (`wandb sync`
uploads it later), rather than stopping a run to ask for a key.

The tracked run's id is kept in RUN_DIR/tracking.json, so that a resumed run (`ascent resume RUN
--track mlflow`) continues the same tracked run.
"""

from __future__ import annotations

import importlib
import json
import netrc
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from ascent.errors import AscentError, ConfigError, TrainingInterrupted, did_you_mean

TRACKERS = ("mlflow", "wandb")
TRACKING_FILE = "tracking.json"  # {tracker: {"run_id": ..., ...}} in the run directory
PROJECT = "ascent"  # the MLflow experiment and the W&B project, unless the environment names one


def check_tracker(name: str) -> None:
    """ConfigError for a tracker name that is not one of TRACKERS, or whose package is not installed."""
    if name not in TRACKERS:
        raise ConfigError(f"unknown tracker {name!r}{did_you_mean(name, TRACKERS)}; choose one of {', '.join(TRACKERS)}")
    try:
        importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"tracking with {name} needs the {name} package: pip install 'ascent-rl[track]'") from None


def open_tracker(name: str, run_dir: str | os.PathLike, info: dict[str, Any]) -> "Tracker":
    """The tracked run of the run directory `run_dir` (its run_info(): algo, env_id, seed, preset,
    config): the one tracking.json names, continued, or a new one whose id it then records."""
    check_tracker(name)
    return {"mlflow": MlflowTracker, "wandb": WandbTracker}[name](Path(run_dir), info)


def read_tracking(run_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """RUN_DIR/tracking.json ({} where the run was not tracked, or the file is unreadable)."""
    path = Path(run_dir) / TRACKING_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}


def flat_params(info: dict[str, Any]) -> dict[str, str]:
    """The run's identity and resolved config as flat string params: lists as `64,64` (what --set
    takes back), nested dicts as `key.sub`."""
    params: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{key}.{k}", v)
        elif isinstance(value, (list, tuple)):
            params[key] = ",".join(str(v) for v in value)
        else:
            params[key] = str(value)

    for key in ("algo", "env_id", "seed", "preset"):
        put(key, info.get(key))
    for key, value in info.get("config", {}).items():
        put(key, value)
    return params


def numeric(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics row (a row may hold other values)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class Tracker:
    """One tracked run, as the training loop sees it: metrics rows, videos, the final files, and its
    end. Used as a context manager, it ends with the status the way out says: finished, interrupted
    (TrainingInterrupted, a second Ctrl-C) or failed."""

    name: ClassVar[str]

    def __init__(self, run_dir: Path, info: dict[str, Any]):
        self.run_dir = run_dir.resolve()
        self.info = info
        self.previous = read_tracking(run_dir).get(self.name)  # the run to continue, if any

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        raise NotImplementedError

    def log_video(self, step: int, folder: Path) -> None:
        """The videos (*.mp4) filmed at `step` into `folder`."""
        raise NotImplementedError

    def log_files(self, curve: Path, model: Path) -> None:
        """The learning curve and the trained model, at the end of training."""
        raise NotImplementedError

    def close(self, status: str) -> None:
        """End the tracked run: status is "finished", "interrupted" or "failed"."""
        raise NotImplementedError

    def record(self, **values: Any) -> None:
        """Write this tracker's run id (and where it lives) into tracking.json, beside other trackers'."""
        tracking = read_tracking(self.run_dir)
        tracking[self.name] = values
        (self.run_dir / TRACKING_FILE).write_text(json.dumps(tracking, indent=2) + "\n")

    def tags(self) -> dict[str, str]:
        return {"algo": str(self.info.get("algo")), "env_id": str(self.info.get("env_id")),
                "seed": str(self.info.get("seed")), "run_dir": str(self.run_dir)}

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, kind: type | None, err: BaseException | None, tb: Any) -> None:
        if kind is None:
            self.close("finished")
            return
        try:  # (the error that ended training is the one to report, not a failure to say so to the tracker)
            self.close("interrupted" if issubclass(kind, (TrainingInterrupted, KeyboardInterrupt)) else "failed")
        except Exception as close_err:
            print(f"ascent: {self.name} could not mark its run as ended ({close_err})", file=sys.stderr)


class MlflowTracker(Tracker):
    """MLflow through its client (no global active run): params once, a metric batch per row,
    artifacts under videos/, learning_curve.png and model/."""

    name = "mlflow"
    STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}

    def __init__(self, run_dir: Path, info: dict[str, Any]):
        super().__init__(run_dir, info)
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        previous = self.previous or {}
        # The store a resumed run was tracked in, unless the environment names another.
        uri = os.environ.get("MLFLOW_TRACKING_URI") or previous.get("tracking_uri") \
            or f"sqlite:///{Path('mlruns.db').resolve()}"
        self.client = MlflowClient(tracking_uri=uri)
        self.run_id = None
        try:
            if previous.get("run_id"):
                try:
                    self.run_id = self.client.get_run(previous["run_id"]).info.run_id
                    self.client.update_run(self.run_id, status="RUNNING")
                except MlflowException:
                    print(f"ascent: MLflow run {previous['run_id']} of {run_dir} is not in {uri}; tracking the "
                          "resumed run as a new one", file=sys.stderr)
            if self.run_id is None:
                experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
                experiment = self.client.get_experiment_by_name(experiment_name)
                experiment_id = (experiment.experiment_id if experiment is not None
                                 else self.client.create_experiment(experiment_name))
                run = self.client.create_run(experiment_id, run_name=self.run_dir.name, tags=self.tags())
                self.run_id = run.info.run_id
                self.log_batch(params=flat_params(info))
        except MlflowException as err:
            raise ConfigError(f"MLflow could not open a run in {uri}: {str(err).splitlines()[0]}; check "
                              "MLFLOW_TRACKING_URI (unset: sqlite:///mlruns.db here)") from None
        self.record(run_id=self.run_id, tracking_uri=uri)
        print(f"ascent: tracking with MLflow: run {self.run_id} in {uri}", file=sys.stderr)

    def log_batch(self, metrics: dict[str, float] | None = None, step: int = 0, params: dict[str, str] | None = None):
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in (metrics or {}).items()],
                              params=[Param(k, v) for k, v in (params or {}).items()])

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.log_batch(numeric(metrics), step)

    def log_video(self, step: int, folder: Path) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path=f"videos/{folder.name}")

    def log_files(self, curve: Path, model: Path) -> None:
        for path, where in ((curve, None), (model, "model")):
            if path.exists():
                self.client.log_artifact(self.run_id, str(path), artifact_path=where)

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, self.STATUS[status])


def wandb_logged_in() -> bool:
    """Whether W&B finds a key without asking: WANDB_API_KEY (or an identity token file), or a
    netrc entry for its host, where `wandb login` writes it."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbTracker(Tracker):
    """Weights & Biases: the config as the run's config, a history row per metrics row (step: env
    steps), each video as a wandb.Video, the curve as an image and the model as an artifact."""

    name = "wandb"
    EXIT_CODE = {"finished": 0, "interrupted": 130, "failed": 1}

    def __init__(self, run_dir: Path, info: dict[str, Any]):
        super().__init__(run_dir, info)
        import wandb

        self.wandb = wandb
        mode = os.environ.get("WANDB_MODE")
        if mode is None and not wandb_logged_in():
            mode = "offline"
            print("ascent: no W&B login found (`wandb login` or WANDB_API_KEY): logging offline into ./wandb/; "
                  "`wandb sync wandb/offline-run-*` uploads it later (WANDB_MODE=offline chooses this without the note)",
                  file=sys.stderr)
        run_id = (self.previous or {}).get("run_id")
        config = {**info.get("config", {}), **{k: info.get(k) for k in ("algo", "env_id", "seed", "preset")},
                  "run_dir": str(self.run_dir)}
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=self.run_dir.name,
                                  group=f"{info.get('algo')}-{info.get('env_id')}",
                                  tags=[str(info.get("algo")), str(info.get("env_id"))], config=config,
                                  id=run_id, resume="allow" if run_id else None, mode=mode,
                                  dir=os.environ.get("WANDB_DIR"))  # (read now: W&B keeps a process's first)
        except Exception as err:  # (wandb raises its own errors, and others from its service, on a failed start)
            if isinstance(err, AscentError):
                raise
            raise ConfigError(f"W&B could not start a run ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                              "log in with `wandb login`, or run offline with WANDB_MODE=offline") from None
        self.record(run_id=self.run.id, project=self.run.project)
        print(f"ascent: tracking with W&B: run {self.run.id} ({mode or 'online'})", file=sys.stderr)

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.run.log(numeric(metrics), step=step)

    def log_video(self, step: int, folder: Path) -> None:
        videos = sorted(folder.glob("*.mp4"))
        if videos:  # (W&B reads the file itself: no moviepy needed here)
            self.run.log({"video": [self.wandb.Video(str(v), format="mp4") for v in videos]}, step=step)

    def log_files(self, curve: Path, model: Path) -> None:
        if curve.exists():
            self.run.log({"learning_curve": self.wandb.Image(str(curve))})
        if model.exists():
            # Artifact names: letters, digits, - _ . (an Atari id's / is not one)
            artifact = self.wandb.Artifact(re.sub(r"[^\w.-]", "-", f"{self.run_dir.name}-model"), type="model")
            artifact.add_file(str(model))
            self.run.log_artifact(artifact)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=self.EXIT_CODE[status])

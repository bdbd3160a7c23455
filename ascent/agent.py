"""What every algorithm shares: construction, the training loop's bookkeeping, evaluation, acting,
save/load and resume. An algorithm subclasses `Agent` once (no deeper) and writes three things:
`setup()` (networks, optimizer, storage), `train_iteration()` (collect experience and update, in
reading order, returning its metrics) and `modules()` (what its checkpoint must hold).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import gymnasium as gym
import numpy as np
import torch

from ascent.atari import is_atari_id, make_atari_env
from ascent.checkpoint import load_checkpoint, save_checkpoint
from ascent.config import build_config, config_to_dict, field_types, coerce
from ascent.envs import EnvLike, VecEnv, env_id_of, make_vec_env
from ascent.errors import CheckpointError, ConfigError, EnvError, TrainingDiverged
from ascent.evaluation import evaluate_policy
from ascent.logger import MetricsLog, ProgressBar, truncate_csv

# A callback gets the agent and the iteration's metrics; returning False stops training.
Callback = Callable[["Agent", dict], Any]
AGENT_STREAM = 0x617363  # first word of the agent's numpy seed: a stream apart from the envs'


def package_versions() -> dict[str, str]:
    import ascent

    versions = {"python": platform.python_version(), "ascent": ascent.__version__, "torch": str(torch.__version__),
                "gymnasium": gym.__version__, "numpy": np.__version__}
    for name in ("mujoco", "Box2D"):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "__version__"):
            versions[name] = str(mod.__version__)
    return versions


class Agent:
    """Base of every algorithm: `Algo(env, seed=0, run_dir=None, preset=None, **hyperparameters)`."""

    algo: ClassVar[str] = ""
    Config: ClassVar[type]

    def __init__(
        self,
        env: EnvLike,
        seed: int = 0,
        run_dir: str | os.PathLike | None = None,
        preset: str | None = None,
        verbose: int = 1,
        config: Any | None = None,
        **hyperparameters: Any,
    ):
        self.env_id = env_id_of(env)
        if config is not None:  # a ready config (from a checkpoint, or built by the user)
            types = field_types(self.Config)
            for key in hyperparameters:
                if key not in types:
                    raise ConfigError(f"unknown hyperparameter {key!r} for {self.algo}")
            config = dataclasses.replace(config, **{k: coerce(k, v, types[k]) for k, v in hyperparameters.items()})
            config.validate()
            self.config, self.preset = config, preset
        else:
            self.config, self.preset = build_config(self.Config, self.algo, self.env_id, preset, hyperparameters)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.verbose = verbose
        torch.set_num_threads(self.config.torch_threads)
        # Adam's second moments of parameters whose gradient is often zero (dead ReLUs, unused
        # inputs) decay into subnormal floats, which x86 computes ~100x slower: a DQN update spent
        # 0.5 ms of its 1.7 ms in Adam until subnormals were flushed to zero (benchmarks/RESULTS.md).
        torch.set_flush_denormal(True)
        torch.manual_seed(self.seed)
        # The agent's own numpy stream (exploration, sampled actions). Not default_rng(seed):
        # Gymnasium seeds env i with PCG64(SeedSequence(seed + i)), the very stream that would give,
        # so env 0's randomness and the agent's draws would be one sequence, correlated.
        self.rng = np.random.default_rng([AGENT_STREAM, self.seed])
        self._env_source = env
        self.envs = VecEnv(make_vec_env(env, self.config.n_envs, self.config.vectorization))
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.num_steps = 0  # env steps taken in training, over all envs
        self.iteration = 0
        self.target_steps = 0  # num_steps at which the current learn() call ends (schedules use it)
        self.episode_returns: collections.deque = collections.deque(maxlen=100)
        self._iteration_episodes: list[tuple[float, int]] = []
        self.obs: np.ndarray | None = None
        self._log: MetricsLog | None = None
        self.setup()

    # ---- to be written by each algorithm ------------------------------------------------------------
    def setup(self) -> None:
        raise NotImplementedError

    def train_iteration(self) -> dict[str, float]:
        """Collect experience, update, and return metrics (floats). Must advance self.num_steps."""
        raise NotImplementedError

    def modules(self) -> dict[str, Any]:
        """Objects with state_dict()/load_state_dict() that a checkpoint holds (policy, optimizer...)."""
        raise NotImplementedError

    def policy_action(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Batched raw observations -> env actions (used by act and evaluate); by default the
        algorithm's `self.policy.env_action`."""
        return self.policy.env_action(obs, deterministic)

    def _checkpointed(self) -> dict[str, Any]:
        """modules() plus the reward scaler, when the algorithm has one."""
        mods = dict(self.modules())
        if getattr(self, "reward_scaler", None) is not None:
            mods["reward_scaler"] = self.reward_scaler
        return mods

    # ---- shared helpers for algorithms ----------------------------------------------------------------
    @property
    def progress(self) -> float:
        """Fraction of the current learn() call's target done, in [0, 1] (for schedules)."""
        return min(1.0, self.num_steps / self.target_steps) if self.target_steps else 0.0

    def record_episodes(self, episodes: list[tuple[float, int]]) -> None:
        self._iteration_episodes.extend(episodes)
        self.episode_returns.extend(r for r, _ in episodes)

    def _env_seed(self) -> int:
        """Seed for (re)setting the envs: the run's seed at the start, derived from it on resume."""
        if self.iteration == 0:
            return self.seed
        return int(np.random.SeedSequence([self.seed, self.iteration]).generate_state(1)[0] % (2**31))

    # ---- training loop --------------------------------------------------------------------------------
    def learn(self, total_steps: int, callbacks: Iterable[Callback] | Callback = (), progress_bar: bool | None = None):
        """Train for `total_steps` more env steps. Returns self.

        Every iteration: metrics go to the run dir (CSV, TensorBoard), callbacks are called
        (returning False stops), checkpoints are written every `checkpoint_every` steps, and NaN/inf
        in a loss or parameter stops training with TrainingDiverged (the last good checkpoint kept).
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps <= 0:
            raise ConfigError(f"total_steps must be a positive integer, got {total_steps!r}")
        callbacks = [callbacks] if callable(callbacks) else list(callbacks)
        self.target_steps = self.num_steps + int(total_steps)
        if self.run_dir is not None:
            self._write_run_config()
            self._log = self._log or MetricsLog(self.run_dir)
        if self.obs is None:
            self.obs = self.envs.reset(seed=self._env_seed())
            if getattr(self, "replay", None) is not None:  # a loaded buffer's episodes end here
                self.replay.cut_episodes()
        show = (self.verbose > 0) if progress_bar is None else progress_bar
        bar = ProgressBar(self.target_steps, self.num_steps, enabled=show, desc=f"{self.algo} {self.env_id or ''}".strip())
        start, start_steps = time.perf_counter(), self.num_steps
        next_checkpoint = self._next_multiple(self.config.checkpoint_every)
        next_eval = self._next_multiple(self.config.eval_every)
        try:
            while self.num_steps < self.target_steps:
                before = self.num_steps
                metrics = self.train_iteration()
                self.iteration += 1
                self._check_finite(metrics, parameters=False)  # parameters: before each checkpoint
                if self.episode_returns:
                    metrics["episode_return_100"] = float(np.mean(self.episode_returns))
                if next_eval and self.num_steps >= next_eval:
                    ev = self.evaluate(self.config.eval_episodes)
                    metrics["eval_return"], metrics["eval_return_std"] = ev["mean_return"], ev["std_return"]
                    next_eval = self._next_multiple(self.config.eval_every)
                # A row every log_interval iterations (and with every evaluation); the episodes that
                # ended since the last row are averaged into it.
                if self._log is not None and (self.iteration % self.config.log_interval == 0 or "eval_return" in metrics):
                    elapsed = time.perf_counter() - start
                    metrics.update(self._episode_metrics())
                    metrics["steps_per_s"] = (self.num_steps - start_steps) / max(elapsed, 1e-9)
                    metrics["wall_time"] = elapsed
                    self._log.write(self.num_steps, metrics)
                bar.update(self.num_steps - before, metrics.get("episode_return_100"))
                if next_checkpoint and self.num_steps >= next_checkpoint and self.run_dir is not None:
                    self._check_finite(metrics)
                    self.save(self.run_dir / "checkpoints" / "last.pt")
                    next_checkpoint = self._next_multiple(self.config.checkpoint_every)
                if any(cb(self, metrics) is False for cb in callbacks):
                    break
        finally:
            bar.close()
            if self._log is not None:
                self._log.close()
                self._log = None
        if self.run_dir is not None:
            self._check_finite({})
            self.save(self.run_dir / "checkpoints" / "last.pt")
            self.save(self.run_dir / "model.pt", replay=False)
            from ascent.plotting import plot_runs

            plot_runs([self.run_dir], self.run_dir / "learning_curve.png", title=f"{self.algo} {self.env_id or ''}")
        return self

    def _next_multiple(self, every: int) -> int:
        return (self.num_steps // every + 1) * every if every else 0

    def _episode_metrics(self) -> dict[str, float]:
        """Mean return and length of the episodes that ended since the last call."""
        eps, self._iteration_episodes = self._iteration_episodes, []
        if not eps:
            return {}
        return {"episode_return": float(np.mean([r for r, _ in eps])),
                "episode_length": float(np.mean([n for _, n in eps]))}

    def _check_finite(self, metrics: dict[str, float], parameters: bool = True) -> None:
        """TrainingDiverged if a metric (or, with `parameters`, a parameter) is NaN or inf.
        Parameters are scanned when a metric is bad and before every checkpoint, not every iteration."""
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if not bad and not parameters:
            return
        bad_params = [
            f"{name}.{pname}" for name, mod in self.modules().items() if isinstance(mod, torch.nn.Module)
            for pname, p in mod.named_parameters() if not torch.isfinite(p).all()
        ]
        if bad or bad_params:
            where = ", ".join(bad + bad_params[:3])
            kept = (f"the last good checkpoint {self.run_dir / 'checkpoints' / 'last.pt'} is kept"
                    if self.run_dir is not None and (self.run_dir / "checkpoints" / "last.pt").exists()
                    else "no checkpoint had been written yet")
            raise TrainingDiverged(
                f"training diverged at iteration {self.iteration} (step {self.num_steps}): non-finite {where}; "
                f"{kept}; try a lower learning_rate, max_grad_norm, or normalize_obs/normalize_reward"
            )

    # ---- acting and evaluation --------------------------------------------------------------------------
    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action(s) for one observation or a batch of them (numpy in, numpy out)."""
        obs = np.asarray(obs)
        space = self.envs.observation_space
        single = obs.shape == space.shape
        batch = obs[None] if single else obs
        actions = self.policy_action(batch, deterministic)
        return actions[0] if single else actions

    def evaluate(self, episodes: int = 10, deterministic: bool = True, env: EnvLike | None = None,
                 seed: int | None = None, video_dir: str | os.PathLike | None = None) -> dict:
        """Mean and std of the return over `episodes` full episodes (a fresh env, its own seed).

        Returns {mean_return, std_return, episodes, mean_length, returns, lengths}."""
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes <= 0:
            raise ConfigError(f"episodes must be a positive integer, got {episodes!r}")
        source = env if env is not None else self._eval_env_source()
        if video_dir is not None:
            source = self._video_env(source, video_dir)
        seed = self.seed + 10_000 if seed is None else seed
        return evaluate_policy(lambda o: self.policy_action(o, deterministic), source, episodes, seed)

    def _eval_env_source(self) -> EnvLike:
        src = self._env_source
        if isinstance(src, str) or (callable(src) and not isinstance(src, (gym.Env, gym.vector.VectorEnv))):
            return src
        if self.env_id is not None:
            return self.env_id
        raise EnvError("cannot create an evaluation env from an env instance without a registered id; pass env= to evaluate()")

    @staticmethod
    def _video_env(source: EnvLike, video_dir: str | os.PathLike) -> Callable[[], gym.Env]:
        if not isinstance(source, str):
            raise EnvError("--video needs an env id (the env is re-created with render_mode='rgb_array')")
        try:
            import moviepy  # noqa: F401  (RecordVideo needs it)
        except ImportError:
            raise EnvError("recording video needs moviepy: pip install 'ascent-rl[video]'") from None

        def factory() -> gym.Env:
            if is_atari_id(source):  # the evaluation pipeline, filmed at the agent's frame rate
                env = make_atari_env(source, training=False, render_mode="rgb_array")
            else:
                env = gym.make(source, render_mode="rgb_array")
            return gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True, disable_logger=True)

        return factory

    # ---- checkpoints -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue training exactly: config, counters, RNG, module states."""
        return {
            "algo": self.algo,
            "env_id": self.env_id,
            "seed": self.seed,
            "preset": self.preset,
            "config": config_to_dict(self.config),
            "num_steps": self.num_steps,
            "iteration": self.iteration,
            "target_steps": self.target_steps,
            "episode_returns": list(self.episode_returns),
            "rng": {"torch": torch.get_rng_state(), "numpy": json.dumps(self.rng.bit_generator.state)},
            "modules": {name: mod.state_dict() for name, mod in self._checkpointed().items()},
            "versions": package_versions(),
        }

    def save(self, path: str | os.PathLike, replay: bool | None = None) -> Path:
        """Write a checkpoint (atomically); `Algo.load(path)` restores it. Off-policy agents also write
        their replay buffer to PATH.replay.pt when `replay` is True (default: the config's
        save_replay_buffer), and `load` picks it up from there."""
        path = save_checkpoint(path, self.state())
        buffer = getattr(self, "replay", None)
        if replay is None:
            replay = bool(getattr(self.config, "save_replay_buffer", False))
        if replay and buffer is not None:
            save_checkpoint(replay_path(path), {"replay": buffer.state_dict()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, env: EnvLike | None = None, run_dir: str | os.PathLike | None = None,
             verbose: int = 1) -> "Agent":
        """An agent restored from a checkpoint: same config, weights, optimizer, normalizers, counters, RNG."""
        payload = load_checkpoint(path)
        if cls.algo and payload.get("algo") != cls.algo:
            raise CheckpointError(f"{path} holds a {payload.get('algo')!r} agent, not {cls.algo!r}; load it with that algorithm")
        if cls is Agent:
            from ascent.algorithms import get_algorithm

            cls = get_algorithm(payload["algo"])
        env = env if env is not None else payload.get("env_id")
        if env is None:
            raise CheckpointError(f"{path} was trained on an env without a registered id; pass env= to load()")
        try:
            config = cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items()})
        except TypeError as err:
            raise CheckpointError(f"{path}: its config does not match this version of {cls.algo}: {err}") from None
        agent = cls(env, seed=payload["seed"], run_dir=run_dir, preset=payload.get("preset"), verbose=verbose, config=config)
        agent._restore(payload, str(path))
        buffer = getattr(agent, "replay", None)
        if buffer is not None and replay_path(path).exists():
            buffer.load_state_dict(load_checkpoint(replay_path(path))["replay"])
        return agent

    def _restore(self, payload: dict[str, Any], where: str) -> None:
        try:
            for name, mod in self._checkpointed().items():
                mod.load_state_dict(payload["modules"][name])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{where}: its weights do not fit this env/config ({str(err).splitlines()[0][:200]})") from None
        self.num_steps = int(payload["num_steps"])
        self.iteration = int(payload["iteration"])
        self.target_steps = int(payload["target_steps"])
        self.episode_returns.extend(payload.get("episode_returns", []))
        torch.set_rng_state(payload["rng"]["torch"])
        self.rng.bit_generator.state = json.loads(payload["rng"]["numpy"])

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, progress_bar: bool | None = None, verbose: int = 1) -> "Agent":
        """Continue an interrupted run from its last checkpoint up to the steps it was asked for."""
        run_dir = Path(run_dir)
        ckpt = run_dir / "checkpoints" / "last.pt"
        if not run_dir.is_dir():
            raise CheckpointError(f"no run directory at {run_dir}")
        if not ckpt.exists():
            raise CheckpointError(f"{run_dir} has no checkpoint (checkpoints/last.pt); it cannot be resumed, start it again")
        agent = cls.load(ckpt, run_dir=run_dir, verbose=verbose)
        truncate_csv(run_dir / "metrics.csv", agent.num_steps)  # rows after the checkpoint are redone
        if agent.num_steps < agent.target_steps:
            agent.learn(agent.target_steps - agent.num_steps, progress_bar=progress_bar)
        return agent

    def _write_run_config(self) -> None:
        assert self.run_dir is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "algo": self.algo,
            "env_id": self.env_id,
            "seed": self.seed,
            "preset": self.preset,
            "target_steps": self.target_steps,
            "config": config_to_dict(self.config),
            "versions": package_versions(),
            "command": sys.argv,
        }
        tmp = self.run_dir / "config.json.tmp"
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(self.run_dir / "config.json")


def replay_path(checkpoint: str | os.PathLike) -> Path:
    """Where the replay buffer of an off-policy checkpoint is written: last.pt -> last.replay.pt."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".replay.pt")


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run directory's config.json, or CheckpointError if missing or unreadable."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"no run directory at {run_dir}")
    if not path.exists():
        raise CheckpointError(f"{run_dir} is not an ascent run directory (no config.json)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt ({err}); the run's config cannot be read") from None

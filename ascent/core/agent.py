"""The Agent contract: what an algorithm fills in, and what every agent offers its user.

An algorithm subclasses `Agent` (a variant that differs only in its config may subclass its
algorithm: NPG(TRPO), DDPG(TD3), SARSA(QLearning)) and writes four things, in reading order:
  setup()            its networks, optimizers and storage
  train_iteration()  collect experience and update, returning the iteration's metrics; advances num_steps
  modules()          the objects with state_dict()/load_state_dict() its checkpoint holds
  act_batch(obs, deterministic)  batched raw observations -> env actions (acting and evaluation)
and may set the optional parts the base declares: `policy` (an on-policy ActorCritic: then
act_batch needs no writing), `replay` (a replay buffer: written beside checkpoints when
`save_replay`, the config's save_replay_buffer, says so, and loaded back), `reward_scaler`
(checkpointed with the modules). Numbers training continues from that are not weights (update
counts, the step of the next target update) go in a `Counters` among the modules.

The run around it (the loop's bookkeeping, the run directory, metrics, checkpoint cadence, resume,
the final plot) is ascent.core.run's; process-wide torch settings are ascent.core.process's.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import gymnasium as gym
import numpy as np
import torch

from ascent.core import run as runner
from ascent.core.checkpoint import load_checkpoint, save_checkpoint
from ascent.core.config import build_config, coerce, config_to_dict, field_types
from ascent.core.evaluation import evaluate_policy
from ascent.core.process import configure_torch, on_device, resolve_device
from ascent.envs.atari import ATARI_VIDEO_FPS, is_atari_id, make_atari_env
from ascent.envs.board_games import is_board_game_id
from ascent.envs.multiagent import is_multiagent_id
from ascent.envs.vector import (EnvLike, EnvSpec, VecEnv, batch_of, env_id_of, env_spec_of, importable_env_id,
                                is_single_observation, make_vec_env)
from ascent.errors import CheckpointError, ConfigError, EnvError
from ascent.nets.layers import is_image_space
from ascent.version import __version__

AGENT_STREAM = 0x617363  # first word of the agent's numpy seed: a stream apart from the envs'


class Counters:
    """Numbers an algorithm's training continues from that are not network weights (update counts,
    the step of the next target update, a drawn next action, noise state): put it in modules() and
    the checkpoint holds it like a network. Values are numbers, None, or numpy arrays (restored in
    place, so an array shared with its owner stays shared). A checkpoint written before an
    algorithm had counters loads with their starting values."""

    def __init__(self, **values: Any):
        vars(self).update(values)

    def state_dict(self) -> dict[str, Any]:
        return {k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v for k, v in vars(self).items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            current = vars(self).get(key)
            if isinstance(value, torch.Tensor):
                value = value.numpy()
                if isinstance(current, np.ndarray) and current.shape == value.shape:
                    current[...] = value
                    continue
            setattr(self, key, value)


def spec_json(spec: EnvSpec | None) -> str | None:
    """An env spec as JSON for a checkpoint, or None where it has none or it cannot be written (kwargs
    that are not plain data): loading then makes the env from its id, or asks for env=."""
    if spec is None:
        return None
    try:
        return spec.to_json()
    except (ValueError, TypeError, gym.error.Error):
        return None


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "ascent": __version__, "torch": str(torch.__version__),
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
    curve_metric: ClassVar[str] = "episode_return"  # the column of the run's learning_curve.png
    # What `ascent tune` searches by default, in ascent.tuning.spaces' format (the module's SEARCH_SPACE,
    # next to its config); {}: none declared, the user gives one with --space.
    search_space: ClassVar[dict[str, Any]] = {}
    # Optional parts, set by setup() where an algorithm has them (see the module docstring).
    policy: Any = None
    replay: Any = None
    save_replay: bool = False  # write `replay` beside every checkpoint (the off-policy configs' save_replay_buffer)
    reward_scaler: Any = None
    finished: bool = False  # set by an algorithm whose training ends before its steps (BC's early stopping)

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
            if preset is None and self.preset is not None and verbose > 0:  # chosen for the env: say so
                print(f"{self.algo}: hyperparameters from the preset '{self.preset}' made for {self.env_id} "
                      f"(`ascent list {self.algo}`); preset='none' gives the defaults", file=sys.stderr)
        if isinstance(env, gym.vector.VectorEnv):  # a ready vector env sets n_envs: storage and buffers fit it
            if "n_envs" in hyperparameters and self.config.n_envs != env.num_envs:
                raise ConfigError(f"n_envs={self.config.n_envs} conflicts with the given VectorEnv's {env.num_envs} "
                                  "envs; drop n_envs (a ready VectorEnv sets it) or pass an env id to vectorize")
            self.config = dataclasses.replace(self.config, n_envs=env.num_envs)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        if seed < 0:
            raise ConfigError(f"seed must be a non-negative integer (numpy and Gymnasium seeds are), got {seed}")
        self.seed = int(seed)
        self.verbose = verbose
        configure_torch(self.config.torch_threads)
        torch.manual_seed(self.seed)
        # The agent's own numpy stream (exploration, sampled actions). Not default_rng(seed):
        # Gymnasium seeds env i with PCG64(SeedSequence(seed + i)), the very stream that would give,
        # so env 0's randomness and the agent's draws would be one sequence, correlated.
        self.rng = np.random.default_rng([AGENT_STREAM, self.seed])
        self._env_source = env
        self.env_spec = env_spec_of(env)  # an env instance's wrappers and time limit, to make it again
        self.envs = VecEnv(make_vec_env(env, self.config.n_envs, self.config.vectorization))
        self.run = runner.RunDirectory(run_dir) if run_dir is not None else None
        self.num_steps = 0  # env steps taken in training, over all envs
        self.iteration = 0
        self.train_seconds = 0.0  # wall-clock seconds of training, over all sessions of a run
        self.target_steps = 0  # num_steps at which the current learn() call ends (schedules use it)
        self.episode_returns: collections.deque = collections.deque(maxlen=100)
        self.iteration_episodes: list[tuple[float, int]] = []  # ended since the last metrics row
        self.obs: np.ndarray | None = None
        # The device of the networks and updates (the config's `device`; the CPU for configs without
        # networks). Storage stays in host memory; setup and train_iteration run on_device().
        self.device = resolve_device(getattr(self.config, "device", "cpu"), is_image_space(self.envs.observation_space))
        with self.on_device():
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

    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Batched raw observations -> env actions (used by act and evaluate); for an algorithm
        with an on-policy `policy`, its env_action."""
        if self.policy is None:
            raise NotImplementedError(f"{type(self).__name__} must define act_batch (it has no on-policy `policy`)")
        return self.policy.env_action(obs, deterministic)

    def release(self) -> None:
        """Let go of what training holds outside this process (a distributed algorithm's Ray actors):
        called when learn() ends, however it ends; the next train_iteration starts them again.
        Nothing for the in-process algorithms."""

    def checkpointed(self) -> dict[str, Any]:
        """modules() plus the reward scaler, when the algorithm has one."""
        mods = dict(self.modules())
        if self.reward_scaler is not None:
            mods["reward_scaler"] = self.reward_scaler
        return mods

    # ---- shared helpers for algorithms ----------------------------------------------------------------
    def on_device(self):
        """The context setup(), train_iteration() and act_batch() run in: tensors made without a
        device are made on the agent's (nothing on the CPU). An algorithm's public methods that
        compute outside those (an update from given data) enter it too."""
        return on_device(self.device)

    @property
    def progress(self) -> float:
        """Fraction of the current learn() call's target done, in [0, 1] (for schedules)."""
        return min(1.0, self.num_steps / self.target_steps) if self.target_steps else 0.0

    def record_episodes(self, episodes: list[tuple[float, int]]) -> None:
        self.iteration_episodes.extend(episodes)
        self.episode_returns.extend(r for r, _ in episodes)

    def _env_seed(self) -> int:
        """Seed for (re)setting the envs: the run's seed at the start, derived from it on resume."""
        if self.iteration == 0:
            return self.seed
        return int(np.random.SeedSequence([self.seed, self.iteration]).generate_state(1)[0] % (2**31))

    def start_episodes(self) -> None:
        """Reset the envs where no episode is under way (a new or a loaded agent); a loaded replay
        buffer's episodes end there."""
        if self.obs is None:
            self.obs = self.envs.reset(seed=self._env_seed())
            if self.replay is not None:
                self.replay.cut_episodes()

    def non_finite_parameters(self) -> list[str]:
        """Names of the network parameters holding NaN or inf."""
        return [f"{name}.{pname}" for name, mod in self.modules().items() if isinstance(mod, torch.nn.Module)
                for pname, p in mod.named_parameters() if not torch.isfinite(p).all()]

    # ---- training: the run's business (ascent.core.run) ------------------------------------------------
    def learn(self, total_steps: int, callbacks: Iterable[runner.Callback] | runner.Callback = (),
              progress_bar: bool | None = None, track: str | None = None) -> "Agent":
        """Train for `total_steps` more env steps. Returns self.

        Every iteration: metrics go to the run dir (CSV, TensorBoard) and to the tracker `track`
        names ("mlflow" or "wandb": ascent.core.tracking), callbacks are called with (agent, metrics)
        (returning False stops), checkpoints are written every `checkpoint_every` steps, and NaN/inf
        in a loss or parameter stops training with TrainingDiverged (the last good checkpoint kept)."""
        return runner.train(self, total_steps, callbacks, progress_bar, track)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, progress_bar: bool | None = None, verbose: int = 1,
               device: str | None = None, ray_address: str | None = None, track: str | None = None) -> "Agent":
        """Continue an interrupted run from its last checkpoint up to the steps it was asked for
        (`device`, `ray_address`: as in load; `track`: continue the run's tracked run with this tracker)."""
        return runner.resume(cls, run_dir, progress_bar, verbose, device, ray_address, track)

    def run_info(self) -> dict[str, Any]:
        """What a run directory's config.json records."""
        return {"algo": self.algo, "env_id": importable_env_id(self.env_id), "seed": self.seed, "preset": self.preset,
                "target_steps": self.target_steps, "config": config_to_dict(self.config),
                "versions": package_versions()}

    # ---- acting and evaluation --------------------------------------------------------------------------
    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action(s) for one observation or a batch of them (numpy in, numpy out; for Dict / Tuple
        spaces a dict / tuple of arrays)."""
        space = self.envs.observation_space
        single = is_single_observation(obs, space)
        with self.on_device():
            actions = self.act_batch(batch_of(space, [obs]) if single else batch_of(space, obs), deterministic)
        return actions[0] if single else actions

    def evaluate(self, episodes: int = 10, deterministic: bool = True, env: EnvLike | None = None,
                 seed: int | None = None, video_dir: str | os.PathLike | None = None) -> dict:
        """Mean and std of the return over `episodes` full episodes (a fresh env, its own seed).

        Returns {mean_return, std_return, episodes, mean_length, returns, lengths}."""
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes <= 0:
            raise ConfigError(f"episodes must be a positive integer, got {episodes!r}")
        source = env if env is not None else self.env_source()
        if video_dir is not None:
            source = self.video_env(source, video_dir, episodes)
        seed = self.seed + 10_000 if seed is None else seed

        def act(obs: Any) -> np.ndarray:
            with self.on_device():
                return self.act_batch(obs, deterministic)

        # Filmed episodes run one after another in one env: parallel envs would write one clip each.
        return evaluate_policy(act, source, episodes, seed, max_parallel=1 if video_dir is not None else 8)

    def env_source(self) -> EnvLike:
        """What makes the agent's env again (evaluation, a distributed algorithm's actors): its id or
        factory, or the full spec of an env instance (with the wrappers and time limit the user added)."""
        src = self._env_source
        if isinstance(src, (str, EnvSpec)) or (callable(src) and not isinstance(src, (gym.Env, gym.vector.VectorEnv))):
            return src
        if self.env_spec is not None:
            return self.env_spec
        raise EnvError("cannot make the evaluation env again from an env instance without a Gymnasium spec; "
                       "pass env= to evaluate() (an id, a factory or an env)")

    @staticmethod
    def video_env(source: EnvLike, video_dir: str | os.PathLike, episodes: int) -> Callable[[], gym.Env]:
        """A factory of the env `source` filmed by Gymnasium's RecordVideo into `video_dir`, one file per
        episode for the first `episodes`. Checked here, so that it fails before training, not when the
        first video is due: EnvError for an env that is not a Gymnasium env made by id or spec (a board
        game, a multi-agent env), for a missing moviepy, and for an env that cannot render here."""
        if isinstance(source, str) and (is_board_game_id(source) or is_multiagent_id(source)):
            raise EnvError(f"{source} is not a Gymnasium env and is not filmed; train and evaluate it without "
                           "video (video_every=0, no --video)")
        if not isinstance(source, (str, EnvSpec)):
            raise EnvError("filming (--video, video_every) needs an env id or spec: the env is made again with "
                           "render_mode='rgb_array'")
        try:
            import moviepy  # noqa: F401  (RecordVideo needs it)
        except ImportError:
            raise EnvError("recording video needs moviepy: pip install 'ascent-rl[video]'") from None

        if not os.environ.get("DISPLAY"):  # headless: SDL (pygame's rendering) needs no screen, and says nothing;
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # MuJoCo renders offscreen through EGL (Mesa's
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # or a GPU driver's libEGL), not GLFW's window
            os.environ.setdefault("MUJOCO_GL", "egl")
        atari = isinstance(source, str) and is_atari_id(source)

        def rendering() -> gym.Env:
            if atari:  # the evaluation pipeline, at the agent's frame rate
                return make_atari_env(source, training=False, render_mode="rgb_array")
            return gym.make(source, render_mode="rgb_array")

        check_renders(rendering, source)

        def factory() -> gym.Env:
            # One file per evaluated episode (rl-video-episode-K.mp4); the episode the env starts after
            # the last one is not filmed. Atari: one frame per agent step, played at the game's speed.
            return gym.wrappers.RecordVideo(rendering(), str(video_dir), episode_trigger=lambda k: k < episodes,
                                            fps=ATARI_VIDEO_FPS if atari else None, disable_logger=True)

        return factory

    # ---- checkpoints -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What training continues from: config, counters, RNG, module states (not the envs: see README, resume)."""
        return {
            "algo": self.algo,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",  # (load_agent imports it)
            "env_id": importable_env_id(self.env_id),
            "env_spec": spec_json(self.env_spec),
            "seed": self.seed,
            "preset": self.preset,
            "config": config_to_dict(self.config),
            "num_steps": self.num_steps,
            "iteration": self.iteration,
            "target_steps": self.target_steps,
            "train_seconds": self.train_seconds,
            "episode_returns": list(self.episode_returns),
            "rng": {"torch": torch.get_rng_state(), "numpy": json.dumps(self.rng.bit_generator.state)},
            "modules": {name: mod.state_dict() for name, mod in self.checkpointed().items()},
            "versions": package_versions(),
        }

    def save(self, path: str | os.PathLike, replay: bool | None = None) -> Path:
        """Write a checkpoint (atomically); `Algo.load(path)` restores it. Off-policy agents also write
        their replay buffer beside it (PATH's stem + .replay-STEP.pt) when `replay` is True (default:
        `save_replay`, the config's save_replay_buffer); the checkpoint names it and `load` reads it.

        The buffer is written first, under a name of its own step, then the checkpoint that names it,
        and only then are older buffers of this checkpoint removed: a crash or a full disk at any
        moment leaves a checkpoint whose buffer is there (the previous pair, or the new one)."""
        path = Path(path)
        if replay is None:
            replay = self.save_replay
        state, buffer_file = self.state(), None
        if replay and self.replay is not None:
            buffer_file = replay_path(path, self.num_steps)
            save_checkpoint(buffer_file, {"replay": self.replay.state_dict(), "num_steps": self.num_steps})
            state["replay_file"] = buffer_file.name
        save_checkpoint(path, state)
        for old in path.parent.glob(f"{path.stem}.replay*.pt"):
            if old != buffer_file:
                old.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, env: EnvLike | None = None, run_dir: str | os.PathLike | None = None,
             verbose: int = 1, device: str | None = None, ray_address: str | None = None) -> "Agent":
        """An agent restored from a checkpoint: same config, weights, optimizer, normalizers, counters, RNG.
        Where it runs may change, not what it learns: `device` (auto, cpu, cuda, cuda:N) replaces the
        device it was trained on (a GPU run loaded on a machine without one: device="cpu"), and
        `ray_address` the Ray cluster of a distributed algorithm."""
        if not cls.algo:
            raise ConfigError("Agent is the base of the algorithms; load a checkpoint with ascent.load(path) "
                              "or with its algorithm's class (ascent.PPO.load(path))")
        payload = load_checkpoint(path)
        if payload.get("algo") != cls.algo:
            raise CheckpointError(f"{path} holds a {payload.get('algo')!r} agent, not {cls.algo!r}; load it with that algorithm")
        if env is None:  # the env it was trained on: an instance's full spec (its wrappers), or the id
            env = EnvSpec.from_json(payload["env_spec"]) if payload.get("env_spec") else payload.get("env_id")
        if env is None:
            raise CheckpointError(f"{path} was trained on an env without a registered id; pass env= to load()")
        # Keys of fields this config retired (the network fields the tabular configs used to stub,
        # unused there) are dropped; any other key the config lacks is a mismatch.
        values = {k: v for k, v in payload["config"].items() if k not in cls.Config.retired_fields}
        try:
            config = cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        except TypeError as err:
            raise CheckpointError(f"{path}: its config does not match this version of {cls.algo}: {err}") from None
        if ray_address is not None and hasattr(config, "ray_address"):
            config = dataclasses.replace(config, ray_address=ray_address)
        if hasattr(config, "device"):
            if device is not None:
                config = dataclasses.replace(config, device=device)
                config.validate()
            elif config.device.startswith("cuda") and not torch.cuda.is_available():
                raise ConfigError(f"{path} was trained with device={config.device!r} and this machine has no GPU torch "
                                  "can use; load it on the CPU: load(path, device='cpu'), or --device cpu")
        agent = cls(env, seed=payload["seed"], run_dir=run_dir, preset=payload.get("preset"), verbose=verbose, config=config)
        agent._restore(payload, str(path))
        name = payload.get("replay_file")  # (checkpoints before buffers were named by step: PATH.replay.pt)
        buffer_file = Path(path).with_name(name) if name else replay_path(path)
        if agent.replay is not None and buffer_file.exists():
            saved = load_checkpoint(buffer_file)
            if saved.get("num_steps", agent.num_steps) != agent.num_steps:  # (files before the step was kept: trusted)
                raise CheckpointError(f"{buffer_file} holds the replay buffer of step {saved['num_steps']}, but {path} is "
                                      f"at step {agent.num_steps}: they come from different moments of the run; delete "
                                      f"{buffer_file.name} to continue with an empty buffer")
            agent.replay.load_state_dict(saved["replay"])
        return agent

    def _restore(self, payload: dict[str, Any], where: str) -> None:
        try:
            for name, mod in self.checkpointed().items():
                if isinstance(mod, Counters) and name not in payload["modules"]:
                    continue  # written before the algorithm kept counters: they start where setup put them
                mod.load_state_dict(payload["modules"][name])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{where}: its weights do not fit this env/config ({str(err).splitlines()[0][:200]})") from None
        self.num_steps = int(payload["num_steps"])
        self.iteration = int(payload["iteration"])
        self.target_steps = int(payload["target_steps"])
        self.train_seconds = float(payload.get("train_seconds", 0.0))  # (checkpoints before it existed: 0)
        self.episode_returns.extend(payload.get("episode_returns", []))
        torch.set_rng_state(payload["rng"]["torch"])
        self.rng.bit_generator.state = json.loads(payload["rng"]["numpy"])


def check_renders(make: Callable[[], gym.Env], source: EnvLike) -> None:
    """EnvError naming the fix unless the env `make` builds renders an RGB frame after a reset."""
    name = source if isinstance(source, str) else getattr(source, "id", "the env")
    env = None
    try:
        env = make()
        env.reset(seed=0)
        frame = env.render()
    except Exception as err:  # (a missing OpenGL platform surfaces as anything from ImportError to mujoco.FatalError)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        hint = ""
        if is_mujoco_env(source):
            hint = (f"; MuJoCo renders headless through MUJOCO_GL=egl (libEGL: Mesa or a GPU driver) or MUJOCO_GL=osmesa "
                    f"(libosmesa6); MUJOCO_GL is {os.environ.get('MUJOCO_GL')!r} here: set one this machine has")
        raise EnvError(f"cannot film {name}: rendering failed ({type(err).__name__}: {first}){hint}") from None
    finally:
        if env is not None:
            env.close()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise EnvError(f"cannot film {name}: it does not render RGB frames (render_mode='rgb_array' gave "
                       f"{type(frame).__name__}); evaluate it without video")


def is_mujoco_env(source: EnvLike) -> bool:
    """Whether an env id or spec is made by Gymnasium's MuJoCo envs (or another package's on mujoco)."""
    try:
        spec = gym.spec(source) if isinstance(source, str) else source
    except gym.error.Error:
        return False
    return "mujoco" in str(getattr(spec, "entry_point", ""))


def load_agent(path: str | os.PathLike, env: EnvLike | None = None, verbose: int = 0, device: str | None = None) -> Agent:
    """The agent saved in a checkpoint, by the class it records: what the layers above the algorithms
    (an imitation algorithm's expert) use where the registry, which sits above them, cannot be asked."""
    payload = load_checkpoint(path)
    where = payload.get("class")
    if not where:
        raise CheckpointError(f"{path} was written by an ascent that did not record its agent's class; load it once "
                              "with ascent.load(path) and save it again (agent.save(path)) to use it here")
    module, name = str(where).split(":")
    cls = getattr(importlib.import_module(module), name)
    return cls.load(path, env=env, verbose=verbose, device=device)


def replay_path(checkpoint: str | os.PathLike, step: int | None = None) -> Path:
    """The replay buffer file of an off-policy checkpoint: last.pt -> last.replay-STEP.pt (step None:
    last.replay.pt, the name checkpoints written before 0.1.x's step-named buffers use)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + (".replay.pt" if step is None else f".replay-{step}.pt"))

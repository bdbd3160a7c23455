"""Demonstrations as Minari datasets: record an agent (or a random policy) into one, read one back.

A dataset is Farama's Minari format (the successor of D4RL's), written locally with its HDF5
backend: a directory PATH holding data/metadata.json (spaces, env spec, counts) and
data/main_data.hdf5 (per episode: observations T+1, actions, rewards, terminations, truncations).
`--set dataset=...` takes such a PATH, its data/ folder, or the id of a dataset installed in
Minari's local store (~/.minari/datasets, or MINARI_DATASETS_PATH); nothing is downloaded.

Reading checks the dataset against the env the algorithm trains on (env id, observation and
action spaces) and turns every failure (missing, empty, corrupt, foreign) into one DatasetError line.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from ascent.core.agent import Agent, load_agent
from ascent.core.run import RunDirectory
from ascent.envs.atari import is_atari_id
from ascent.envs.vector import EnvLike, EnvSpec, check_env_id
from ascent.errors import DatasetError, EnvError

RECORD_HINT = "record one with `ascent collect RUN_DIR --episodes N --out PATH`"


@dataclasses.dataclass
class Demonstrations:
    """A dataset's episodes as flat transitions (N = total steps), in episode order."""

    obs: np.ndarray          # (N, *obs_shape) s_t
    actions: np.ndarray      # (N, *action_shape) a_t
    rewards: np.ndarray      # (N,) float32
    next_obs: np.ndarray     # (N, *obs_shape) s_{t+1} (the final observation at an episode's last step)
    terminated: np.ndarray   # (N,) bool
    truncated: np.ndarray    # (N,) bool
    episode: np.ndarray      # (N,) int: which episode (0..E-1) a transition belongs to
    source: str = ""         # where it was read from
    env_id: str | None = None

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def n_episodes(self) -> int:
        return int(self.episode[-1]) + 1 if len(self) else 0

    @property
    def episode_returns(self) -> np.ndarray:
        return np.bincount(self.episode, weights=self.rewards, minlength=self.n_episodes)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.bincount(self.episode, minlength=self.n_episodes)

    def select_episodes(self, keep: np.ndarray) -> "Demonstrations":
        """The transitions of the episodes `keep` (indices), renumbered 0..len(keep)-1 in that order."""
        keep = np.asarray(keep, dtype=np.int64)
        parts = [np.flatnonzero(self.episode == e) for e in keep]
        idx = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        renumbered = np.repeat(np.arange(len(keep)), [len(p) for p in parts])
        fields = {f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        fields["episode"] = renumbered
        return Demonstrations(**fields, source=self.source, env_id=self.env_id)

    def split(self, validation_fraction: float, rng: np.random.Generator) -> tuple["Demonstrations", "Demonstrations | None"]:
        """(training, validation) by whole episodes (transitions of one episode are correlated: a split
        by transitions would validate on near-copies of training data); no validation set when the
        fraction is 0 or there is a single episode."""
        n_val = int(round(validation_fraction * self.n_episodes))
        if n_val == 0 or self.n_episodes < 2:
            return self, None
        n_val = min(n_val, self.n_episodes - 1)
        order = rng.permutation(self.n_episodes)
        return self.select_episodes(np.sort(order[n_val:])), self.select_episodes(np.sort(order[:n_val]))

    @classmethod
    def from_episodes(cls, episodes: list[dict[str, np.ndarray]], source: str = "", env_id: str | None = None) -> "Demonstrations":
        """From episodes with observations (T+1, ...), actions (T, ...), rewards, terminations, truncations (T,)."""
        if not episodes:
            raise DatasetError(f"{source or 'the dataset'} holds no episodes; {RECORD_HINT}")
        cat = np.concatenate
        return cls(
            obs=cat([e["observations"][:-1] for e in episodes]),
            actions=cat([e["actions"] for e in episodes]),
            rewards=cat([e["rewards"] for e in episodes]).astype(np.float32),
            next_obs=cat([e["observations"][1:] for e in episodes]),
            terminated=cat([e["terminations"] for e in episodes]).astype(bool),
            truncated=cat([e["truncations"] for e in episodes]).astype(bool),
            episode=np.repeat(np.arange(len(episodes)), [len(e["rewards"]) for e in episodes]),
            source=source, env_id=env_id,
        )


# ---- reading ------------------------------------------------------------------------------------------
def resolve_dataset(source: str | os.PathLike) -> Path:
    """The data/ directory of a dataset given as a path (PATH or PATH/data) or a local Minari id."""
    path = Path(source).expanduser()
    if path.exists():
        for candidate in (path / "data", path):
            if (candidate / "metadata.json").is_file():
                return candidate.resolve()
        raise DatasetError(f"{path} is not a Minari dataset (no metadata.json in it or in {path / 'data'}); {RECORD_HINT}")
    import minari  # (only where an id is looked up: it reads the local store)

    local = minari.storage.get_dataset_path(str(source)) / "data"
    if (local / "metadata.json").is_file():
        return local.resolve()
    try:
        installed = sorted(minari.list_local_datasets())
    except Exception:  # a corrupt local store: the message below still holds
        installed = []
    have = f"; installed: {', '.join(installed)}" if installed else "; no Minari dataset is installed locally"
    raise DatasetError(f"no dataset at {source} and no locally installed Minari dataset with that id{have}; {RECORD_HINT}")


def read_demonstrations(source: str | os.PathLike, env_id: str | None = None,
                        observation_space: gym.Space | None = None, action_space: gym.Space | None = None) -> Demonstrations:
    """A dataset's episodes, checked against the env (its id and spaces, where given)."""
    data = resolve_dataset(source)
    from minari import MinariDataset  # (h5py: only when a dataset is read)

    try:
        ds = MinariDataset(data)
        spec, obs_space, act_space = ds.env_spec, ds.observation_space, ds.action_space
        total = ds.total_episodes
    except Exception as err:  # h5py, json and Minari's own errors on a damaged directory
        raise DatasetError(f"{source}: the Minari dataset cannot be read ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:160] if str(err) else 'no detail'}); it is corrupt or "
                           f"unfinished: {RECORD_HINT}") from None
    recorded_id = spec.id if spec is not None else None
    if env_id is not None and recorded_id is not None and base_id(recorded_id) != base_id(env_id):
        raise DatasetError(f"{source} was recorded on {recorded_id}, not {env_id}: train with --env {recorded_id}, "
                           f"or record a dataset on {env_id}")
    if observation_space is not None and obs_space != observation_space:
        raise DatasetError(f"{source}: its observation space {obs_space} is not the env's {observation_space}; "
                           f"record the dataset on this env")
    if action_space is not None and act_space != action_space:
        raise DatasetError(f"{source}: its action space {act_space} is not the env's {action_space}; "
                           f"record the dataset on this env")
    if not isinstance(obs_space, gym.spaces.Box) or not isinstance(act_space, (gym.spaces.Box, gym.spaces.Discrete)):
        raise DatasetError(f"{source}: ascent's imitation algorithms read Box observations with Discrete or Box actions; "
                           f"this dataset has {obs_space} and {act_space}")
    if total == 0:
        raise DatasetError(f"{source} holds no episodes; {RECORD_HINT}")
    try:
        episodes = [{"observations": np.asarray(e.observations), "actions": np.asarray(e.actions),
                     "rewards": np.asarray(e.rewards), "terminations": np.asarray(e.terminations),
                     "truncations": np.asarray(e.truncations)} for e in ds.iterate_episodes()]
    except Exception as err:
        raise DatasetError(f"{source}: an episode cannot be read ({type(err).__name__}: {str(err)[:160]}); the dataset "
                           f"is corrupt: {RECORD_HINT}") from None
    for i, e in enumerate(episodes):
        if len(e["observations"]) != len(e["actions"]) + 1 or len(e["actions"]) == 0:
            raise DatasetError(f"{source}: episode {i} has {len(e['observations'])} observations for {len(e['actions'])} "
                               "actions (a Minari episode has one more observation than actions); it is corrupt")
    return Demonstrations.from_episodes(episodes, str(source), recorded_id)


def base_id(env_id: str) -> str:
    """An env id without the module prefix of user envs ("mymodule:MyEnv-v0" -> "MyEnv-v0")."""
    return env_id.split(":")[-1]


def dataset_for(agent: Agent, source: str, n_episodes: int = 0) -> Demonstrations:
    """The dataset `source` (the `dataset` hyperparameter), checked against the agent's env and spaces;
    its first `n_episodes` episodes only, where that is > 0."""
    if not source:
        raise DatasetError(f"{agent.algo} learns from demonstrations: pass --set dataset=PATH (a Minari dataset "
                           f"directory or a local Minari id); {RECORD_HINT}")
    demos = read_demonstrations(source, agent.env_id, agent.envs.observation_space, agent.envs.action_space)
    if n_episodes:
        demos = demos.select_episodes(np.arange(min(n_episodes, demos.n_episodes)))
    return demos


# ---- recording -----------------------------------------------------------------------------------------
def make_env(source: EnvLike) -> gym.Env:
    """One env from an id, a spec or a factory (what an agent's env_source gives)."""
    if isinstance(source, str):
        if is_atari_id(source):
            raise EnvError("recording Atari demonstrations is not supported (image datasets); record a vector-"
                           "observation env")
        check_env_id(source)
        return gym.make(source)
    if isinstance(source, EnvSpec):
        return gym.make(source)
    if callable(source):
        return source()
    raise EnvError(f"cannot make an env to record from {source!r}; give an env id")


def record_episodes(act: Callable[[np.ndarray], np.ndarray], env: gym.Env, n_episodes: int, seed: int) -> list[dict]:
    """`n_episodes` episodes of `act` (a batch of one observation -> a batch of one action), episode i
    reset with seed + i; each as Minari's fields (observations T+1, ...) plus its seed."""
    episodes = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = act(obs[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            done = terminated or truncated
        episodes.append({"observations": np.stack(observations), "actions": np.stack(actions),
                         "rewards": np.asarray(rewards, np.float64), "terminations": np.asarray(terms),
                         "truncations": np.asarray(truncs), "seed": seed + i})
    return episodes


def write_dataset(out: str | os.PathLike, episodes: list[dict], env: gym.Env, dataset_id: str,
                  algorithm_name: str) -> Path:
    """Write `episodes` as a Minari dataset at OUT (OUT/data/...). It is written beside OUT and renamed
    into place, so an interrupted or failed write leaves no half dataset; OUT must not hold one."""
    import tempfile

    from minari import __version__ as minari_version
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    out = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    tmp.chmod(0o755)  # (mkdtemp makes it private; a dataset is read by others too)
    try:
        data = tmp / "data"
        data.mkdir()
        storage = MinariStorage.new(data, observation_space=env.observation_space, action_space=env.action_space,
                                    env_spec=env.spec, data_format="hdf5")
        storage.update_episodes([EpisodeBuffer(id=i, seed=e["seed"], observations=e["observations"],
                                               actions=e["actions"], rewards=e["rewards"],
                                               terminations=e["terminations"], truncations=e["truncations"], infos={})
                                 for i, e in enumerate(episodes)])
        storage.update_metadata({"dataset_id": dataset_id, "algorithm_name": algorithm_name,
                                 "minari_version": minari_version, "author": {"ascent collect"}})
        if out.is_dir():
            out.rmdir()  # (an empty directory only: check_out refused any other)
        tmp.replace(out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_out(out: str | os.PathLike) -> Path:
    """OUT as an absolute path (Minari 0.5.4 miscounts sizes under a relative one), refused where
    something is already there (an empty directory is fine)."""
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out} already exists and is not empty; pick another --out or delete it first")
    return out


def default_dataset_id(env_id: str, policy: str) -> str:
    """A Minari-style id, namespace/name-vN: "cartpole/ascent-ppo-v0"."""
    name = base_id(env_id).rsplit("-v", 1)[0].lower()
    return f"{name}/ascent-{policy}-v0"


def collect(run_dir: str | os.PathLike | None, episodes: int, out: str | os.PathLike, deterministic: bool = True,
            seed: int = 0, policy: str = "agent", env: str | None = None, dataset_id: str | None = None) -> dict[str, Any]:
    """Record `episodes` episodes of a trained run's agent (policy="agent") or of uniformly random
    actions (policy="random", on the run's env or `env`) into a Minari dataset at `out`.
    Returns {path, dataset_id, episodes, steps, mean_return, std_return}."""
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes <= 0:
        raise DatasetError(f"--episodes must be a positive integer, got {episodes!r}")
    if policy not in ("agent", "random"):
        raise DatasetError(f"--policy must be agent or random, got {policy!r}")
    check_out(out)  # (before any episode is recorded)
    agent = None
    if run_dir is not None:
        agent = load_agent(RunDirectory(run_dir).trained_model())
    elif policy == "agent" or env is None:
        raise DatasetError("collect needs a RUN_DIR (its trained agent, or its env for --policy random), or "
                           "--policy random with --env ID")
    source = env if env is not None else agent.env_source()
    gym_env = make_env(source)
    try:
        if policy == "random":
            space = gym_env.action_space
            space.seed(seed)
            act = lambda obs: np.stack([space.sample() for _ in range(len(obs))])  # noqa: E731
            name = "random"
        else:
            if env is not None and agent.env_id is not None and base_id(env) != base_id(agent.env_id):
                raise DatasetError(f"{run_dir} was trained on {agent.env_id}, not {env}; drop --env or record another run")
            act = lambda obs: agent.act(obs, deterministic=deterministic)  # noqa: E731
            name = agent.algo
        recorded = record_episodes(act, gym_env, episodes, seed)
        dataset_id = dataset_id or default_dataset_id(gym_env.spec.id if gym_env.spec else "env", name)
        path = write_dataset(out, recorded, gym_env, dataset_id, name)
    finally:
        gym_env.close()
    returns = np.array([e["rewards"].sum() for e in recorded])
    return {"path": str(path), "dataset_id": dataset_id,
            "episodes": len(recorded), "steps": int(sum(len(e["rewards"]) for e in recorded)),
            "mean_return": float(returns.mean()), "std_return": float(returns.std())}

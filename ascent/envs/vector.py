"""Environment creation and one uniform view of a Gymnasium vector env.

Every algorithm steps a `VecEnv`: it hides which autoreset mode the underlying Gymnasium vector env
uses, so that an algorithm never trains on the autoreset step and always knows the observation to
bootstrap from when an episode is truncated (truncation is not termination).
"""

from __future__ import annotations

import functools
import importlib

from dataclasses import dataclass, field
from typing import Any, Callable, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

from ascent.envs.atari import RAW_SCORE_IN_INFO, is_atari_id, make_atari_env, register_atari
from ascent.envs.board_games import BoardGameEnv, board_game_names, is_board_game_id
from ascent.envs.markov_games import markov_game_names
from ascent.envs import mazes  # noqa: F401  (registers Sutton & Barto's mazes: ascent/DynaMaze-v0...)
from ascent.envs.multiagent import OneSeatEnv, is_multiagent_id
from ascent.envs.turn_based import TurnBasedVecEnv, is_turn_based_id
from ascent.errors import EnvError, TrainingDiverged, did_you_mean

EnvSpec = gym.envs.registration.EnvSpec
EnvLike = Union[str, EnvSpec, gym.Env, gym.vector.VectorEnv, Callable[[], gym.Env]]
VECTORIZATIONS = ("auto", "sync", "async", "vector_entry_point")


def env_id_of(env: EnvLike) -> str | None:
    """The registered id of an env argument, if it has one (used for presets and re-creation)."""
    if isinstance(env, str):
        return env
    if isinstance(env, EnvSpec):
        return env.id
    spec = getattr(getattr(env, "unwrapped", env), "spec", None) or getattr(env, "spec", None)
    return spec.id if spec is not None else None


def importable_env_id(env_id: str | None) -> str | None:
    """The id to record for making the env again in another process: a user's env registered by an
    importable module gets Gymnasium's "module:EnvId" form (importing the module registers it), so
    that `ascent eval` and `resume` find it; ids of Gymnasium's own and of installed env packages,
    and envs registered by a script (__main__), stay as they are."""
    if env_id is None or ":" in env_id or env_id not in gym.registry:
        return env_id
    entry = gym.registry[env_id].entry_point
    module = entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", None)
    if not module or module == "__main__" or module.split(".")[0] in ("gymnasium", "ale_py", "shimmy", "mujoco"):
        return env_id
    return f"{module}:{env_id}"  # (importing the entry point's module imports its package, which registers it)


def env_spec_of(env: EnvLike) -> EnvSpec | None:
    """The full spec of an env instance (its registered id with the wrappers and time limit the user
    added, as Gymnasium records them), so that it can be made again, e.g. for evaluation; None for
    ids and factories (they make it again themselves) and for envs without a spec."""
    if isinstance(env, EnvSpec):
        return env
    if isinstance(env, gym.Env):
        return env.spec
    if isinstance(env, gym.vector.VectorEnv):
        try:
            return env.get_attr("spec")[0]  # (the sub-envs are alike)
        except Exception:  # vector entry points and other vector envs without sub-env attributes
            return None
    return None


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The spec of a registered env id, or an EnvError listing close matches. Gymnasium's
    "module:EnvId" imports the module first (where a user's env registers itself)."""
    if is_atari_id(env_id):
        register_atari()  # ale-py's ids exist once it is imported
    if ":" in env_id:
        module, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise EnvError(f"cannot import {module!r} for the env {module}:{env_id} ({err}); run from the folder that "
                           "holds it or put it on PYTHONPATH") from None
    try:
        return gym.spec(env_id)
    except gym.error.Error:
        raise EnvError(
            f"unknown environment {env_id!r}{did_you_mean(env_id, [*gym.registry.keys(), *board_game_names(), *markov_game_names()])}; "
            "`python -c 'import gymnasium; gymnasium.pprint_registry()'` lists them all (board games: OpenSpiel's "
            "names, e.g. tic_tac_toe, connect_four; ascent's Markov games: soccer, grid_game, two_step)"
        ) from None


def _missing_dependency(env_id: str, err: Exception) -> EnvError:
    extra = "mujoco" if "mujoco" in str(err).lower() else "box2d" if "box2d" in str(err).lower() else None
    fix = f"pip install 'ascent-rl[{extra}]'" if extra else "install the package the message names"
    return EnvError(f"environment {env_id!r} needs a package that is not installed ({err}); fix: {fix}")


def _is_parallel_env(env: Any) -> bool:
    try:
        from pettingzoo import ParallelEnv
    except ImportError:
        return False
    return isinstance(env, ParallelEnv)


def make_vec_env(
    env: EnvLike,
    n_envs: int = 1,
    vectorization: str = "auto",
    render_mode: str | None = None,
    training: bool = True,
) -> gym.vector.VectorEnv:
    """A Gymnasium vector env from an env id, a `gymnasium.Env`, a factory, or a vector env.

    vectorization: "sync" (default for most envs), "async" (one process per env), or
    "vector_entry_point" (an env's own numpy-vectorized implementation, e.g. CartPole);
    "auto" picks the env's vector entry point when it has a numpy one and n_envs >= 4, else sync.
    Sync and async envs autoreset in the same step (`final_obs` in the info dict); the vector
    entry points autoreset on the next step; `VecEnv` makes both look the same.
    Atari ids get the standard pipeline of ascent/atari.py (episodic life and reward clipping only
    when `training`).
    """
    if vectorization not in VECTORIZATIONS:
        raise EnvError(f"unknown vectorization {vectorization!r}; choose one of {', '.join(VECTORIZATIONS)}")
    if isinstance(env, gym.vector.VectorEnv):
        return env
    if _is_parallel_env(env):  # a PettingZoo parallel env: its first agent's seat, the others random
        env = functools.partial(OneSeatEnv, env)
    same_step = {"autoreset_mode": AutoresetMode.SAME_STEP}
    if isinstance(env, gym.Env):
        if n_envs != 1:
            raise EnvError(
                f"a gymnasium.Env instance is one environment but n_envs={n_envs}; "
                "pass an env id or a factory (a function returning a new env) to vectorize it"
            )
        return gym.vector.SyncVectorEnv([lambda: env], **same_step)
    if isinstance(env, EnvSpec):  # an env with its user's wrappers, made again (evaluation, loading)
        cls = gym.vector.AsyncVectorEnv if vectorization == "async" else gym.vector.SyncVectorEnv
        kwargs = {"render_mode": render_mode} if render_mode else {}
        return cls([functools.partial(gym.make, env, **kwargs)] * n_envs, **same_step)
    if callable(env) and not isinstance(env, str):
        cls = gym.vector.AsyncVectorEnv if vectorization == "async" else gym.vector.SyncVectorEnv
        return cls([env] * n_envs, **same_step)
    if not isinstance(env, str):
        raise EnvError(f"cannot make an environment from {type(env).__name__}; pass an env id, Env, factory or VectorEnv")

    if is_turn_based_id(env):  # a turn-based PettingZoo game against a random opponent (ascent/envs/turn_based.py)
        return TurnBasedVecEnv(env, n_envs)
    if is_multiagent_id(env):  # a multi-agent env's first seat, the others random (ascent/envs/multiagent.py)
        return gym.vector.SyncVectorEnv([functools.partial(OneSeatEnv, env)] * n_envs, **same_step)
    if is_board_game_id(env):  # an OpenSpiel game against a random opponent (ascent/envs/board_games.py)
        return gym.vector.SyncVectorEnv([functools.partial(BoardGameEnv, env)] * n_envs, **same_step)
    if is_atari_id(env):  # the standard pipeline (ascent/atari.py); training=False: whole games, raw rewards
        cls = gym.vector.AsyncVectorEnv if vectorization == "async" else gym.vector.SyncVectorEnv
        return cls([functools.partial(make_atari_env, env, training, render_mode)] * n_envs, **same_step)
    spec = check_env_id(env)
    if vectorization == "auto":
        entry = spec.vector_entry_point
        # Only numpy vector entry points: the phys2d ones need JAX and return JAX arrays.
        numpy_entry = isinstance(entry, str) and "phys2d" not in entry and "jax" not in entry.lower()
        # Below 4 envs a SyncVectorEnv steps faster (CartPole: 38 vs 79 us for 1 env, 71 vs 76 for 2).
        vectorization = "vector_entry_point" if numpy_entry and render_mode is None and n_envs >= 4 else "sync"
    kwargs: dict[str, Any] = {"render_mode": render_mode} if render_mode else {}
    try:
        if vectorization == "vector_entry_point":
            return gym.make_vec(env, num_envs=n_envs, vectorization_mode="vector_entry_point", **kwargs)
        return gym.make_vec(env, num_envs=n_envs, vectorization_mode=vectorization, vector_kwargs=same_step, **kwargs)
    except gym.error.DependencyNotInstalled as err:
        raise _missing_dependency(env, err) from None
    except gym.error.Error as err:
        raise EnvError(f"cannot create {env!r} with vectorization={vectorization!r}: {err}") from None


def is_single_observation(obs: Any, space: gym.Space) -> bool:
    """Whether `obs` is one observation of `space` rather than a batch of them (by shape)."""
    if isinstance(space, gym.spaces.Dict):
        return all(is_single_observation(obs[key], sub) for key, sub in space.spaces.items())
    if isinstance(space, gym.spaces.Tuple):
        return all(is_single_observation(o, sub) for o, sub in zip(obs, space.spaces))
    return np.shape(obs) == space.shape


def batch_of(space: gym.Space, observations: Any) -> Any:
    """A batch as a vector env returns it: an array, or for Dict / Tuple spaces a dict / tuple of
    arrays. `observations`: a batch already (returned as an array), or a list of single ones."""
    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        if isinstance(observations, list):
            return concatenate(space, observations, create_empty_array(space, len(observations)))
        return observations
    return np.asarray(observations)


@dataclass
class Step:
    """What one step of all envs returned, in the autoreset-independent form algorithms use.

    obs:        (N, *obs_shape) the observation to act on next (a new episode's first where one ended)
    reward, terminated, truncated: (N,)
    valid:      (N,) bool, False for the autoreset step of next-step-autoreset envs: the action was
                ignored and the transition must not be trained on
    final_obs:  (N, *obs_shape) or None; where `bootstrap` is True, the observation the episode was
                truncated at, to bootstrap the value from
    bootstrap:  (N,) bool or None
    episodes:   [(return, length)] of the episodes that ended in this step
    episode_envs: [env index] of each of `episodes`
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    final_obs: np.ndarray | None
    bootstrap: np.ndarray | None
    episodes: list[tuple[float, int]]
    episode_envs: list[int] = field(default_factory=list)


class VecEnv:
    """A Gymnasium vector env seen through one contract (see `Step`), with episode statistics."""

    def __init__(self, env: gym.vector.VectorEnv, score_from_info: bool | None = None):
        """score_from_info: report the returns that RecordEpisodeStatistics records inside the env
        (Atari: the raw score of whole games, not the clipped per-life rewards the agent sees);
        None: when the env's metadata says so (ascent.envs.atari.make_atari_env's envs)."""
        self.env = env
        if score_from_info is None:
            score_from_info = bool(env.metadata.get(RAW_SCORE_IN_INFO, False))
        self.score_from_info = score_from_info
        self.num_envs = env.num_envs
        # env steps one step of them counts: num_envs, or for a team's rows (one per agent of every copy of
        # a multi-agent env, envs/multiagent.py's AgentRowsVecEnv) the copies: every agent acts in one env step
        self.env_steps_per_step = int(getattr(env, "env_steps_per_step", env.num_envs))
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode == AutoresetMode.DISABLED:
            raise EnvError("vector envs with autoreset disabled are not supported; use SAME_STEP or NEXT_STEP autoreset")
        self.next_step_autoreset = mode == AutoresetMode.NEXT_STEP
        self._check_finite = isinstance(self.observation_space, gym.spaces.Box) and np.issubdtype(
            self.observation_space.dtype, np.floating
        )
        self._prev_done = np.zeros(self.num_envs, dtype=bool)
        self._all_valid = np.ones(self.num_envs, dtype=bool)  # every same-step-autoreset Step's `valid` (read only)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        if seed is not None:
            self.env.action_space.seed(seed)
        self._prev_done[:] = False
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return obs

    def step(self, action: np.ndarray) -> Step:
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward = np.asarray(reward, dtype=np.float32)
        if not np.isfinite(reward.sum()):  # (one reduction a step; the envs are named only when it fails)
            raise TrainingDiverged(
                f"the environment returned a NaN or inf reward (env ids {np.flatnonzero(~np.isfinite(reward)).tolist()}): "
                "the env's reward function is at fault, not the learning; check it or wrap the env to clip the reward")
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        # (the sum is one reduction; only when it is not finite are the elements looked at)
        if self._check_finite and not np.isfinite(obs.sum()) and not np.isfinite(obs).all():
            raise TrainingDiverged(
                f"the environment returned a NaN or inf observation (env ids {np.flatnonzero(~np.isfinite(obs).reshape(self.num_envs, -1).all(1)).tolist()}); "
                "check the environment, or enable normalize_obs with clipping"
            )
        done = terminated | truncated
        final_obs = bootstrap = None
        if self.next_step_autoreset:
            # The step after an episode's end only resets that env: its action was ignored.
            valid = ~self._prev_done
            self._prev_done = done
            # The observation returned at the truncation step is the final one; the algorithm
            # sees it as the next step's obs, so no separate bootstrap is needed.
        else:
            valid = self._all_valid
            if truncated.any():
                bootstrap = truncated & info.get("_final_obs", truncated)
                if isinstance(obs, np.ndarray):
                    final_obs = np.stack([o if b else obs[i] for i, (o, b) in enumerate(zip(info["final_obs"], bootstrap))])
                else:  # Dict / Tuple observations: a dict / tuple of batched arrays
                    own = iterate(self.env.observation_space, obs)
                    final_obs = concatenate(self.observation_space, [o if b else m for o, b, m in
                                                                     zip(info["final_obs"], bootstrap, own)],
                                            create_empty_array(self.observation_space, self.num_envs))
        self._ep_return += reward * valid
        self._ep_length += valid
        episodes, episode_envs = [], []
        if self.score_from_info:
            # The game's score from the info dict (same-step autoreset moves the ending step's info
            # under final_info); the length counts this env's steps since the game began, lost
            # lives included, in agent steps like every other length.
            ended = info.get("final_info", info)
            if "_episode" in ended:
                for i in np.flatnonzero(ended["_episode"]):
                    episodes.append((float(ended["episode"]["r"][i]), int(self._ep_length[i])))
                    episode_envs.append(int(i))
                    self._ep_length[i] = 0
        elif done.any():
            for i in np.flatnonzero(done & valid):
                episodes.append((float(self._ep_return[i]), int(self._ep_length[i])))
                episode_envs.append(int(i))
                self._ep_return[i] = 0.0
                self._ep_length[i] = 0
        return Step(obs, reward, terminated, truncated, valid, final_obs, bootstrap, episodes, episode_envs)

    def close(self) -> None:
        self.env.close()

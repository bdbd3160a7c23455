"""A replay buffer for frame-stacked image observations that stores every frame once.

An Atari observation is the last 4 frames, (4, 84, 84) uint8, so consecutive observations share 3
of their 4 frames; storing obs and next_obs stacks costs 8 frames per transition (56 GB for 1M),
SB3's optimize_memory_usage 4 (28 GB). Here each step stores only its newest frame (7 GB for 1M)
and the stacks are rebuilt at sampling time: the observation at row t of an env is its frames
t - min(k, age_t) for k = 3..0, where age_t = min(steps since the episode started, 3), which is how
Gymnasium's FrameStackObservation pads an episode's first observations (the reset frame repeated).
The next observation continues the same column, except where the episode ended: then its newest
frame is the final frame, kept aside, or, where the next observation given repeats one frame (a
new episode's first: same-step autoreset envs give it where an episode terminated, as nothing
bootstraps from there), that frame repeated. The autoreset steps of next-step-autoreset envs
(valid=False, never sampled) restart the history: the observation after them is a new episode's
first.

Rows whose frame history has been overwritten by the wrap-around are never sampled (the 4 rows
after the write position once the buffer is full).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ascent.errors import CheckpointError, ConfigError
from ascent.buffers.replay import ReplayBuffer, check_memory, per_transition_bytes, torch_dtype


def is_frame_stack_space(space: gym.Space) -> bool:
    """uint8 observations (stack, height, width) with fewer frames than rows and columns, as the
    Atari pipeline makes them (FrameStackObservation over grayscale frames)."""
    if not (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3):
        return False
    return space.shape[0] < min(space.shape[1:])


def make_replay_buffer(capacity: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space,
                       optimize_memory_usage: bool = False) -> ReplayBuffer:
    """A FrameReplayBuffer for frame-stacked images, a ReplayBuffer otherwise."""
    if is_frame_stack_space(observation_space):
        return FrameReplayBuffer(capacity, n_envs, observation_space, action_space)
    return ReplayBuffer(capacity, n_envs, observation_space, action_space, optimize_memory_usage)


class FrameReplayBuffer(ReplayBuffer):
    """ReplayBuffer's contract (add, sample, sample_index, batch with n-step, state_dict) for
    observations that are stacks of the last `stack` frames."""

    def __init__(self, capacity: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space,
                 optimize_memory_usage: bool = True):
        self.stack, *frame_shape = observation_space.shape
        if capacity < (self.stack + 2) * n_envs:
            raise ConfigError(f"buffer_size ({capacity}) must be at least {(self.stack + 2) * n_envs} "
                              f"({self.stack + 2} steps of {n_envs} envs) for frame-stacked observations")
        self.rows = capacity // n_envs
        self.n_envs = n_envs
        self.lean = True
        frame_bytes = per_transition_bytes(tuple(frame_shape), torch.uint8)
        check_memory(self.rows * n_envs * (frame_bytes + per_transition_bytes(action_space.shape, torch_dtype(action_space)) + 16),
                     f"a frame replay buffer of {self.rows * n_envs:,} transitions of {tuple(frame_shape)} frames",
                     "lower buffer_size")
        self.frames = torch.zeros((self.rows, n_envs, *frame_shape), dtype=torch.uint8, device="cpu")  # newest frame of obs t
        self.age = torch.zeros((self.rows, n_envs), dtype=torch.uint8, device="cpu")  # min(steps since reset, stack - 1)
        self.actions = torch.zeros((self.rows, n_envs, *action_space.shape), dtype=torch_dtype(action_space), device="cpu")
        self.rewards = torch.zeros((self.rows, n_envs), device="cpu")
        self.terminated = torch.zeros((self.rows, n_envs), device="cpu")
        self.truncated = torch.zeros((self.rows, n_envs), device="cpu")
        self.valid = torch.ones((self.rows, n_envs), dtype=torch.bool, device="cpu")
        self.ended = torch.zeros((self.rows, n_envs), dtype=torch.bool, device="cpu")
        self.final_obs: dict[int, torch.Tensor] = {}  # flat index -> final frame of an ended episode
        self.next_repeats = torch.zeros((self.rows, n_envs), dtype=torch.bool, device="cpu")  # ended: next obs = that frame x stack
        self.all_valid = True
        self.pos = 0
        self.full = False
        self.np = {name: getattr(self, name).numpy() for name in self.FIELDS}
        self._next_age = np.zeros(n_envs, dtype=np.int64)  # age of the observation the next add stores

    FIELDS = ("frames", "age", "actions", "rewards", "terminated", "truncated", "valid", "ended", "next_repeats")

    def __len__(self) -> int:
        rows = self.rows - self.stack if self.full else self.pos
        return rows * self.n_envs

    def oldest_row(self) -> int:
        return (self.pos + self.stack) % self.rows if self.full else 0

    def unsampleable_rows(self) -> list[int]:
        return [(self.pos + i) % self.rows for i in range(self.stack)] if self.full else []

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, valid: np.ndarray | None = None) -> None:
        t, a = self.pos, self.np
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        age = self._next_age
        valid = None if valid is None else np.asarray(valid, dtype=bool)
        # Check that the stream is what the stacks are rebuilt from: an episode's first observation
        # repeats its reset frame, later ones continue the column (else cut_episodes was not called).
        # An autoreset step's observation (valid=False) is the ended episode's last: not checked.
        checked = np.ones(self.n_envs, dtype=bool) if valid is None else valid
        first, later = checked & (age == 0), checked & (age > 0)
        prev = (t - 1) % self.rows
        if (later.any() and not (obs[later, -2] == a["frames"][prev][later]).all()) or \
                (first.any() and not (obs[first] == obs[first][:, -1:]).all()):
            raise ConfigError("FrameReplayBuffer needs FrameStackObservation's observations, added in order "
                              "(call cut_episodes() after resetting the envs); use ReplayBuffer otherwise")
        a["frames"][t] = obs[:, -1]
        a["age"][t] = age
        self._write_step(t, actions, rewards, terminated, truncated, valid)
        for env in np.flatnonzero(a["ended"][t]):  # row t's old final frames are overwritten
            self.final_obs.pop(t * self.n_envs + int(env), None)
        done = np.asarray(terminated) | np.asarray(truncated)
        a["ended"][t] = done
        a["next_repeats"][t] = False
        for env in np.flatnonzero(done):
            self.final_obs[t * self.n_envs + int(env)] = torch.from_numpy(next_obs[env, -1].copy())
            a["next_repeats"][t, env] = (next_obs[env] == next_obs[env, -1]).all()
        nxt = (t + 1) % self.rows
        a["frames"][nxt] = next_obs[:, -1]  # the next add rewrites it (equal where no episode ended)
        restart = done if valid is None else done | ~valid  # the next observation starts an episode
        self._next_age = np.where(restart, 0, np.minimum(age + 1, self.stack - 1))
        self.pos = nxt
        self.full = self.full or self.pos == 0

    def cut_episodes(self) -> None:
        """As ReplayBuffer's; the newest transitions' next frames are kept aside and the next
        observation starts a new history."""
        if len(self) == 0 and not self.full:
            return
        t = (self.pos - 1) % self.rows
        cut = (self.terminated[t] == 0) & (self.truncated[t] == 0)
        self.truncated[t][cut] = 1.0
        for env in cut.nonzero().squeeze(1).tolist():
            self.ended[t, env] = True
            self.next_repeats[t, env] = False  # the next observation continued the column
            self.final_obs[t * self.n_envs + env] = self.frames[self.pos, env].clone()
        self._next_age[:] = 0

    def _stack(self, newest_row: torch.Tensor, env: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """(B, stack, H, W): frames newest_row - min(k, age) for k = stack-1 .. 0 of each env."""
        k = torch.arange(self.stack - 1, -1, -1, device="cpu")
        rows = (newest_row.unsqueeze(1) - torch.minimum(k, age.long().unsqueeze(1))) % self.rows  # (B, stack)
        flat = (rows * self.n_envs + env.unsqueeze(1)).numpy()
        # numpy's gather: torch's multithreaded one took 4 ms instead of 50 us for 128 frames on a busy
        # 2-core machine.
        return torch.from_numpy(self.np["frames"].reshape(-1, *self.frames.shape[2:])[flat])

    def _obs(self, row: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        return self._stack(row, env, self.age[row, env])

    def _next_obs(self, row: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        nxt = (row + 1) % self.rows
        next_obs = self._stack(nxt, env, torch.clamp(self.age[row, env].long() + 1, max=self.stack - 1))
        flat = row * self.n_envs + env
        for i in self.ended[row, env].nonzero().squeeze(1).tolist():
            if self.next_repeats[row[i], env[i]]:
                next_obs[i] = self.final_obs[int(flat[i])]  # broadcast over the stack
            else:
                next_obs[i, -1] = self.final_obs[int(flat[i])]
        return next_obs

    # ---- checkpoints ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        n = self.rows if self.full else self.pos + 1  # with the pending frame of the newest row
        state = {name: getattr(self, name)[:n].clone() for name in self.FIELDS}
        state.update(pos=self.pos, full=self.full, rows=self.rows, n_envs=self.n_envs, stack=self.stack,
                     final_obs=dict(self.final_obs), next_age=self._next_age.copy())
        return state

    def load_state_dict(self, state: dict) -> None:
        if (state.get("rows"), state.get("n_envs"), state.get("stack")) != (self.rows, self.n_envs, self.stack):
            raise CheckpointError(
                f"the saved frame buffer has {state.get('rows')} rows x {state.get('n_envs')} envs, this agent's "
                f"{self.rows} x {self.n_envs}; load it with the same buffer_size and n_envs")
        n = len(state["frames"])
        for name in self.FIELDS:
            getattr(self, name)[:n] = state[name]
        self.final_obs = dict(state["final_obs"])
        self._next_age = np.asarray(state["next_age"]).copy()
        self.pos, self.full = int(state["pos"]), bool(state["full"])
        self.all_valid = bool(self.valid.all())

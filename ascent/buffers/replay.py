"""The replay buffer shared by every off-policy algorithm (DDPG, TD3, SAC, and the DQN family).

Transitions from n_envs envs are stored in preallocated torch tensors laid out (rows, n_envs): row t
holds what every env did at its t-th step, so an env's transitions stay consecutive (n-step returns
read along a column). `terminated` and `truncated` are kept apart: a target bootstraps through a
truncation (the stored next observation is the one the episode was cut at) and not through a
termination.

With `optimize_memory_usage` the next observations are not stored: next_obs of row t is obs of row
t + 1 in the same column, except where an episode ended, whose true next observation is kept aside
(episodes end rarely, so this halves the observation memory, as for Atari frames).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch

from ascent.errors import CheckpointError, ConfigError, EnvError


@dataclass
class Batch:
    """A sampled minibatch, each tensor (B, ...)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor  # float 0/1: the target's (1 - terminated) mask
    truncated: torch.Tensor
    discount: torch.Tensor | None = None  # n-step: gamma^L of each transition's bootstrap (None: gamma)

    def __getitem__(self, index: slice | torch.Tensor) -> Batch:
        """The transitions at `index` (a slice or an index tensor), every field alike."""
        return Batch(*(None if value is None else value[index]
                       for value in (getattr(self, f.name) for f in fields(self))))

    def to(self, device: torch.device) -> Batch:
        """The batch on `device` (itself where it is there already: no copy on the CPU)."""
        if self.obs.device == device:
            return self
        return Batch(*(None if value is None else value.to(device, non_blocking=True)
                       for value in (getattr(self, f.name) for f in fields(self))))


def torch_dtype(space: gym.Space) -> torch.dtype:
    if isinstance(space, gym.spaces.Discrete):
        return torch.int64
    return torch.from_numpy(np.zeros(1, dtype=space.dtype)).dtype


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(nbytes: int, what: str, fix: str) -> None:
    """ConfigError, before anything is allocated, when `nbytes` would not fit in the memory available
    (with a tenth kept for everything else), naming both figures and the fix."""
    available = available_memory()
    if available is not None and nbytes > 0.9 * available:
        raise ConfigError(f"{what} needs {nbytes / 2**30:.1f} GiB, but {available / 2**30:.1f} GiB of memory is "
                          f"available: {fix}")


def per_transition_bytes(shape: tuple, dtype: torch.dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype, device="cpu").element_size()


class ReplayBuffer:
    """Circular storage of `capacity` transitions (rounded down to a multiple of n_envs)."""

    def __init__(self, capacity: int, n_envs: int, observation_space: gym.Space, action_space: gym.Space,
                 optimize_memory_usage: bool = False):
        if capacity < n_envs:
            raise ConfigError(f"buffer_size ({capacity}) must be at least n_envs ({n_envs})")
        for space in (observation_space, action_space):
            if space.shape is None:  # Dict, Tuple, ...: no single array shape
                raise EnvError(f"the replay buffer stores one array per observation and action; {space} has none: "
                               "wrap the env in gymnasium.wrappers.FlattenObservation, or use an on-policy algorithm")
        self.rows = capacity // n_envs
        self.n_envs = n_envs
        self.lean = optimize_memory_usage
        if self.lean and self.rows < 2:
            raise ConfigError("optimize_memory_usage needs a buffer_size of at least 2 * n_envs")
        obs_shape, act_shape = observation_space.shape, action_space.shape
        obs_bytes = per_transition_bytes(obs_shape, torch_dtype(observation_space)) * (1 if self.lean else 2)
        check_memory(self.rows * n_envs * (obs_bytes + per_transition_bytes(act_shape, torch_dtype(action_space)) + 14),
                     f"a replay buffer of {self.rows * n_envs:,} transitions of {obs_shape} observations",
                     "lower buffer_size" + ("" if self.lean else ", or set optimize_memory_usage=true (next "
                                            "observations not stored twice)"))
        self.obs = torch.zeros((self.rows, n_envs, *obs_shape), dtype=torch_dtype(observation_space), device="cpu")
        self.next_obs = None if self.lean else torch.zeros_like(self.obs)
        self.actions = torch.zeros((self.rows, n_envs, *act_shape), dtype=torch_dtype(action_space), device="cpu")
        self.rewards = torch.zeros((self.rows, n_envs), device="cpu")
        self.terminated = torch.zeros((self.rows, n_envs), device="cpu")
        self.truncated = torch.zeros((self.rows, n_envs), device="cpu")
        self.valid = torch.ones((self.rows, n_envs), dtype=torch.bool, device="cpu")
        self.ended = torch.zeros((self.rows, n_envs), dtype=torch.bool, device="cpu")  # lean: next obs kept aside
        self.final_obs: dict[int, torch.Tensor] = {}  # lean: flat index row * n_envs + env -> next obs
        self.all_valid = True
        self.pos = 0
        self.full = False
        # numpy views of the same memory: writing a step through them costs a fraction of torch's
        # per-call overhead (the buffer is written after every env step).
        self.np = {name: getattr(self, name).numpy() for name in self.FIELDS if getattr(self, name) is not None}

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated", "truncated", "valid", "ended")

    def __len__(self) -> int:
        """Transitions that can be sampled."""
        rows = self.rows if self.full else self.pos
        if self.lean and self.full:
            rows -= 1  # row `pos` holds the newest row's next observation, not its own
        return rows * self.n_envs

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, valid: np.ndarray | None = None) -> None:
        """One step of every env. next_obs is the true next observation (the final one where an
        episode ended); valid=False marks transitions that must never be sampled (the autoreset
        step of next-step-autoreset envs)."""
        t, a = self.pos, self.np
        a["obs"][t] = obs
        self._write_step(t, actions, rewards, terminated, truncated, valid)
        if self.lean:
            nxt = (t + 1) % self.rows
            for env in np.flatnonzero(a["ended"][t]):  # row t's old asides are overwritten
                self.final_obs.pop(t * self.n_envs + int(env), None)
            done = np.asarray(terminated) | np.asarray(truncated)
            a["ended"][t] = done
            for env in np.flatnonzero(done):
                self.final_obs[t * self.n_envs + int(env)] = torch.tensor(np.asarray(next_obs[env]), device="cpu")
            a["obs"][nxt] = next_obs  # rewritten by the next add (equal where no episode ended)
        else:
            a["next_obs"][t] = next_obs
        self.pos = (t + 1) % self.rows
        self.full = self.full or self.pos == 0

    def cut_episodes(self) -> None:
        """The envs were reset outside the buffer's sight (a resumed run starts new episodes): the
        newest transitions end there as truncations, so that targets bootstrap from their stored
        next observations and n-step returns do not run on into the new episodes."""
        if len(self) == 0:
            return
        t = (self.pos - 1) % self.rows
        cut = (self.terminated[t] == 0) & (self.truncated[t] == 0)
        self.truncated[t][cut] = 1.0
        if self.lean:
            for env in cut.nonzero().squeeze(1).tolist():
                self.ended[t, env] = True
                self.final_obs[t * self.n_envs + env] = self.obs[self.pos, env].clone()

    def _write_step(self, t: int, actions, rewards, terminated, truncated, valid) -> None:
        """Row t's fields other than the observations."""
        a = self.np
        a["actions"][t] = np.asarray(actions).reshape(a["actions"].shape[1:])
        a["rewards"][t] = rewards
        a["terminated"][t] = terminated
        a["truncated"][t] = truncated
        a["valid"][t] = True if valid is None else valid
        if valid is not None and not np.all(valid):
            self.all_valid = False  # from now on sampling checks validity (stays conservative)

    def sample(self, batch_size: int) -> Batch:
        """A uniform minibatch of valid transitions."""
        return self.batch(*self.sample_index(batch_size))

    def sample_index(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, env) of `batch_size` valid transitions drawn uniformly, each (B,) int64."""
        if len(self) == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        rows = len(self) // self.n_envs
        offset = self.oldest_row()
        row = (torch.randint(rows, (batch_size,), device="cpu") + offset) % self.rows
        env = torch.randint(self.n_envs, (batch_size,), device="cpu")
        if not self.all_valid:
            bad = ~self.valid[row, env]
            while bad.any():  # rare: autoreset steps of next-step envs
                n = int(bad.sum())
                row[bad] = (torch.randint(rows, (n,), device="cpu") + offset) % self.rows
                env[bad] = torch.randint(self.n_envs, (n,), device="cpu")
                bad = ~self.valid[row, env]
        return row, env

    def oldest_row(self) -> int:
        """The row of the oldest sampleable transition (lean mode skips row `pos` once full)."""
        if not self.full:
            return 0
        return (self.pos + 1) % self.rows if self.lean else self.pos

    def newest(self, n: int | None = None) -> dict[str, torch.Tensor]:
        """The newest n rows (all held where n is None or more), oldest first, time-major (T, n_envs, ...)
        as stored: obs, actions, rewards, next_obs, terminated, truncated, valid (what the
        model-based agents fit their models to and measure them on)."""
        stored = len(self) // self.n_envs
        n = stored if n is None else min(n, stored)
        row = (torch.arange(stored - n, stored) + self.oldest_row()) % self.rows
        out = {name: getattr(self, name)[row] for name in ("obs", "actions", "rewards", "terminated", "truncated", "valid")}
        env = torch.arange(self.n_envs).repeat(n)
        out["next_obs"] = self._next_obs(row.repeat_interleave(self.n_envs), env).view(n, self.n_envs, *self.obs.shape[2:])
        return out

    def batch(self, row: torch.Tensor, env: torch.Tensor, n_step: int = 1, gamma: float = 1.0) -> Batch:
        """The transitions at (row, env). With n_step > 1, each is the n-step transition starting
        there, read down its env's column:
            reward  sum_{k<L} gamma^k r_{t+k},  next_obs s_{t+L},  discount gamma^L,
        where L <= n stops at the first step that ends the episode (terminated: no bootstrap;
        truncated: bootstrap from the observation it was cut at) and at the newest stored step."""
        flat = row * self.n_envs + env  # index the (rows * n_envs, ...) views: one gather per field
        if n_step == 1:
            return Batch(self._obs(row, env), self._take(self.actions, flat), self._take(self.rewards, flat),
                         self._next_obs(row, env), self._take(self.terminated, flat), self._take(self.truncated, flat))
        k = torch.arange(n_step, device="cpu")
        rows_k = (row.unsqueeze(1) + k) % self.rows  # (B, n)
        newest = (self.pos - 1) % self.rows
        available = (newest - row) % self.rows + 1  # steps stored from row on, in this column
        flat_k = rows_k * self.n_envs + env.unsqueeze(1)
        done_k = (self._take(self.terminated, flat_k) + self._take(self.truncated, flat_k)) > 0  # (B, n)
        # L - 1: the first step that ends the episode, else the last one read (n - 1 or the newest).
        last = torch.minimum(available - 1, torch.full_like(row, n_step - 1))
        ends = done_k & (k <= last.unsqueeze(1))
        last = torch.where(ends.any(1), ends.float().argmax(1), last)
        used = k <= last.unsqueeze(1)  # (B, n)
        rewards = (self._take(self.rewards, flat_k) * gamma ** k * used).sum(1)
        row_last = rows_k.gather(1, last.unsqueeze(1)).squeeze(1)
        flat_last = row_last * self.n_envs + env
        return Batch(self._obs(row, env), self._take(self.actions, flat), rewards,
                     self._next_obs(row_last, env), self._take(self.terminated, flat_last),
                     self._take(self.truncated, flat_last), discount=gamma ** (last + 1).float())

    @staticmethod
    def _take(t: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """t viewed (rows * n_envs, ...) at flat indices of any shape."""
        view = t.view(-1, *t.shape[2:])
        return view.index_select(0, flat) if flat.dim() == 1 else view[flat]

    def _obs(self, row: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        return self._take(self.obs, row * self.n_envs + env)

    def unsampleable_rows(self) -> list[int]:
        """Rows whose transitions the latest add made invalid (a lean buffer's row `pos` now holds
        the newest next observation); prioritized replay zeroes their priorities."""
        return [self.pos] if self.lean and self.full else []

    def _next_obs(self, row: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        flat = row * self.n_envs + env
        if not self.lean:
            return self._take(self.next_obs, flat)
        following = ((row + 1) % self.rows) * self.n_envs + env  # obs of the same env's next row
        next_obs = self.obs.view(-1, *self.obs.shape[2:]).index_select(0, following)
        for i in self.ended.view(-1).index_select(0, flat).nonzero().squeeze(1).tolist():
            next_obs[i] = self.final_obs[int(flat[i])]
        return next_obs

    # ---- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The filled part of the buffer and its position (saved with a checkpoint on request)."""
        n = self.rows if self.full else self.pos
        names = ["obs", "actions", "rewards", "terminated", "truncated", "valid", "ended"]
        if not self.lean:
            names.append("next_obs")
        state = {name: getattr(self, name)[:n].clone() for name in names}
        if self.lean and not self.full and n < self.rows:
            state["pending_obs"] = self.obs[n].clone()  # the newest row's next observation
        state.update(pos=self.pos, full=self.full, rows=self.rows, n_envs=self.n_envs, lean=self.lean,
                     final_obs=dict(self.final_obs))
        return state

    def load_state_dict(self, state: dict) -> None:
        if (state.get("rows"), state.get("n_envs"), state.get("lean")) != (self.rows, self.n_envs, self.lean):
            raise CheckpointError(
                f"the saved replay buffer has {state.get('rows')} rows x {state.get('n_envs')} envs "
                f"(optimize_memory_usage={state.get('lean')}), this agent's {self.rows} x {self.n_envs} "
                f"(optimize_memory_usage={self.lean}); load it with the same buffer_size, n_envs and setting")
        n = len(state["obs"])
        for name in ["obs", "actions", "rewards", "terminated", "truncated", "valid", "ended"] + ([] if self.lean else ["next_obs"]):
            getattr(self, name)[:n] = state[name]
        if "pending_obs" in state:
            self.obs[n] = state["pending_obs"]
        self.final_obs = dict(state["final_obs"])
        self.pos, self.full = int(state["pos"]), bool(state["full"])
        self.all_valid = bool(self.valid.all())

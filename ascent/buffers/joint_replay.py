"""A replay of a team's joint transitions (the multi-agent value-based learners: VDN, QMIX):
(obs (n_agents, obs_dim), state, actions (n_agents,), team reward, next obs, next state, terminated),
a ring of the most recent `capacity`, sampled uniformly. The next observation is stored with each
transition (the one the step ended in, before any reset), so episodes need no cutting."""

from __future__ import annotations

import numpy as np
import torch


class JointReplay:
    def __init__(self, capacity: int, n_agents: int, obs_dim: int, state_dim: int):
        self.capacity = int(capacity)
        self.data = {
            "obs": np.zeros((capacity, n_agents, obs_dim), np.float32), "state": np.zeros((capacity, state_dim), np.float32),
            "actions": np.zeros((capacity, n_agents), np.int64), "reward": np.zeros(capacity, np.float32),
            "next_obs": np.zeros((capacity, n_agents, obs_dim), np.float32),
            "next_state": np.zeros((capacity, state_dim), np.float32), "terminated": np.zeros(capacity, np.float32),
        }
        self.next, self.size = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, state, actions, reward, next_obs, next_state, terminated) -> None:
        """One transition per env: every argument has the envs as its first axis."""
        n = len(reward)
        idx = (self.next + np.arange(n)) % self.capacity
        for key, value in zip(self.data, (obs, state, actions, reward, next_obs, next_state, terminated)):
            self.data[key][idx] = value
        self.next, self.size = int((self.next + n) % self.capacity), min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.size, size=batch_size)
        return {key: torch.as_tensor(value[idx], device=device) for key, value in self.data.items()}

    def cut_episodes(self) -> None:
        """(Nothing to cut: each transition holds its own next observation.)"""

    def state_dict(self) -> dict:
        return {"data": {k: torch.from_numpy(v[:self.size].copy()) for k, v in self.data.items()},
                "next": self.next, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        size = int(state["size"])
        for key, value in state["data"].items():
            self.data[key][:size] = value.numpy()
        self.next, self.size = int(state["next"]), size

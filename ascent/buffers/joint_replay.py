"""A replay of a team's joint transitions (the multi-agent learners: VDN, QMIX, MADDPG): (obs
(n_agents, obs_dim), state, actions, reward, next obs, next state, terminated), a ring of the most
recent `capacity`, sampled uniformly. The next observation is stored with each transition (the one
the step ended in, before any reset), so episodes need no cutting.

Actions are one integer per agent (n_agents,), or with `action_dim` a float vector per agent
(n_agents, action_dim) (MADDPG's one-hot or unit-box actions, padded to the longest). The reward is
the team's (a number), or with `agent_rewards` every agent's own (n_agents,). state_dim=0 stores no
global state (add's state and next_state are then ignored, and a sample has no state keys)."""

from __future__ import annotations

import numpy as np
import torch

FIELDS = ("obs", "state", "actions", "reward", "next_obs", "next_state", "terminated")  # add()'s order


class JointReplay:
    def __init__(self, capacity: int, n_agents: int, obs_dim: int, state_dim: int, action_dim: int | None = None,
                 agent_rewards: bool = False):
        self.capacity = int(capacity)
        actions = (np.zeros((capacity, n_agents), np.int64) if action_dim is None
                   else np.zeros((capacity, n_agents, action_dim), np.float32))
        self.data = {
            "obs": np.zeros((capacity, n_agents, obs_dim), np.float32), "state": np.zeros((capacity, state_dim), np.float32),
            "actions": actions, "reward": np.zeros((capacity, n_agents) if agent_rewards else capacity, np.float32),
            "next_obs": np.zeros((capacity, n_agents, obs_dim), np.float32),
            "next_state": np.zeros((capacity, state_dim), np.float32), "terminated": np.zeros(capacity, np.float32),
        }
        if state_dim == 0:
            del self.data["state"], self.data["next_state"]
        self.next, self.size = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, state, actions, reward, next_obs, next_state, terminated) -> None:
        """One transition per env: every argument has the envs as its first axis."""
        n = len(terminated)
        idx = (self.next + np.arange(n)) % self.capacity
        for key, value in zip(FIELDS, (obs, state, actions, reward, next_obs, next_state, terminated)):
            if key in self.data:
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

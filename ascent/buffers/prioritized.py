"""Proportional prioritized experience replay (Schaul et al. 2016, arXiv:1511.05952, section 3.3).

Transition i is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha, its priority p_i being
|TD error| + eps from the last time it was learned from (new transitions get the largest priority
seen so far, so each is replayed at least once soon). The bias of the non-uniform draw is corrected
by importance-sampling weights w_i = (N P(i))^-beta / max_j w_j, beta annealed to 1 over training.

A sum tree makes both the draw and a priority update O(log N): leaves hold p_i^alpha, every inner
node the sum of its two children, so the root is the total and a draw descends from the root
towards a uniform number in [0, total). Both are vectorized over a batch (one numpy pass per level).
The sampler keeps priorities only; the transitions stay in the shared replay buffer, addressed by
the flat index row * n_envs + env.
"""

from __future__ import annotations

import numpy as np
import torch

from ascent.errors import CheckpointError


class SumTree:
    """Priorities of `capacity` leaves in a complete binary tree (array layout: node i has children
    2i and 2i + 1, the root is node 1, leaf j is node size + j)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 1 << max(0, (capacity - 1).bit_length())  # leaves, a power of two >= capacity
        self.nodes = np.zeros(2 * self.size, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def leaves(self, index: np.ndarray) -> np.ndarray:
        return self.nodes[self.size + np.asarray(index)]

    def update(self, index: np.ndarray, value: np.ndarray) -> None:
        """Set leaves `index` to `value` and recompute their ancestors (duplicates: the last wins)."""
        node = self.size + np.asarray(index, dtype=np.int64)
        self.nodes[node] = value
        node = np.unique(node // 2)
        while node[0] >= 1:  # recompute parents from children, level by level (correct with duplicates)
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node // 2)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each value in [0, total): the leaf whose cumulative-sum interval holds it."""
        mass = np.array(mass, dtype=np.float64)
        node = np.ones(len(mass), dtype=np.int64)
        while node[0] < self.size:
            left = 2 * node
            go_right = mass >= self.nodes[left]
            mass = np.where(go_right, mass - self.nodes[left], mass)
            node = np.where(go_right, left + 1, left)
        return node - self.size


class PrioritizedSampler:
    """Draws flat transition indices of a replay buffer in proportion to p^alpha and returns the
    importance-sampling weights; the algorithm reports the new |TD errors| with `update`."""

    def __init__(self, capacity: int, alpha: float = 0.6, eps: float = 1e-6):
        self.tree = SumTree(capacity)
        self.alpha, self.eps = alpha, eps
        self.max_priority = 1.0

    def add(self, index: np.ndarray, valid: np.ndarray | None = None) -> None:
        """New transitions at `index` get the maximum priority (0 where invalid: never drawn)."""
        value = np.full(len(index), self.max_priority ** self.alpha)
        if valid is not None:
            value = np.where(valid, value, 0.0)
        self.tree.update(index, value)

    def sample(self, batch_size: int, beta: float, n_sampleable: int,
               rng: np.random.Generator) -> tuple[np.ndarray, torch.Tensor]:
        """(flat indices (B,), importance weights (B,)): a stratified draw, one uniform number in
        each of B equal slices of the total mass (Schaul et al., appendix B.2.1), which lowers the
        variance of the batch composition. Leaves that must not be drawn have priority 0."""
        total = self.tree.total
        if total <= 0:
            raise RuntimeError("cannot sample: every priority is zero")
        bounds = np.linspace(0.0, total, batch_size + 1)
        mass = rng.uniform(bounds[:-1], bounds[1:])
        index = np.minimum(self.tree.find(np.minimum(mass, np.nextafter(total, 0))), self.tree.capacity - 1)
        prob = self.tree.leaves(index) / total
        weights = (n_sampleable * prob) ** -beta
        return index, torch.as_tensor(weights / weights.max(), dtype=torch.float32, device="cpu")

    def update(self, index: np.ndarray, td_error: np.ndarray) -> None:
        """p_i = |delta_i| + eps for the transitions just learned from."""
        priority = np.abs(td_error) + self.eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.update(index, priority ** self.alpha)

    def state_dict(self) -> dict:
        return {"nodes": torch.from_numpy(self.tree.nodes.copy()), "max_priority": self.max_priority,
                "alpha": self.alpha}

    def load_state_dict(self, state: dict) -> None:
        nodes = state["nodes"].numpy()
        if nodes.shape != self.tree.nodes.shape:
            raise CheckpointError(f"the saved priorities cover {nodes.shape[0] // 2} leaves, this buffer "
                                  f"{self.tree.size}; load it with the same buffer_size")
        self.tree.nodes[:] = nodes
        self.max_priority = float(state["max_priority"])


class PrioritizedReplay:
    """A replay buffer (ReplayBuffer or FrameReplayBuffer) with a PrioritizedSampler over its slots:
    what is added gets the maximum priority, and its checkpoint state holds the priorities too."""

    def __init__(self, buffer, alpha: float, eps: float = 1e-6):
        self.buffer = buffer
        self.sampler = PrioritizedSampler(buffer.rows * buffer.n_envs, alpha, eps)

    def __len__(self) -> int:
        return len(self.buffer)

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None) -> None:
        b = self.buffer
        t = b.pos
        b.add(obs, actions, rewards, next_obs, terminated, truncated, valid)
        self.sampler.add(t * b.n_envs + np.arange(b.n_envs), valid)
        for row in b.unsampleable_rows():
            self.sampler.tree.update(row * b.n_envs + np.arange(b.n_envs), np.zeros(b.n_envs))

    def cut_episodes(self) -> None:
        self.buffer.cut_episodes()

    def sample_index(self, batch_size: int, beta: float, rng: np.random.Generator):
        """(row, env, flat index, importance weights), each (B,)."""
        flat, weights = self.sampler.sample(batch_size, beta, len(self.buffer), rng)
        flat_t = torch.from_numpy(flat)
        return flat_t // self.buffer.n_envs, flat_t % self.buffer.n_envs, flat, weights

    def batch(self, row, env, n_step: int = 1, gamma: float = 1.0):
        return self.buffer.batch(row, env, n_step, gamma)

    def update_priorities(self, flat: np.ndarray, td_error: np.ndarray) -> None:
        self.sampler.update(flat, td_error)

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "priorities": self.sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if "priorities" not in state:
            raise CheckpointError("the saved replay buffer has no priorities; load it with prioritized_replay=false")
        self.buffer.load_state_dict(state["buffer"])
        self.sampler.load_state_dict(state["priorities"])

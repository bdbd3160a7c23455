"""Rollout storage for on-policy algorithms: preallocated (T, N, ...) tensors filled step by step.

Env-side fields are numpy arrays sharing memory with their torch views, so writing a step costs a
few array assignments and no allocation. Storage is host memory whatever the networks' device:
what a policy on a GPU computed is copied in, and a rollout's batch goes to the device whole.
"""

from __future__ import annotations

import numpy as np
import torch

from ascent.envs.vector import Step

Array = np.ndarray | torch.Tensor


class RolloutStorage:
    """One rollout of `n_steps` steps from `n_envs` envs."""

    def __init__(self, n_steps: int, n_envs: int, x_shape: int | tuple[int, ...], action_shape: tuple[int, ...],
                 action_dtype: torch.dtype, x_dtype: torch.dtype = torch.float32, keep_final_x: bool = False):
        T, N = n_steps, n_envs
        self.n_steps, self.n_envs = T, N
        x_shape = (x_shape,) if isinstance(x_shape, int) else tuple(x_shape)
        # (T, N, *x_shape): the policy's preprocessed input (normalized obs; uint8 pixels for images)
        self.x = torch.zeros((T, N, *x_shape), dtype=x_dtype, device="cpu")
        self.actions = torch.zeros((T, N, *action_shape), dtype=action_dtype, device="cpu")
        self.logprobs = torch.zeros(T, N, device="cpu")
        self.values = torch.zeros(T, N, device="cpu")
        self.final_values = torch.zeros(T, N, device="cpu")  # V(final obs) where a truncated episode bootstraps
        # with keep_final_x, the final observation's x there too (a learner that values it anew: IMPALA)
        self.final_x = torch.zeros((T, N, *x_shape), dtype=x_dtype, device="cpu") if keep_final_x else None
        # numpy views of the tensors above (a step is written through them: a numpy assignment costs
        # ~1 us, a torch index-assignment several), and the env-side fields, kept as numpy arrays
        self._np = {k: getattr(self, k).numpy() for k in ("x", "actions", "logprobs", "values")}
        self._np.update({
            "rewards": np.zeros((T, N), np.float32),
            "terminated": np.zeros((T, N), bool),
            "dones": np.zeros((T, N), bool),
            "valid": np.ones((T, N), bool),
            "bootstrap": np.zeros((T, N), bool),
        })
        self.rewards, self.terminated, self.dones, self.valid, self.bootstrap = (
            torch.from_numpy(self._np[k]) for k in ("rewards", "terminated", "dones", "valid", "bootstrap")
        )

    @classmethod
    def for_policy(cls, policy, n_steps: int, n_envs: int, keep_final_x: bool = False) -> "RolloutStorage":
        """Storage shaped for an ActorCritic's preprocessed input and actions."""
        action_dtype = torch.float32 if policy.action_kind == "box" else torch.int64
        return cls(n_steps, n_envs, policy.encoder.x_shape, policy.action_space.shape or (), action_dtype,
                   policy.encoder.x_dtype, keep_final_x)

    def add(self, t: int, x: Array, action: Array, logprob: Array, value: Array, step: Step, reward: np.ndarray) -> None:
        """Write step t: what the policy saw and did (numpy arrays or tensors on any device), and what
        the env answered (`reward` possibly scaled)."""
        a = self._np
        a["x"][t] = host(x)
        a["actions"][t] = host(action)
        a["logprobs"][t] = host(logprob)
        a["values"][t] = host(value)
        a["rewards"][t] = reward
        a["terminated"][t] = step.terminated
        a["dones"][t] = step.terminated | step.truncated
        a["valid"][t] = step.valid
        if step.bootstrap is not None:
            a["bootstrap"][t] = step.bootstrap
        else:
            a["bootstrap"][t] = False

    def next_values(self, last_value: torch.Tensor) -> torch.Tensor:
        """V(s_{t+1}) for every step, (T, N): the next stored value, V(last obs) after the last step,
        and V(final obs) where an episode was truncated and the env already reset."""
        nxt = torch.cat([self.values[1:], last_value.unsqueeze(0)], 0)
        return torch.where(self.bootstrap, self.final_values, nxt)

    def flatten(self, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
        """The valid transitions as flat (B, ...) tensors: x, actions, logprobs, values, and `extra`."""
        fields = {"x": self.x, "actions": self.actions, "logprobs": self.logprobs, "values": self.values, **extra}
        if bool(self.valid.all()):
            return {k: v.reshape(-1, *v.shape[2:]) for k, v in fields.items()}
        mask = self.valid
        return {k: v[mask] for k, v in fields.items()}


def host(value: Array) -> Array:
    """A tensor in host memory (a CPU tensor as is), for numpy to read; a numpy array as is."""
    return value.cpu() if isinstance(value, torch.Tensor) else value


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of tensors on `device` (the same dict where it is the CPU's)."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def minibatches(batch: dict[str, torch.Tensor], batch_size: int):
    """Yield random minibatches (dicts of (b, ...) tensors) covering `batch` once, like one epoch.

    The float fields are packed into one matrix so that a minibatch costs one gather per dtype
    instead of one per field; with batch_size >= the batch, the whole batch is yielded as is.
    """
    n = next(iter(batch.values())).shape[0]
    if batch_size >= n:
        yield batch
        return
    floats = {k: v for k, v in batch.items() if v.dtype == torch.float32}
    others = {k: v for k, v in batch.items() if v.dtype != torch.float32}
    shapes = {k: v.shape[1:] for k, v in floats.items()}
    widths = [int(torch.Size(s).numel()) for s in shapes.values()]
    packed = torch.cat([v.reshape(n, -1) for v in floats.values()], 1)  # (n, sum of widths)
    for idx in torch.randperm(n, device=packed.device).split(batch_size):
        rows = packed[idx]
        mb = {k: part.reshape(-1, *shapes[k]) for k, part in zip(floats, rows.split(widths, 1))}
        mb.update({k: v[idx] for k, v in others.items()})
        yield mb

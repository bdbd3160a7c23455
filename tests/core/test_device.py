"""The `device` setting: how it resolves, its errors, and the storage that stays in host memory
whatever the networks' device (the contract suite checks every algorithm's placement)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import ascent
from ascent.algorithms.ppo import PPO
from ascent.buffers.frame_replay import FrameReplayBuffer
from ascent.buffers.prioritized import PrioritizedReplay
from ascent.buffers.replay import ReplayBuffer
from ascent.buffers.rollout import RolloutStorage, minibatches, to_device
from ascent.core.checkpoint import load_checkpoint, save_checkpoint
from ascent.core.process import on_device, resolve_device
from ascent.errors import ConfigError
from ascent.nets.layers import numpy_linear_stack
from ascent.nets.precision import resolve_precision

NO_GPU = not torch.cuda.is_available()


def test_auto_is_the_cpu_for_vector_observations_and_a_visible_gpu_for_images(monkeypatch):
    assert resolve_device("auto", image_observations=False) == torch.device("cpu")
    assert resolve_device("cpu", image_observations=True) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", image_observations=True) == torch.device("cuda")
    assert resolve_device("auto", image_observations=False) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", image_observations=True) == torch.device("cpu")


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error_and_nothing_is_built():
    with pytest.raises(ConfigError, match="device='cuda'.*device=cpu"):
        PPO("CartPole-v1", verbose=0, device="cuda")
    with pytest.raises(ConfigError, match="device='cuda:1'"):
        resolve_device("cuda:1", image_observations=False)


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "CPU", "cuda:x", 3])
def test_a_device_name_that_is_none_of_the_forms_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="device must be"):
        PPO("CartPole-v1", verbose=0, device=bad)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_a_gpu_checkpoint_loads_on_a_machine_without_one_when_told_the_device(tmp_path):
    agent = PPO("CartPole-v1", verbose=0, n_envs=2, n_steps=16, batch_size=16, device="cpu")
    path = agent.save(tmp_path / "model.pt")
    payload = load_checkpoint(path)
    payload["config"]["device"] = "cuda"  # as a run on a GPU machine writes it
    save_checkpoint(path, payload)
    with pytest.raises(ConfigError, match="device='cuda'.*device='cpu'.*--device cpu"):
        ascent.load(path, verbose=0)
    loaded = ascent.load(path, verbose=0, device="cpu")
    assert loaded.device == torch.device("cpu") and loaded.config.device == "cpu"
    obs = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))


def test_bf16_is_the_cpus_and_refused_on_a_gpu():
    assert resolve_precision("auto", "cuda") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(ConfigError, match="precision=bf16.*fp32"):
        resolve_precision("bf16", "cuda")


def test_numpy_acting_is_only_for_layers_on_the_cpu():
    layers = [nn.Linear(3, 4), nn.Linear(4, 2)]
    assert numpy_linear_stack(layers, "tanh") is not None
    assert numpy_linear_stack([nn.Linear(3, 4, device="meta"), nn.Linear(4, 2, device="meta")], "tanh") is None


def test_on_device_sets_where_tensors_are_made_and_is_nothing_on_the_cpu():
    with on_device(torch.device("meta")):
        assert torch.zeros(2).device.type == "meta"
        assert torch.as_tensor(np.zeros(2)).device.type == "meta"
    with on_device(torch.device("cpu")):
        assert torch.zeros(2).device.type == "cpu"


# ---- storage is host memory, whatever device tensors default to (setup runs on the agent's) ---------
OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
FRAMES = gym.spaces.Box(0, 255, (4, 8, 8), np.uint8)


def host_only(obj) -> list[str]:
    return [name for name, v in vars(obj).items() if isinstance(v, torch.Tensor) and v.device.type != "cpu"]


@pytest.mark.parametrize("lean", [False, True])
def test_replay_buffers_allocate_and_sample_in_host_memory_under_another_default_device(lean):
    rng = np.random.default_rng(0)
    with on_device(torch.device("meta")):
        buffers = [ReplayBuffer(64, 2, OBS, gym.spaces.Discrete(2), lean),
                   FrameReplayBuffer(64, 2, FRAMES, gym.spaces.Discrete(2), lean)]
        for buffer in buffers:
            framed = isinstance(buffer, FrameReplayBuffer)
            for t in range(20):  # frame stacks of one episode (frame k is filled with k), or plain vectors
                if framed:
                    obs, next_obs = (np.stack([np.full((2, *FRAMES.shape[1:]), max(0, u - 3 + j), np.uint8)
                                               for j in range(4)], 1) for u in (t, t + 1))
                else:
                    obs = np.full((2, *OBS.shape), t, np.float32)
                    next_obs = obs + 1
                buffer.add(obs, np.array([0, 1]), np.ones(2), next_obs, np.zeros(2, bool), np.array([not framed and t % 7 == 6] * 2))
            assert not host_only(buffer), type(buffer).__name__
            batch = buffer.batch(*buffer.sample_index(8), n_step=3, gamma=0.9)
            assert {t.device.type for t in (batch.obs, batch.actions, batch.rewards, batch.next_obs)} == {"cpu"}
        prioritized = PrioritizedReplay(buffers[0], 0.6, 1e-6)
        prioritized.add(np.zeros((2, 3), np.float32), np.array([0, 1]), np.ones(2), np.zeros((2, 3), np.float32),
                        np.zeros(2, bool), np.zeros(2, bool))
        row, env, flat, weights = prioritized.sample_index(8, 0.4, rng)
        assert {row.device.type, env.device.type, weights.device.type} == {"cpu"}


def test_rollout_storage_is_host_memory_and_moves_to_the_device_as_one_batch():
    with on_device(torch.device("meta")):
        storage = RolloutStorage(4, 2, 3, (), torch.int64)
    assert all(t.device.type == "cpu" for t in (storage.x, storage.actions, storage.logprobs, storage.values,
                                                storage.final_values, storage.rewards))
    batch = storage.flatten(advantages=torch.zeros(4, 2))
    assert to_device(batch, torch.device("cpu")) is batch  # no copy on the CPU
    moved = to_device(batch, torch.device("meta"))
    assert {v.device.type for v in moved.values()} == {"meta"}
    # minibatches of a batch on a device are drawn there
    assert {v.device.type for mb in minibatches(moved, 4) for v in mb.values()} == {"meta"}

"""Weights and gradients on the wire: a flat model's one-array weights and gradients against
the module's own parameters and autograd, and what a call carries for an array."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ascent.cluster.weights import INLINE_BYTES, FlatModel, on_the_wire
from ascent.nets.policies import ActorCritic


def policy(seed: int) -> ActorCritic:
    torch.manual_seed(seed)
    return ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), net_arch=(8, 8))


def loss(net: ActorCritic, x: torch.Tensor) -> torch.Tensor:
    dist, value = net(x)
    return (dist.logits ** 2).sum() + (value ** 3).sum()


def test_a_flat_models_gradient_is_autograds_in_parameter_order_and_zeroed_between_calls():
    net, ref = policy(0), policy(0)
    model = FlatModel(net)
    x = torch.randn(7, 4)
    gradient = model.gradient(loss(net, x))
    expected = torch.autograd.grad(loss(ref, x), list(ref.parameters()))
    np.testing.assert_allclose(gradient, torch.cat([g.reshape(-1) for g in expected]).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.gradient(loss(net, x)), gradient, rtol=1e-6)  # not accumulated
    assert gradient.dtype == np.float32 and gradient.shape == (sum(p.numel() for p in ref.parameters()),)


def test_loaded_flat_weights_reach_the_module_and_its_numpy_actor_even_read_only():
    net, other = policy(0), policy(1)
    act = net.numpy_actor(np.random.default_rng(0))  # (built before the parameters became flat views)
    model = FlatModel(net)
    weights = FlatModel(other).weights()
    weights.flags.writeable = False  # Ray hands actors read-only arrays
    model.load(weights)
    for p, q in zip(net.parameters(), other.parameters()):
        torch.testing.assert_close(p, q)
    obs = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(act(obs)[2], other.value(torch.as_tensor(obs)).detach().numpy(), rtol=1e-5, atol=1e-6)
    copy = model.weights()
    model.load(np.zeros_like(copy))
    assert np.abs(copy).sum() > 0, "weights() is a copy: later loads do not change it"
    assert all(float(p.detach().abs().sum()) == 0 for p in net.parameters())


def test_small_arrays_travel_inside_the_call():
    small = np.zeros(INLINE_BYTES // 4, np.float32)
    assert on_the_wire(small) is small


def test_large_arrays_go_once_through_the_object_store():
    import ray

    from ascent.cluster.session import ensure_ray

    ensure_ray("")
    large = np.arange(INLINE_BYTES // 4 + 1, dtype=np.float32)
    ref = on_the_wire(large)
    assert isinstance(ref, ray.ObjectRef)
    np.testing.assert_array_equal(ray.get(ref), large)

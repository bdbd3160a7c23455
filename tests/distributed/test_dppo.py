"""DPPO: the chief's step from N workers' gradients is the single-process PPO step on the union of
their parts (to 1e-6), and the config's constraints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ascent.algorithms.common.onpolicy import agent_advantage_batch
from ascent.algorithms.common.returns import normalize_advantages
from ascent.algorithms.ppo import PPO, ppo_loss
from ascent.distributed.dppo import DPPO, DPPOConfig, part_gradient
from ascent.errors import ConfigError
from ascent.nets.optim import OptimizerStep


@pytest.mark.parametrize("n_workers", [2, 4])
@pytest.mark.parametrize("kl_penalty", [False, True])
def test_n_workers_on_the_same_data_give_the_single_process_ppo_step(n_workers, kl_penalty):
    hp = dict(n_envs=4, n_steps=32, batch_size=64, net_arch=(16, 16), kl_penalty=kl_penalty, ent_coef=0.01,
              clip_range_vf=0.2)
    ppo = PPO("Pendulum-v1", seed=0, verbose=0, preset="none", **hp)
    ppo.start_episodes()
    batch = agent_advantage_batch(ppo)
    c = DPPOConfig(**hp, n_actors=n_workers)
    if kl_penalty:
        with torch.no_grad():
            batch["old_params"] = ppo.policy.dist_params(batch["x"])
    old_log_std = ppo.policy.log_std.detach().clone()
    minibatch = torch.randperm(len(batch["x"]), generator=torch.Generator().manual_seed(1))[:64]
    mb = {k: v[minibatch] for k, v in batch.items()}
    old_dist = ppo.policy.make_dist(mb["old_params"], old_log_std) if kl_penalty else None

    # single process: PPO's step on the minibatch (advantages normalized over it)
    single = PPO("Pendulum-v1", seed=0, verbose=0, preset="none", **hp)
    single.policy.load_state_dict(ppo.policy.state_dict())
    loss, _, _ = ppo_loss(single.policy, mb, ppo.config, 0.2, 0.5, old_dist, normalize_advantage=True)
    single.step(loss)

    # distributed: each worker's equal part, normalized with the minibatch's mean and std; the chief averages
    chief = PPO("Pendulum-v1", seed=0, verbose=0, preset="none", **hp)
    chief.policy.load_state_dict(ppo.policy.state_dict())
    step = OptimizerStep(chief.policy, c.learning_rate, eps=c.adam_eps, max_grad_norm=c.max_grad_norm)
    mean, std = float(mb["advantages"].mean()), float(mb["advantages"].std())
    parts = [{k: v[i::n_workers] for k, v in mb.items()} for i in range(n_workers)]
    results = [part_gradient(chief.policy, p, c, 0.2, 0.5, mean, std, old_log_std) for p in parts]
    step.apply(torch.from_numpy(np.mean([r["gradient"] for r in results], 0)))

    # the normalization is the same, and so is the step
    np.testing.assert_allclose(torch.cat([(p["advantages"] - mean) / (std + 1e-8) for p in parts]).sort().values,
                               normalize_advantages(mb["advantages"]).sort().values, rtol=1e-6, atol=1e-6)
    for (name, a), b in zip(single.policy.state_dict().items(), chief.policy.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6, err_msg=name)
    moved = sum(float((a - b).abs().max()) for a, b in zip(single.policy.state_dict().values(),
                                                           ppo.policy.state_dict().values()))
    assert moved > 1e-4, "the step moved nothing: the comparison would be vacuous"


def test_the_global_minibatch_must_split_evenly_among_the_workers():
    with pytest.raises(ConfigError, match="split evenly among n_actors=3"):
        DPPO("CartPole-v1", verbose=0, n_actors=3, batch_size=64)
    with pytest.raises(ConfigError, match="n_steps \\* n_envs \\* n_actors"):
        DPPO("CartPole-v1", verbose=0, n_actors=2, n_envs=1, n_steps=8, batch_size=64)

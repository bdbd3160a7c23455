"""init_from=RUN: PPO and SAC start from a BC run's policy, the value function or critics fitted alone
first (the policy's weights do not move then), and a policy of another shape is refused."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.algorithms.ppo import PPO
from ascent.algorithms.sac import SAC
from ascent.errors import CheckpointError
from ascent.imitation.bc import BC
from ascent.imitation.datasets import record_episodes, write_dataset


def bc_run(tmp_path, env_id, act, **hp):
    env = gym.make(env_id)
    data = write_dataset(tmp_path / "demos", record_episodes(act, env, 2, 0), env, "test/demos-v0", "controller")
    run = tmp_path / "bc"
    BC(env_id, seed=0, run_dir=run, verbose=0, dataset=str(data), eval_interval=20, eval_every=0, **hp).learn(
        40, progress_bar=False)
    return str(run), BC.load(run / "model.pt", verbose=0)


def snapshot(params):
    return [p.detach().clone() for p in params]


def moved(before, params):
    return any(not torch.equal(b, p) for b, p in zip(before, params))


def test_ppo_starts_from_bc_and_fits_the_value_first(tmp_path):
    run, bc = bc_run(tmp_path, "CartPole-v1", lambda o: (o[:, 2] > 0).astype(np.int64))
    agent = PPO("CartPole-v1", seed=0, verbose=0, init_from=run, critic_warmup=2, n_envs=2, n_steps=32, batch_size=32,
                n_epochs=2, preset="none", normalize_obs=True)  # (BC standardizes its observations by default)
    for mine, theirs in zip(agent.policy.state_dict().values(), bc.policy_net.state_dict().values()):
        torch.testing.assert_close(mine, theirs)
    actor, critic = agent.policy.actor_parameters(), agent.policy.critic_parameters()
    a0, c0 = snapshot(actor), snapshot(critic)
    stats = snapshot(agent.policy.encoder.normalizer.buffers())
    rows = []
    agent.learn(256, callbacks=lambda a, m: rows.append(m), progress_bar=False)
    assert [r.get("critic_warmup", 0.0) for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert "policy_loss" not in rows[0] and "policy_loss" in rows[2]
    assert not moved(stats, agent.policy.encoder.normalizer.buffers())  # BC's statistics, kept
    # replay the warm-up alone: the actor is where BC left it, the critic moved
    warm = PPO("CartPole-v1", seed=0, verbose=0, init_from=run, critic_warmup=2, n_envs=2, n_steps=32, batch_size=32,
               n_epochs=2, preset="none", normalize_obs=True).learn(128, progress_bar=False)
    with pytest.raises(CheckpointError, match="normalize_obs=True"):
        PPO("CartPole-v1", verbose=0, init_from=run, preset="none")
    assert not moved(a0, warm.policy.actor_parameters()) and moved(c0, warm.policy.critic_parameters())
    assert moved(a0, actor)  # and after the warm-up the policy learns



def test_ppo_policy_steps_after_the_warm_up_start_a_fresh_adam(tmp_path):
    # The warm-up steps Adam with a zero policy gradient; without a restart, the first policy step would be
    # lr * (1 - b1) / sqrt(1 - b2^k) per weight (bias correction counting those steps), several times lr.
    run, _ = bc_run(tmp_path, "CartPole-v1", lambda o: (o[:, 2] > 0).astype(np.int64), normalize_obs=False)
    agent = PPO("CartPole-v1", seed=0, verbose=0, init_from=run, critic_warmup=2, n_envs=2, n_steps=32, batch_size=64,
                n_epochs=1, preset="none", learning_rate=1e-3)
    steps = []
    agent.learn(128, callbacks=lambda a, m: steps.append([float(s["step"]) for s in a.step.optimizer.state.values()]),
                progress_bar=False)
    assert steps == [[1.0], []]  # one warm-up step (one flat buffer), then the restart: no state held
    head = agent.policy.action_head.weight.detach().clone()
    agent.learn(64, progress_bar=False)  # the first policy update: one full-batch Adam step, |step| <= lr per weight
    assert (agent.policy.action_head.weight - head).abs().max().item() <= 1e-3 * (1 + 1e-4)


def test_ppo_explores_with_its_own_log_std_from_a_box_clone(tmp_path):
    run, bc = bc_run(tmp_path, "Pendulum-v1", lambda o: -np.clip(o[:, 2:3], -2, 2).astype(np.float32),
                     normalize_obs=False, log_std_init=-3.0)
    agent = PPO("Pendulum-v1", seed=0, verbose=0, init_from=run, preset="none", log_std_init=-0.5)
    torch.testing.assert_close(agent.policy.log_std.detach(), torch.full((1,), -0.5))
    torch.testing.assert_close(agent.policy.action_head.weight, bc.policy_net.action_head.weight)
    kept = PPO("Pendulum-v1", seed=0, verbose=0, init_from=run, preset="none", keep_log_std=True)
    torch.testing.assert_close(kept.policy.log_std, bc.policy_net.log_std)

def test_sac_starts_from_bc_actor_and_fits_the_critics_first(tmp_path):
    def controller(o):
        return np.clip(-2.0 * np.arctan2(o[:, 1], o[:, 0]), -2, 2)[:, None].astype(np.float32)
    run, bc = bc_run(tmp_path, "Pendulum-v1", controller, policy="sac", net_arch=(32, 32), activation="relu")
    hp = dict(net_arch=(32, 32), learning_starts=16, batch_size=16, buffer_size=500, init_from=run, critic_warmup=8,
              verbose=0, seed=0, normalize_obs=True)
    agent = SAC("Pendulum-v1", **hp)
    for mine, theirs in zip(agent.actor.state_dict().values(), bc.policy_net.state_dict().values()):
        torch.testing.assert_close(mine, theirs)
    a0 = snapshot(agent.actor.parameters())
    agent.learn(15 + 8, progress_bar=False)  # learning starts at the 16th step: the warm-up's 8 gradient steps
    assert agent.counters.n_updates == 8 and not moved(a0, agent.actor.parameters())
    agent.learn(4, progress_bar=False)
    assert moved(a0, agent.actor.parameters())
    with pytest.raises(CheckpointError, match="net_arch"):
        SAC("Pendulum-v1", **{**hp, "net_arch": (64, 64)})
    with pytest.raises(CheckpointError, match="policy=sac fits SAC"):
        run_ac, _ = bc_run(tmp_path / "ac", "Pendulum-v1", controller, net_arch=(32, 32), activation="relu")
        SAC("Pendulum-v1", **{**hp, "init_from": run_ac})

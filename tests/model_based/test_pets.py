"""PETS (ascent/model_based/pets.py): CEM against closed-form optima, trajectory sampling, the MPC
loop's warm start, what it logs, its reward models, bad input, and a short learning run."""

import functools
import math
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.core.logger import read_csv
from ascent.errors import ConfigError, EnvError
from ascent.model_based import pets as pets_module
from ascent.model_based.pets import PETS, cem

TINY = dict(net_arch=(16, 16), n_members=2, horizon=4, population=16, cem_elites=4, cem_iterations=2, particles=2,
            train_freq=25, learning_starts=25, batch_size=16, model_epochs=2, buffer_size=1000)


def test_cem_finds_the_maximum_of_a_quadratic():
    """max_a -sum_t ||a_t - a*_t||^2 over sequences within [-1, 1]: the optimum is a* itself."""
    torch.manual_seed(0)
    target = torch.tensor([[[0.5, -0.3], [-0.8, 0.1], [0.2, 0.9]]] * 2)  # (N=2, H=3, A=2)
    target[1] *= -1

    def objective(actions):  # (N, pop, H, A) -> (N, pop)
        return -(actions - target.unsqueeze(1)).square().sum((2, 3))

    low, high = -torch.ones(2), torch.ones(2)
    mean = cem(objective, torch.zeros(2, 3, 2), torch.full((2, 3, 2), 4 / 16), low, high, population=200,
               n_elites=20, iterations=10, alpha=0.1)
    assert (mean - target).abs().max() < 0.03


def lqr_open_loop(A, B, Q, R, x0, H):
    """argmin_u sum_{t<H} x_t'Q x_t + u_t'R u_t, x_{t+1} = A x_t + B u_t, in closed form: x_t = F_t x0 + G_t u
    is linear in the stacked u, so the cost is a quadratic u'Mu + 2 u'c + const, minimized by -M^-1 c."""
    n, m = B.shape
    F = [np.linalg.matrix_power(A, t) for t in range(H)]
    G = [np.hstack([np.linalg.matrix_power(A, t - 1 - j) @ B if j < t else np.zeros((n, m)) for j in range(H)])
         for t in range(H)]
    M = sum(g.T @ Q @ g for g in G) + np.kron(np.eye(H), R)
    c = sum(g.T @ Q @ f @ x0 for f, g in zip(F, G))
    return np.linalg.solve(M, -c).reshape(H, m)


def test_cem_mpc_recovers_the_lqr_open_loop_optimum():
    """A linear system with quadratic cost: CEM's plan is the closed-form minimizer of the summed
    cost, and its first action (the one MPC executes) agrees with it."""
    torch.manual_seed(0)
    A = np.array([[1.0, 0.1], [0.0, 1.0]])  # a double integrator
    B = np.array([[0.0], [0.3]])
    Q, R, H = np.diag([1.0, 0.1]), np.array([[0.1]]), 10
    x0 = np.array([1.0, -0.5])
    optimum = lqr_open_loop(A, B, Q, R, x0, H)
    assert np.abs(optimum).max() < 2.0  # inside the bounds below: the closed form is the constrained optimum
    At, Bt, Qt, Rt = (torch.as_tensor(m, dtype=torch.float32) for m in (A, B, Q, R))

    def returns(actions):  # (1, pop, H, 1) -> (1, pop): the negative cost along the true dynamics
        x = torch.as_tensor(x0, dtype=torch.float32).expand(actions.shape[1], 2)
        total = torch.zeros(actions.shape[1])
        for t in range(H):
            u = actions[0, :, t]
            total -= (x @ Qt * x).sum(-1) + (u @ Rt * u).sum(-1)
            x = x @ At.T + u @ Bt.T
        return total.unsqueeze(0)

    mean = cem(returns, torch.zeros(1, H, 1), torch.full((1, H, 1), 4.0 ** 2 / 16), torch.tensor([-2.0]),
               torch.tensor([2.0]), population=500, n_elites=50, iterations=30, alpha=0.1)
    plan = mean[0].numpy()
    assert abs(plan[0, 0] - optimum[0, 0]) < 0.01  # (seeds 0-7: within 3e-4)
    assert np.abs(plan - optimum).max() < 0.01
    assert -returns(mean.unsqueeze(1)).item() < -returns(torch.as_tensor(optimum, dtype=torch.float32)
                                                          .view(1, 1, H, 1)).item() * 1.01


def rigged(propagation: str, particles: int) -> PETS:
    """A PETS agent whose 4 members are deterministic (log-variance ~ -30) and move obs[0] by k + 1
    (member k) whatever the input, with the reward obs[0] of the state before each step: a
    particle that keeps member k has the return (k + 1)(0 + 1 + 2 + 3 + 4) = 10 (k + 1)."""
    agent = PETS("Pendulum-v1", seed=0, verbose=0, **dict(TINY, n_members=4, horizon=5, particles=particles,
                                                           propagation=propagation))
    ens = agent.ensemble
    with torch.no_grad():
        ens.weights[-1].zero_()
        ens.biases[-1].zero_()
        ens.biases[-1][:, 0, ens.out_dim:] = -1000.0  # raw log-variance: clamped to min_logvar
        ens.min_logvar.fill_(-30.0)
        for k in range(4):
            ens.biases[-1][k, 0, 0] = k + 1.0
    agent.reward_fn = lambda obs, action: obs[..., 0]
    return agent


def test_ts_inf_keeps_each_particles_member_for_the_whole_horizon():
    balanced = rigged("ts_inf", particles=8).particle_returns(torch.zeros(1, 3), torch.zeros(1, 3, 5, 1))
    assert balanced.shape == (8, 1, 3)  # (P, N, population)
    for candidate in range(3):  # P % E == 0: each member carries exactly P / E = 2 particles of every candidate
        got = balanced[:, 0, candidate].sort().values
        torch.testing.assert_close(got, torch.tensor([10.0, 10, 20, 20, 30, 30, 40, 40]), atol=1e-3, rtol=0)
    drawn = rigged("ts_inf", particles=6).particle_returns(torch.zeros(2, 3), torch.zeros(2, 50, 5, 1))
    assert drawn.shape == (6, 2, 50)  # P % E != 0: members drawn per particle, still kept
    near = (drawn / 10).round() * 10
    torch.testing.assert_close(drawn, near, atol=1e-3, rtol=0)
    assert set(near.unique().tolist()) == {10.0, 20.0, 30.0, 40.0}


def test_ts_1_redraws_the_member_every_step():
    returns = rigged("ts_1", particles=8).particle_returns(torch.zeros(1, 3), torch.zeros(1, 200, 5, 1))
    assert returns.shape == (8, 1, 200)
    mixed = ((returns / 10).round() * 10 - returns).abs() > 0.5  # a return no single member gives
    assert mixed.float().mean() > 0.5
    assert abs(returns.mean().item() - 25.0) < 1.0  # E[k + 1] = 2.5 per step: the same expectation as TS-inf


def test_mpc_executes_the_first_action_and_shifts_the_plan(monkeypatch):
    agent = PETS("Pendulum-v1", seed=0, verbose=0, **TINY)
    solution = torch.arange(8, dtype=torch.float32).view(2, 4, 1) / 10  # what CEM returns, (N=2, H=4, A=1)
    started_from = {}

    def fake_cem(objective, mean, *args, **kwargs):
        started_from["mean"] = mean.clone()
        return solution

    monkeypatch.setattr(pets_module, "cem", fake_cem)
    plan = np.full((2, 4, 1), 0.7, dtype=np.float32)
    action = agent.mpc(np.zeros((2, 3), dtype=np.float32), plan)
    torch.testing.assert_close(started_from["mean"], torch.full((2, 4, 1), 0.7))  # warm-started from the plan
    np.testing.assert_allclose(action, solution[:, 0].numpy())
    np.testing.assert_allclose(plan[:, :3], solution[:, 1:].numpy())  # shifted by one step
    np.testing.assert_allclose(plan[:, 3], 0.0)  # and CEM's initial mean (the middle of [-2, 2]) appended


def test_deterministic_actions_repeat_and_stay_within_the_bounds():
    agent = PETS("Pendulum-v1", seed=0, verbose=0, **TINY)
    agent.learn(50, progress_bar=False)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    first = agent.act(obs, deterministic=True)
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), first)
    assert first.shape == (5, 1) and np.all(np.abs(first) <= 2.0)


def test_random_warm_up_then_refits_and_logs_model_quality(tmp_path):
    agent = PETS("Pendulum-v1", seed=0, verbose=0, run_dir=tmp_path, **dict(TINY, learning_starts=50))
    agent.learn(100, progress_bar=False)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["steps"]) for r in rows] == [25, 50, 75, 100]
    assert not rows[0].get("model_holdout_mse")  # warm-up: no fit yet
    assert rows[1]["model_holdout_mse"] and not rows[1].get("plan_ms")  # first fit, after random actions only
    for key in ("plan_ms", "model_mse_1step", "model_mse_kstep", "model_holdout_mse", "model_train_nll"):
        assert math.isfinite(float(rows[2][key])), key
    assert float(rows[3]["plan_ms"]) > 0
    assert len(agent.replay) == 100


def test_reward_is_known_for_pendulum_and_learned_elsewhere():
    assert not PETS("Pendulum-v1", verbose=0, **TINY).ensemble.learn_reward
    assert PETS("Pendulum-v1", verbose=0, reward_model="learned", **TINY).ensemble.learn_reward
    assert PETS("MountainCarContinuous-v0", verbose=0, **TINY).ensemble.learn_reward
    with pytest.raises(ConfigError, match="no known reward for 'MountainCarContinuous-v0'"):
        PETS("MountainCarContinuous-v0", verbose=0, reward_model="known", **TINY)


class SpaceEnv(gym.Env):
    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


BOX3 = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


@pytest.mark.parametrize("obs_space,action_space,named,hint", [
    (BOX3, gym.spaces.Discrete(3), "Discrete(3)", "dqn or ppo"),
    (BOX3, gym.spaces.Box(-np.inf, np.inf, (1,), np.float32), "Box(-inf, inf", "bounded"),
    (gym.spaces.Dict({"x": BOX3}), BOX3, "Dict(", "FlattenObservation"),
    (gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), BOX3, "Box(0, 255, (3, 8, 8)", "FlattenObservation"),
])
def test_unsupported_spaces_are_clear_errors(obs_space, action_space, named, hint):
    with pytest.raises(EnvError) as err:
        PETS(functools.partial(SpaceEnv, obs_space, action_space), verbose=0, **TINY)
    assert named in str(err.value) and hint in str(err.value)


def test_a_discrete_gymnasium_env_is_refused():
    with pytest.raises(EnvError, match=r"Discrete\(2\).*dqn or ppo"):
        PETS("CartPole-v1", verbose=0)


def test_config_bounds():
    with pytest.raises(ConfigError, match="cem_elites"):
        PETS("Pendulum-v1", verbose=0, **dict(TINY, cem_elites=17))
    with pytest.raises(ConfigError, match="n_elites"):
        PETS("Pendulum-v1", verbose=0, **dict(TINY, n_elites=3))
    with pytest.raises(ConfigError, match="normalize_reward"):
        PETS("Pendulum-v1", verbose=0, **dict(TINY, normalize_reward=True))
    with pytest.raises(ConfigError, match="propagation"):
        PETS("Pendulum-v1", verbose=0, **dict(TINY, propagation="ts_2"))


@pytest.mark.slow
def test_pets_learns_pendulum_in_five_episodes():
    """1,000 env steps (one random episode, then four of MPC) with small members and a small CEM.
    Measured, mean return of 5 evaluation episodes (random actions: about -1200): seeds 0-4 gave
    -173, -173, -223, -273, -224; the same planner with the true dynamics scores about -170 on such
    starts. 55 s in all (training and evaluation) on one core of a loaded 2-core machine."""
    start = time.perf_counter()
    agent = PETS("Pendulum-v1", seed=0, verbose=0, net_arch=(64, 64), horizon=15, population=64, cem_elites=8,
                 particles=5, cem_iterations=4)
    agent.learn(1000, progress_bar=False)
    result = agent.evaluate(5)
    assert result["mean_return"] > -400, (result["returns"], time.perf_counter() - start)

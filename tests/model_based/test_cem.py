"""The cross-entropy method: the elite refit and the noise schedule by hand, the batched candidate
forward against the policy's own, both variants learning CartPole and a continuous identity task,
and the parameter-space variant's checkpoint, resume and determinism (the contract suite runs the
elite-episode variant)."""

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ascent.errors import ConfigError, EnvError
from ascent.model_based.cem import CEM, CEMConfig, candidate_outputs, extra_noise, refit_elites


# ---- the CE update by hand ----------------------------------------------------------------------------
def test_refit_elites_by_hand():
    elites = torch.tensor([[1.0, 2.0], [3.0, 6.0], [2.0, 1.0]], dtype=torch.float64)
    mean, var = refit_elites(elites, extra_noise=0.5)
    # mean (2, 3); variances (1 + 1 + 0) / 3 and (1 + 9 + 4) / 3, divided by K (maximum likelihood), + Z
    torch.testing.assert_close(mean, torch.tensor([2.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(var, torch.tensor([2 / 3 + 0.5, 14 / 3 + 0.5], dtype=torch.float64))
    _, no_noise = refit_elites(elites[:1], extra_noise=0.0)  # one elite: the variance collapses without noise
    torch.testing.assert_close(no_noise, torch.zeros(2, dtype=torch.float64))


def test_extra_noise_is_szita_and_lorincz_schedule():
    c = CEMConfig(noise_start=5.0, noise_decay_iterations=50.0)  # the paper's Z_t = max(5 - t/10, 0)
    assert [extra_noise(c, t) for t in (0, 1, 10, 49, 50, 80)] == pytest.approx([5.0, 4.9, 4.0, 0.1, 0.0, 0.0])
    constant = CEMConfig(noise_start=4.0, noise_decay_iterations=0.0)  # the paper's constant noise
    assert extra_noise(constant, 1000) == 4.0


def test_elite_episodes_are_those_at_or_above_the_percentile(monkeypatch):
    """Four episodes of returns 0..3: the 70th percentile is 2.1 (numpy's linear interpolation), so the
    elite is the return-3 episode alone, and the fit raises the probability of its actions only."""
    agent = CEM("CartPole-v1", seed=0, verbose=0, n_envs=1, n_episodes=4, gradient_steps=5, learning_rate=0.05)
    x = torch.randn(4, 5, 4)  # 4 episodes of 5 steps
    episodes = [{"x": x[i], "actions": torch.full((5,), int(i == 3)), "rewards": torch.full((5,), i / 5)}
                for i in range(4)]
    monkeypatch.setattr("ascent.model_based.cem.collect_agent_episodes", lambda agent, n: episodes)
    p_right = lambda: agent.policy.distribution(x.reshape(20, 4)).logits.exp()[:, 1].mean().item()  # noqa: E731
    before = p_right()
    metrics = agent.train_iteration()
    assert metrics["elite_threshold"] == pytest.approx(np.percentile([0, 1, 2, 3], 70)) == pytest.approx(2.1)
    assert metrics["elite_return"] == pytest.approx(3.0) and metrics["batch_return"] == pytest.approx(1.5)
    assert p_right() > before + 0.1  # only the elite's action 1 was fitted, everywhere


# ---- the batched candidate forward ----------------------------------------------------------------------
@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_candidate_outputs_equal_the_policy_with_the_candidates_weights(env):
    agent = CEM(env, seed=0, verbose=0, variant="parameters", n_envs=1, net_arch=(8, 8), activation="tanh")
    policy = agent.policy
    thetas = agent.search.mean + torch.randn(3, len(agent.search.mean))
    x = policy.encoder.preprocess(np.stack([agent.envs.observation_space.sample() for _ in range(3)]))
    batched = candidate_outputs(policy, thetas, x)
    for i in range(3):  # one candidate at a time through the policy itself
        with torch.no_grad():
            vector_to_parameters(thetas[i].clone(), agent.searched)
            torch.testing.assert_close(batched[i], policy.dist_params(x[i:i + 1])[0])


# ---- learning -------------------------------------------------------------------------------------------
def iterations_to(agent: CEM, target: float, max_iterations: int) -> tuple[int, float]:
    """Iterations until the deterministic policy's mean return over 10 evaluation episodes reaches
    target (or max_iterations), and that return."""
    for it in range(1, max_iterations + 1):
        agent.learn(1, progress_bar=False)  # (one iteration: learn ends once an iteration passes its target)
        score = agent.evaluate(10)["mean_return"]
        if score >= target:
            break
    return it, score


@pytest.mark.parametrize("variant, hp, budget", [
    # Lapan's setup: 16 episodes an iteration, the 70th percentile, 128 ReLU units
    ("episodes", {}, 30),
    ("parameters", dict(population=50, n_envs=25), 30),
])
def test_both_variants_balance_cartpole(variant, hp, budget):
    agent = CEM("CartPole-v1", seed=0, verbose=0, variant=variant, **hp)
    iterations, score = iterations_to(agent, 450.0, budget)
    assert score >= 450.0, f"{variant}: {score} after {iterations} iterations"


@pytest.mark.parametrize("variant", ["episodes", "parameters"])
def test_both_variants_learn_box_actions(variant, continuous_identity_env):
    """Reward -(a - x)^2: a Gaussian policy fitted to elite actions, or the searched mean a = mu(x),
    must move towards a = x (a random policy scores about -27, a = 0 about -6.7 per 20 steps)."""
    agent = CEM(functools.partial(continuous_identity_env), seed=0, verbose=0, variant=variant, n_envs=4,
                net_arch=(16,), n_episodes=16, population=24, learning_rate=3e-2)
    before = agent.evaluate(20)["mean_return"]
    agent.learn(40 * 16 * 20, progress_bar=False)
    after = agent.evaluate(20)["mean_return"]
    assert after > -2.0 and after > before + 3.0, (before, after)


# ---- parameter space: checkpoint, resume, determinism ---------------------------------------------------
SMALL = dict(variant="parameters", n_envs=3, population=6, elite_frac=0.5, net_arch=(8,), log_interval=1)


def run_iterations(agent: CEM, n: int) -> CEM:
    for _ in range(n):
        agent.train_iteration()
        agent.iteration += 1
    return agent


def test_parameter_space_run_resumes_exactly_and_repeats_by_seed(tmp_path):
    # (one agent at a time: the agents share torch's global generator, which each seeds and a load restores)
    full = run_iterations(CEM("CartPole-v1", seed=4, verbose=0, **SMALL), 3)
    full_state = {k: v.clone() for k, v in full.search.state_dict().items()}
    path = run_iterations(CEM("CartPole-v1", seed=4, verbose=0, **SMALL), 2).save(tmp_path / "cut.pt")
    resumed = run_iterations(CEM.load(path, verbose=0), 1)
    again = run_iterations(CEM("CartPole-v1", seed=4, verbose=0, **SMALL), 3)
    for agent in (resumed, again):
        assert agent.num_steps == full.num_steps
        for name, value in agent.search.state_dict().items():
            torch.testing.assert_close(value, full_state[name], rtol=0, atol=0)
        torch.testing.assert_close(parameters_to_vector(agent.searched), full_state["mean"], rtol=0, atol=0)


def test_parameter_space_policy_acts_with_the_mean():
    agent = CEM("CartPole-v1", seed=0, verbose=0, **SMALL)
    agent.train_iteration()
    torch.testing.assert_close(parameters_to_vector(agent.searched), agent.search.mean, rtol=0, atol=0)
    assert agent.search.mean.data_ptr() != agent.searched[0].data_ptr()  # a copy: the buffer is not aliased


# ---- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hp, named", [
    (dict(variant="genetic"), "variant"),
    (dict(percentile=150.0), "percentile"),
    (dict(variant="parameters", population=4, elite_frac=0.2), "elite_frac"),
    (dict(elite_frac=0.0), "elite_frac"),
    (dict(init_std=0.0), "init_std"),
    (dict(noise_start=-1.0), "noise_start"),
    (dict(normalize_reward=True), "normalize_reward"),
])
def test_bad_hyperparameters_are_config_errors(hp, named):
    with pytest.raises(ConfigError, match=named):
        CEM("CartPole-v1", seed=0, verbose=0, **hp)


def test_an_unsupported_action_space_is_an_env_error():
    class TupleActions(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2)))

    with pytest.raises(EnvError, match="Tuple"):
        CEM(TupleActions, seed=0, verbose=0, n_envs=1)

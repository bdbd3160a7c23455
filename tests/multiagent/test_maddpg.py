"""MADDPG and its independent-DDPG switch: the critic target against a hand computation, what each
critic sees (all agents, or its own), gradient isolation of the actor and critic losses, the
straight-through Gumbel-softmax, the soft target update, Box actions, bad input, and the two-step
game learnt (a random team scores 4.75 on average there)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.errors import ConfigError, EnvError
from ascent.multiagent.maddpg import MADDPG, gumbel_softmax

ADVERSARY = "mpe2:simple_adversary_v3"  # adversary_0 sees 8 numbers, agent_0 and agent_1 10; 5 actions each
SMALL = dict(net_arch=(16,), learning_starts=32, batch_size=16, buffer_size=500, train_freq=1, preset="none")


def agent_with_batch(centralized: bool = True, env: str = ADVERSARY, steps: int = 40):
    agent = MADDPG(env, seed=0, verbose=0, centralized_critic=centralized, **SMALL)
    agent.learn(steps, progress_bar=False)
    return agent, agent.replay.sample(16, np.random.default_rng(0))


def parts(agent, batch):
    obs, next_obs = agent.split(batch["obs"], agent.obs_dims), agent.split(batch["next_obs"], agent.obs_dims)
    return obs, agent.split(batch["actions"], agent.act_dims), next_obs


@pytest.mark.parametrize("centralized", [True, False])
def test_the_critic_target_against_a_hand_computation(centralized):
    """y_i = r_i + gamma (1 - terminated) Q'_i(x', a'), a'_j the one-hot argmax of mu'_j(o'_j), with the
    target networks replaced by linear maps of known weights: the order of the critic's inputs (every
    agent's observation, then every agent's action; or agent i's own two) and the padding cut off."""
    agent = MADDPG(ADVERSARY, seed=0, verbose=0, centralized_critic=centralized, gamma=0.9, **SMALL)
    rng = np.random.default_rng(1)
    dims, N = agent.obs_dims, 3
    assert dims == [8, 10, 10] and agent.act_dims == [5, 5, 5]
    actor_w = [rng.normal(size=(5, d)).astype(np.float32) for d in dims]
    for j in range(N):
        linear = torch.nn.Linear(dims[j], 5, bias=False)
        linear.weight.data = torch.from_numpy(actor_w[j])
        agent.actor_targets[j] = linear
    next_obs = rng.normal(size=(2, N, 10)).astype(np.float32)
    next_obs[:, 0, 8:] = 99.0  # the adversary's padding: never read
    batch = {"next_obs": torch.from_numpy(next_obs), "reward": torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]]),
             "terminated": torch.tensor([0.0, 1.0])}
    one_hot = [np.eye(5)[(next_obs[:, j, :dims[j]] @ actor_w[j].T).argmax(1)] for j in range(N)]  # a'_j (2, 5)
    for i in range(N):
        seen = range(N) if centralized else [i]
        x = np.concatenate([next_obs[:, j, :dims[j]] for j in seen] + [one_hot[j] for j in seen], axis=1)
        critic_w = rng.normal(size=x.shape[1]).astype(np.float32)
        linear = torch.nn.Linear(x.shape[1], 1, bias=False)
        linear.weight.data = torch.from_numpy(critic_w[None])
        agent.critic_targets[i] = linear
        expected = batch["reward"][:, i].numpy() + 0.9 * np.array([1.0, 0.0]) * (x @ critic_w)
        next_split = agent.split(batch["next_obs"], dims)
        y = agent.critic_target(i, batch, next_split, agent.target_actions(next_split))
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
        assert y[1].item() == batch["reward"][1, i].item()  # terminated: the reward alone


def test_the_centralized_critic_sees_every_agent_and_the_independent_one_only_its_own():
    for centralized in (True, False):
        agent, batch = agent_with_batch(centralized)
        obs, actions, _ = parts(agent, batch)
        other_action = [a.clone() for a in actions]
        other_action[2] = torch.roll(other_action[2], 1, dims=1)  # agent_1 takes another (one-hot) action
        other_obs = [o.clone() for o in obs]
        other_obs[1] = other_obs[1] + 1.0  # agent_0 sees something else
        with torch.no_grad():
            q = agent.q(0, obs, actions)  # the adversary's critic
            changed = [not torch.allclose(q, agent.q(0, o, a)) for o, a in ((obs, other_action), (other_obs, actions))]
        assert changed == [centralized, centralized]
        assert agent.critics[0].layers[0].in_features == (28 + 15 if centralized else 8 + 5)


def test_each_loss_reaches_only_its_own_agents_network():
    agent, batch = agent_with_batch()
    obs, actions, next_obs = parts(agent, batch)
    next_actions = agent.target_actions(next_obs)
    actor_params = [list(a.parameters()) for a in agent.actors]
    critic_params = [list(q.parameters()) for q in agent.critics]
    everything = [p for ps in actor_params + critic_params for p in ps]
    for i in range(3):
        for loss, own in ((agent.actor_loss(i, obs, actions), actor_params[i]),
                          (agent.critic_loss(i, batch, obs, actions, next_obs, next_actions), critic_params[i])):
            grads = torch.autograd.grad(loss, everything, allow_unused=True)
            reached = {id(p) for p, g in zip(everything, grads) if g is not None and g.abs().sum() > 0}
            allowed = {id(p) for p in own + critic_params[i]}  # (the actor loss passes through critic i)
            assert {id(p) for p in own} <= reached <= allowed  # its own network, no other agent's
    # (the actor loss also reaches critic i's weights; OptimizerStep steps the actor's parameters only)
    before = [p.detach().clone() for p in agent.critics[0].parameters()]
    agent.actor_steps[0](agent.actor_loss(0, obs, actions))
    assert all(torch.equal(b, p) for b, p in zip(before, agent.critics[0].parameters()))


def test_the_straight_through_gumbel_softmax():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, requires_grad=True)
    gumbel = -torch.log(-torch.log(torch.rand(4, 6)))
    y = gumbel_softmax(logits, 0.5, gumbel)
    assert y.shape == (4, 6)
    expected = torch.nn.functional.one_hot((logits + gumbel).argmax(1), 6).float()
    assert torch.equal(y.detach(), expected)  # forward: exactly one-hot
    w = torch.randn(4, 6)
    (grad,) = torch.autograd.grad((y * w).sum(), logits)
    (soft_grad,) = torch.autograd.grad((torch.softmax((logits + gumbel) / 0.5, 1) * w).sum(), logits)
    assert torch.allclose(grad, soft_grad)  # backward: the relaxed sample's gradient
    # Gumbel-max: argmax(logits + g) is a draw from softmax(logits)
    draws = gumbel_softmax(logits.detach()[:1].expand(40_000, 6), 1.0).mean(0)
    assert torch.allclose(draws, torch.softmax(logits.detach()[0], 0), atol=0.01)


def test_the_soft_target_update_follows_the_formula():
    agent, batch = agent_with_batch()
    targets = [p.detach().clone() for p in agent.target_pairs[0]]
    agent.update(batch)
    tau = agent.config.tau
    for before, after, online in zip(targets, *agent.target_pairs):
        assert torch.allclose(after, (1 - tau) * before + tau * online.detach(), atol=1e-7)


def test_box_actions_are_tanh_bounded_and_mapped_onto_the_env_bounds():
    agent, batch = agent_with_batch(env="mpe2:simple_adversary_v3(continuous_actions=True)")
    assert not any(agent.discrete) and agent.act_dims == [5, 5, 5]
    unit = batch["actions"].numpy()
    assert (np.abs(unit) <= 1).all() and len(np.unique(unit)) > 100  # noisy unit-box actions, not one-hot
    obs = np.random.default_rng(0).normal(size=(7, 8)).astype(np.float32)
    for deterministic in (True, False):
        action = agent.act(obs, deterministic=deterministic)
        assert action.shape == (7, 5) and (action >= 0).all() and (action <= 1).all()  # MPE's Box(0, 1, (5,))
    assert agent.evaluate(1)["episodes"] == 1


def test_truncation_is_stored_as_such_with_the_final_observation():
    agent, _ = agent_with_batch(steps=30)
    data = agent.replay.data
    assert not data["terminated"][:30].any()  # MPE ends by max_cycles=25: truncated, the target bootstraps
    assert np.array_equal(data["next_obs"][23], data["obs"][24])  # within the episode: the next step's obs
    assert not np.array_equal(data["next_obs"][24], data["obs"][25])  # its last step: the final obs, not the reset's


class EarlyExit:
    """A two-agent parallel env whose agent `b` is done after the first step while `a` goes on."""

    metadata = {"name": "early_exit"}
    possible_agents = ["a", "b"]

    def observation_space(self, agent):
        return gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        return {a: np.zeros(2, np.float32) for a in self.agents}, {}

    def step(self, actions):
        obs = {a: np.zeros(2, np.float32) for a in self.agents}
        done = {a: a == "b" for a in self.agents}
        return obs, {a: 0.0 for a in self.agents}, done, {a: False for a in self.agents}, {}


def test_bad_input_is_a_clear_error(monkeypatch):
    with pytest.raises(EnvError, match=r"Box\(.*Discrete\(2\).*single-agent"):
        MADDPG("CartPole-v1", verbose=0)
    with pytest.raises(EnvError, match="has one"):
        MADDPG("mpe2:simple_v3", verbose=0)
    with pytest.raises(ConfigError, match="normalize_obs"):
        MADDPG(ADVERSARY, verbose=0, normalize_obs=True)
    monkeypatch.setattr("ascent.multiagent.maddpg.make_parallel_env", lambda spec: EarlyExit())
    agent = MADDPG("two_step", verbose=0, **SMALL)
    with pytest.raises(EnvError, match=r"\['b'\] ended before the others"):
        agent.learn(5, progress_bar=False)


def test_maddpg_learns_the_two_step_game():
    # the greedy team's return: 8 is the optimum (2B, then B B), 7 the safe choice, 4.75 a random team's mean
    agent = MADDPG("two_step", seed=0, verbose=0, net_arch=(32,), learning_starts=100, batch_size=32, train_freq=2,
                   buffer_size=2000)
    agent.learn(800, progress_bar=False)  # (seeds 0-4 all find 8 here)
    assert agent.evaluate(5)["mean_return"] == 8.0

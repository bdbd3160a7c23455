"""Small environments with known dynamics, where J(theta) and grad J(theta) are computed exactly, for
checking policy-gradient estimators (on- and off-policy) against the truth. Imported by the tests as
`from mdps import ...` (pytest puts tests/ on the path)."""

import gymnasium as gym
import numpy as np
import torch


class Bandit(gym.Env):
    """Two arms, one step: reward 1 + noise for arm 1, noise for arm 0."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        reward = float(action) + 0.5 + float(self.np_random.normal(0, 0.5))
        return np.ones(1, np.float32), reward, True, False, {}


class TinyMDP(gym.Env):
    """Two states, two actions, episodic: from s, action a pays R[s][a] and moves to 0, 1 or the end
    with probabilities P[s][a] (the end has probability >= 0.2 every step, so no truncation is needed)."""

    R = [[1.0, 0.0], [0.0, 2.0]]
    P = [[[0.6, 0.2, 0.2], [0.1, 0.6, 0.3]], [[0.3, 0.3, 0.4], [0.5, 0.2, 0.3]]]
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return self.s, {}

    def step(self, action):
        reward = self.R[self.s][int(action)]
        nxt = int(self.np_random.choice(3, p=self.P[self.s][int(action)]))
        if nxt == 2:
            return self.s, reward, True, False, {}
        self.s = nxt
        return nxt, reward, False, False, {}


class ContextualBandit(gym.Env):
    """One step: a context c in {0, 1}, drawn uniformly, is observed; arm a pays R[c][a] + N(0, 0.5^2)."""

    R = [[1.0, -0.5], [0.2, 2.0]]
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.c = int(self.np_random.integers(2))
        return self.c, {}

    def step(self, action):
        reward = self.R[self.c][int(action)] + float(self.np_random.normal(0, 0.5))
        return self.c, reward, True, False, {}


def flat_grad(value, policy):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, policy.actor_parameters())])


def action_probs(policy):
    """pi(a|s) (S, A) of a policy on a two-state env with one-hot observations."""
    return torch.softmax(policy.dist_params(torch.eye(2)), -1)


def tiny_mdp_values(pi):
    """V_pi (S,) and Q_pi (S, A) of TinyMDP, undiscounted: V = (I - P_pi)^-1 r_pi, Q = R + P V."""
    P = torch.tensor(TinyMDP.P)[:, :, :2]  # transitions among the non-terminal states
    R = torch.tensor(TinyMDP.R)
    V = torch.linalg.solve(torch.eye(2) - torch.einsum("sa,sat->st", pi, P), (pi * R).sum(-1))
    return V, R + P @ V


def exact_policy_gradient(policy):
    """J(theta) = V_pi(s0) with V = (I - P_pi)^-1 r_pi (undiscounted, episodic), and its exact gradient
    by autodiff through the linear solve."""
    V, _ = tiny_mdp_values(action_probs(policy))
    return V[0].item(), flat_grad(V[0], policy)


def exact_first_order_gradient(policy, behaviour_pi):
    """The expectation of the first-order off-policy estimator, target `policy`, data from behaviour
    probabilities `behaviour_pi` (S, A): the gradient of the surrogate
    L(theta') = sum_s d(s) sum_a pi_theta'(a|s) Q_theta(s, a), with d the behaviour's expected visits
    to s from s0 (the state-marginal ratio d_theta'/d_theta is the factor the approximation drops)."""
    P = torch.tensor(TinyMDP.P)[:, :, :2]
    visits = torch.linalg.solve((torch.eye(2) - torch.einsum("sa,sat->st", behaviour_pi, P)).T, torch.eye(2)[0])
    _, Q = tiny_mdp_values(behaviour_pi)
    surrogate = (visits[:, None] * action_probs(policy) * Q).sum()
    return flat_grad(surrogate, policy)


def exact_bandit_gradient(policy):
    """J(theta) = 1/2 sum_c sum_a pi(a|c) R[c][a] of the contextual bandit, and its exact gradient."""
    J = 0.5 * (action_probs(policy) * torch.tensor(ContextualBandit.R)).sum()
    return J.item(), flat_grad(J, policy)


def sample_tiny_mdp(pi, n_episodes, rng):
    """Logged episodes of TinyMDP under action probabilities `pi` (S, A), as `update_from_episodes`
    takes them (obs, actions, rewards, logprobs), sampled directly (no env, far faster)."""
    pi, P, R = np.asarray(pi, np.float64), np.asarray(TinyMDP.P), np.asarray(TinyMDP.R)
    episodes = []
    for _ in range(n_episodes):
        s, steps = 0, []
        while s != 2:
            a = int(rng.random() < pi[s, 1])
            steps.append((s, a, R[s, a], np.log(pi[s, a])))
            s = int(rng.choice(3, p=P[s, a]))
        obs, actions, rewards, logprobs = map(np.array, zip(*steps))
        episodes.append({"obs": obs, "actions": actions, "rewards": rewards, "logprobs": logprobs})
    return episodes

"""Deep Q-learning from Demonstrations, DQfD (Hester et al. 2018, arXiv:1704.03732; its
"Deep Q-Learning from Demonstrations" section is what this page implements).

Pre-train a Q network on demonstrations alone, then learn in the env like DQN with the
demonstrations kept in the replay for good, both phases minimizing

  J(Q) = J_DQ + lambda1 J_n + lambda2 J_E + lambda3 J_L2
  J_DQ  1-step double-DQN TD loss  huber(Q(s, a) - [r + gamma Q'(s', argmax_a' Q(s', a'))])
  J_n   n-step TD loss, the same with R = sum_{k<L} gamma^k r_{t+k}, s_{t+L}, gamma^L (L <= n)
  J_E   large-margin classification of the demonstrator's action, on demonstrations only:
        max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E),  l = margin where a != a_E, 0 at a_E
  J_L2  ||theta||^2 over the Q network's parameters (weights and biases, as in the paper)

One prioritized sampler draws from demonstrations and agent transitions together: p = |delta| + eps,
with a larger eps_d for demonstrations than eps_a for the agent's own (the paper: the share of
demonstrations in a minibatch is set by the priorities), importance weights as in PER; the agent's
part is DQN's circular buffer, the demonstrations sit beside it and are never overwritten.

DQfD subclasses DQN (the Agent contract allows a variant that differs in its loss): acting, the
env loop, the target-network schedule, the networks and their checkpoint are DQN's, unchanged;
a page of its own would have to copy them (a fork). DQfD adds the demonstration replay, the
pre-training and its loss (built on dqn_target and dqn_loss), and overrides the minibatch draw
and the gradient step. J_E is averaged over the whole minibatch (0 on the agent's rows), as the
TD terms are, so that the importance weights apply to every term alike.

A checkpoint holds the agent's transitions and every priority (the demonstrations' included) when
save_replay_buffer is on; the demonstrations themselves are read again from `dataset` when an
agent is built (loading needs the dataset), and a replay file made with other demonstrations is
refused. Pre-training runs in the first train_iteration (no env steps), and `counters.pretrained`
says it is done: a loaded agent does not pre-train again.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch

from ascent.algorithms.dqn import DQN, DQNConfig, dqn_loss, dqn_target
from ascent.buffers.prioritized import PrioritizedSampler
from ascent.buffers.replay import Batch, ReplayBuffer
from ascent.core.config import param
from ascent.errors import CheckpointError, ConfigError
from ascent.imitation.datasets import Demonstrations, dataset_for
from ascent.nets.optim import polyak_update


@dataclass
class DQfDConfig(DQNConfig):
    dataset: str = param("", "Minari dataset path or local id of the demonstrations")
    pretrain_steps: int = param(10_000, "gradient steps on the demonstrations alone before the first env step",
                                nonnegative=True)
    pretrain_target_update_interval: int = param(1000, "pre-training gradient steps between target network updates",
                                                 positive=True)
    margin: float = param(0.8, "margin l(a_E, a) of the supervised loss for a != a_E", range=(0.0, math.inf))
    n_step_coef: float = param(1.0, "weight lambda1 of the n-step TD loss J_n", range=(0.0, math.inf))
    supervised_coef: float = param(1.0, "weight lambda2 of the large-margin supervised loss J_E", range=(0.0, math.inf))
    l2_coef: float = param(1e-5, "weight lambda3 of the L2 penalty on the Q network's parameters", range=(0.0, math.inf))
    prioritized_replay_demo_eps: float = param(1.0, "eps_d: added to a demonstration's |TD error| (larger than the "
                                               "agent's prioritized_replay_eps: demonstrations are drawn more often)",
                                               range=(0.0, math.inf), low_open=True)
    # The paper's settings where DQN's defaults differ (Hester et al., "Experimental Setup"): n = 10,
    # double DQN with dueling heads, alpha 0.4, beta0 0.6, eps_a 0.001, epsilon 0.01 (the
    # pre-trained Q acts from the start: no uniform warm-up, no decay from 1).
    n_step: int = param(10, "n of the n-step TD loss J_n (the 1-step loss J_DQ is always there)")
    double_q: bool = param(True)
    dueling: bool = param(True)
    prioritized_replay: bool = param(True, "always on: one sampler draws demonstrations and agent transitions by priority")
    prioritized_replay_alpha: float = param(0.4)
    prioritized_replay_beta0: float = param(0.6)
    prioritized_replay_eps: float = param(1e-3, "eps_a: added to the |TD error| of the agent's transitions")
    learning_starts: int = param(0)
    exploration_initial_eps: float = param(0.01)
    exploration_final_eps: float = param(0.01)

    def validate(self) -> None:
        super().validate()
        if not self.prioritized_replay:
            raise ConfigError("dqfd draws demonstrations and its own transitions through one prioritized sampler: "
                              "prioritized_replay must stay true (prioritized_replay_alpha=0 draws uniformly)")


@dataclass
class DemoBatch:
    """A minibatch of demonstrations (first) and agent transitions, each tensor (B, ...)."""

    one_step: Batch  # (s, a, r, s') as stored
    n_step: Batch  # the n-step transitions from the same (s, a)
    is_demo: torch.Tensor  # float 1 for a demonstration: where J_E applies

    def to(self, device: torch.device) -> DemoBatch:
        return DemoBatch(self.one_step.to(device), self.n_step.to(device), self.is_demo.to(device))


def cat_batches(parts: list[Batch]) -> Batch:
    """The transitions of `parts` one after another, every field alike."""
    if len(parts) == 1:
        return parts[0]
    return Batch(*(None if getattr(parts[0], f.name) is None else torch.cat([getattr(p, f.name) for p in parts])
                   for f in fields(Batch)))


class DemoReplay:
    """The agent's replay buffer and the demonstrations beside it, under one prioritized sampler:
    leaf i < n_demo is demonstration i, leaf n_demo + f the agent buffer's flat slot f. The
    demonstrations are stored once (a buffer of exactly their size) and never overwritten."""

    def __init__(self, demos: Demonstrations, buffer: ReplayBuffer, observation_space: gym.Space,
                 action_space: gym.Space, alpha: float, eps_agent: float, eps_demo: float):
        n = len(demos)
        self.n_demo, self.buffer, self.bonus = n, buffer, eps_demo - eps_agent
        self.demos = ReplayBuffer(n, 1, observation_space, action_space)
        # The episodes lie end to end: n-step returns must stop at each one's last step, which the
        # dataset may have left unflagged (a cut-off recording): it bootstraps there as a truncation.
        last = np.r_[demos.episode[1:] != demos.episode[:-1], True]
        truncated = demos.truncated | (last & ~demos.terminated)
        for t in range(n):  # (n_envs = 1: one transition a row)
            self.demos.add(demos.obs[t:t + 1], demos.actions[t:t + 1], demos.rewards[t:t + 1], demos.next_obs[t:t + 1],
                           demos.terminated[t:t + 1], truncated[t:t + 1])
        digest = hashlib.sha1()
        for array in (demos.obs, demos.actions, demos.rewards, demos.terminated, truncated):
            digest.update(np.ascontiguousarray(array).tobytes())
        self.digest = digest.hexdigest()
        self.sampler = PrioritizedSampler(n + buffer.rows * buffer.n_envs, alpha, eps_agent)
        self.sampler.add(np.arange(n))  # the agent's leaves stay 0 (never drawn) until it adds there

    def __len__(self) -> int:
        return self.n_demo + len(self.buffer)

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None) -> None:
        """One step of every env into the agent's buffer, at the maximum priority (PrioritizedReplay.add's
        rule, its leaves offset past the demonstrations)."""
        b = self.buffer
        first = self.n_demo + b.pos * b.n_envs
        b.add(obs, actions, rewards, next_obs, terminated, truncated, valid)
        self.sampler.add(first + np.arange(b.n_envs), valid)
        for row in b.unsampleable_rows():
            self.sampler.tree.update(self.n_demo + row * b.n_envs + np.arange(b.n_envs), np.zeros(b.n_envs))

    def cut_episodes(self) -> None:
        self.buffer.cut_episodes()

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator, n_step: int,
               gamma: float) -> tuple[DemoBatch, torch.Tensor, np.ndarray]:
        """(minibatch, importance weights (B,), leaves (B,)) drawn by priority, demonstrations first."""
        flat, weights = self.sampler.sample(batch_size, beta, len(self), rng)
        order = np.argsort(flat >= self.n_demo, kind="stable")
        return self.batch(flat[order], n_step, gamma), weights[torch.from_numpy(order)], flat[order]

    def batch(self, flat: np.ndarray, n_step: int, gamma: float) -> DemoBatch:
        """The transitions at leaves `flat`, the demonstrations' (leaves < n_demo) first."""
        demo = flat < self.n_demo
        if not np.all(demo[:demo.sum()]):
            raise ValueError("DemoReplay.batch takes the demonstrations' leaves first")
        k, n_envs = int(demo.sum()), self.buffer.n_envs
        agent = torch.from_numpy(flat[k:] - self.n_demo)
        parts = [(self.demos, torch.from_numpy(flat[:k]), torch.zeros(k, dtype=torch.int64, device="cpu")),
                 (self.buffer, agent // n_envs, agent % n_envs)]
        parts = [part for part in parts if len(part[1])]
        return DemoBatch(cat_batches([buf.batch(row, env) for buf, row, env in parts]),
                         cat_batches([buf.batch(row, env, n_step, gamma) for buf, row, env in parts]),
                         torch.as_tensor(demo, dtype=torch.float32, device="cpu"))

    def update_priorities(self, flat: np.ndarray, td_error: np.ndarray) -> None:
        """p = |delta| + eps_a for the agent's transitions, |delta| + eps_d for the demonstrations."""
        self.sampler.update(flat, np.abs(td_error) + np.where(flat < self.n_demo, self.bonus, 0.0))

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "priorities": self.sampler.state_dict(),
                "n_demo": self.n_demo, "demo_digest": self.digest}

    def load_state_dict(self, state: dict) -> None:
        if state.get("demo_digest") != self.digest:
            raise CheckpointError(f"the saved replay buffer was made with other demonstrations ({state.get('n_demo')} "
                                  f"transitions) than the dataset read now ({self.n_demo}); load it with the dataset "
                                  "it was trained on (--set dataset=...)")
        self.buffer.load_state_dict(state["buffer"])
        self.sampler.load_state_dict(state["priorities"])


def large_margin_loss(q: torch.Tensor, expert_action: torch.Tensor, margin: float) -> torch.Tensor:
    """J_E per sample (B,): max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E), l = margin for a != a_E and 0
    for a_E (Hester et al.; Piot et al. 2014). q (B, |A|), expert_action (B,)."""
    a_e = expert_action.long().unsqueeze(1)  # (B, 1)
    loss_margin = torch.full_like(q, margin).scatter(1, a_e, 0.0)
    return (q + loss_margin).max(1).values - q.gather(1, a_e).squeeze(1)


def dqfd_loss(q_net, q_target, atoms: torch.Tensor | None, batch: DemoBatch, weights: torch.Tensor | None,
              c: DQfDConfig) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(J(Q), the 1-step TD error (B,) for the priorities, metric tensors), where
    J(Q) = J_DQ + lambda1 J_n + lambda2 J_E + lambda3 J_L2 (Hester et al.), the first three
    importance-weighted per sample (J_E zero on the agent's transitions)."""
    out = q_net(batch.one_step.obs)  # one pass: every term reads Q(s, .)
    one = dqn_target(q_net, q_target, atoms, batch.one_step, c.gamma, c.double_q)
    n = dqn_target(q_net, q_target, atoms, batch.n_step, c.gamma, c.double_q)
    j_dq, td_error, stats = dqn_loss(q_net, atoms, batch.one_step, one, weights, out=out)
    j_n, _, _ = dqn_loss(q_net, atoms, batch.n_step, n, weights, out=out)
    q = out if atoms is None else (out.softmax(2) * atoms).sum(2)  # Q(s, .) (B, |A|)
    j_e = large_margin_loss(q, batch.one_step.actions, c.margin) * batch.is_demo
    j_e = j_e.mean() if weights is None else (weights * j_e).mean()
    j_l2 = sum(p.square().sum() for p in q_net.parameters())
    loss = j_dq + c.n_step_coef * j_n + c.supervised_coef * j_e + c.l2_coef * j_l2
    return loss, td_error, {"loss": loss.detach(), "j_dq": j_dq.detach(), "j_n": j_n.detach(), "j_e": j_e.detach(),
                            "j_l2": j_l2.detach(), "q_mean": stats["q_mean"], "demo_fraction": batch.is_demo.mean()}


class DQfD(DQN):
    """DQN pre-trained on demonstrations, which stay in its replay, with a large-margin loss on them."""

    algo = "dqfd"
    Config = DQfDConfig

    def setup(self) -> None:
        super().setup()  # Q, Q', optimizer, acting (Discrete actions checked), the agent's buffer
        c = self.config
        self.replay = DemoReplay(dataset_for(self, c.dataset), self.replay.buffer, self.envs.observation_space,
                                 self.envs.action_space, c.prioritized_replay_alpha, c.prioritized_replay_eps,
                                 c.prioritized_replay_demo_eps)
        self.counters.pretrained = 0  # pre-training gradient steps taken

    def train_iteration(self) -> dict[str, float]:
        pretrain = self.pretrain() if self.counters.pretrained < self.config.pretrain_steps else {}
        return {**pretrain, **super().train_iteration()}

    def pretrain(self) -> dict[str, float]:
        """The pre-training phase (Hester et al.): gradient steps on the demonstrations
        alone (the agent's part of the replay is still empty), Q' <- Q every
        pretrain_target_update_interval steps and at the end. Its last step's metrics, as pretrain_*."""
        c = self.config
        while self.counters.pretrained < c.pretrain_steps:
            self.counters.pretrained += 1
            last = self.counters.pretrained == c.pretrain_steps
            metrics = self.update(*self.sample(), report=last)
            if last or self.counters.pretrained % c.pretrain_target_update_interval == 0:
                polyak_update(*self.target_pairs, c.tau)
        return {f"pretrain_{name}": value for name, value in metrics.items()}

    def gradient_round(self, n: int) -> dict[str, float]:
        """n gradient steps, each on a minibatch drawn after the previous step's priorities."""
        for i in range(n):
            metrics = self.update(*self.sample(), report=i == n - 1)
        return metrics

    def sample(self) -> tuple[DemoBatch, torch.Tensor, np.ndarray]:
        c = self.config
        beta = c.prioritized_replay_beta0 + self.progress * (1.0 - c.prioritized_replay_beta0)
        batch, weights, flat = self.replay.sample(c.batch_size, beta, self.rng, c.n_step, c.gamma)
        return batch.to(self.device), weights.to(self.device), flat

    def update(self, batch: DemoBatch, weights: torch.Tensor, slots: np.ndarray, report: bool = True) -> dict[str, float]:
        """One gradient step on J(Q); the minibatch's priorities from its 1-step TD errors."""
        if self.config.noisy:  # fresh noise for every step's passes (as DQN)
            self.q_net.reset_noise()
            self.q_target.reset_noise()
        loss, td_error, stats = dqfd_loss(self.q_net, self.q_target, self.atoms, batch, weights, self.config)
        self.step(loss)
        self.replay.update_priorities(slots, td_error.cpu().numpy())
        return {name: value.item() for name, value in stats.items()} if report else {}


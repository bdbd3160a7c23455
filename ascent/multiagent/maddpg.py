"""Multi-agent deep deterministic policy gradient: MADDPG (Lowe et al. 2017, "Multi-Agent Actor-Critic
for Mixed Cooperative-Competitive Environments", arXiv:1706.02275), and independent DDPG, its baseline,
as a switch (centralized_critic=false). On PettingZoo parallel envs, cooperative or competitive:
`--env mpe2:simple_adversary_v3`, `mpe2:simple_spread_v3`, `mpe2:simple_tag_v3`
(`mpe2:simple_adversary_v3(continuous_actions=True)` for Box actions).

Every agent i has its own actor mu_i(o_i) and its own critic, no parameter sharing: the agents may see
different things and play different roles. Centralized training, decentralized execution: critic i
sees every agent's observation and action, Q_i(x, a_1, ..., a_N) with x = (o_1, ..., o_N); actor i
only its own observation. On a minibatch of joint transitions (x, a_1..a_N, r_1..r_N, x'):

  critic (eq. 6)   L(theta_i) = E[(Q_i(x, a_1..a_N) - y_i)^2],
                   y_i = r_i + gamma (1 - terminated) Q'_i(x', a'_1..a'_N)|a'_j = mu'_j(o'_j)
  actor (eq. 5)    grad J(theta_i) = E[grad mu_i(o_i) grad_{a_i} Q_i(x, a_1..a_N)|a_i = mu_i(o_i)],
                   the other agents' actions a_j (j != i) those of the replay
  targets          theta'_i <- (1 - tau) theta'_i + tau theta_i (soft updates, after every gradient step)

Independent DDPG (centralized_critic=false): Q_i(o_i, a_i), the same update with each critic blind to
the other agents (the paper's DDPG baseline: each learns as if the others were part of the env).

Actions. Box: a = tanh(actor(o)) in [-1, 1]^d, mapped onto the env's bounds; exploration adds Gaussian
noise (action_noise_std) clipped to the box. Discrete: the actor's outputs are logits, relaxed with the
Gumbel-softmax (Jang et al. 2017) as in the paper's discrete MPE code, here in its straight-through
form: forward the one-hot of argmax(logits + g), g ~ Gumbel(0, 1) (a sample of softmax(logits), which
is also the behaviour policy's exploration), backward the gradient of softmax((logits + g) / T). (The
paper's code feeds the relaxed vector itself to an MPE that took continuous forces; PettingZoo's takes
an integer.) So every action a critic sees is one-hot: the replay's, the actors'; the target actors
play the one-hot of their argmax, a deterministic mu'. As in the paper's code the actor loss adds
actor_reg * mean(pre-activation^2), which keeps logits and tanh's input from growing without bound.

Schedule as in the paper's code: acting with the current actors from the first step, the first update
once learning_starts env steps are stored (its batch_size x max episode length), then one gradient step
for every agent every train_freq env steps (batch 1024, tau 0.01, Adam 1e-2, gradient norm 0.5; gamma
0.95 in the MPE preset), all agents on one minibatch. Truncation (MPE's max_cycles) bootstraps from
the final observation. Observations are padded to the longest in the replay
(ascent.buffers.joint_replay) and cut back to each agent's own size for its networks.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from ascent.buffers.joint_replay import JointReplay
from ascent.core.agent import Agent, Counters
from ascent.core.config import NetworkConfig, param
from ascent.envs.multiagent import (MultiAgentVecEnv, evaluate_team, flatten_observation, team_env,
                                    make_parallel_env, team_metrics)
from ascent.errors import ConfigError, EnvError
from ascent.nets.actors import ActionScale
from ascent.nets.layers import MLP, numpy_linear_stack
from ascent.nets.optim import OptimizerStep, polyak_update

RECENT = 100  # episodes the team metrics average over


@dataclass
class MADDPGConfig(NetworkConfig):
    net_arch: tuple = param((64, 64), "hidden layer widths of every agent's actor and critic")
    activation: str = param("relu")
    ortho_init: bool = param(False, "orthogonal initialization (false: torch's default, close to the paper's Glorot)")
    centralized_critic: bool = param(True, "critic i sees all agents' observations and actions (MADDPG); false: its "
                                     "own only (independent DDPG, the paper's baseline)")
    learning_rate: float = param(1e-2, "Adam step size of the actors", range=(0.0, math.inf), low_open=True)
    critic_learning_rate: float = param(1e-2, "Adam step size of the critics", range=(0.0, math.inf), low_open=True)
    tau: float = param(0.01, "soft target update coefficient", range=(0.0, 1.0), low_open=True)
    buffer_size: int = param(1_000_000, "joint transitions kept", positive=True)
    batch_size: int = param(1024, "joint transitions per gradient step", positive=True)
    learning_starts: int = param(25_600, "env steps stored before the first update (the paper's code: batch "
                                 "size x episode length)", nonnegative=True)
    train_freq: int = param(100, "env steps between gradient steps (one for every agent)", positive=True)
    gumbel_temperature: float = param(1.0, "temperature of the Gumbel-softmax relaxation (Discrete actions)",
                                      range=(0.0, math.inf), low_open=True)
    action_noise_std: float = param(0.1, "std of the Gaussian exploration noise on unit-box actions (Box actions)",
                                    range=(0.0, math.inf))
    actor_reg: float = param(1e-3, "weight of mean(pre-activation^2) in the actor loss", range=(0.0, math.inf))
    max_grad_norm: float = param(0.5, "gradient-norm clip of each network's step", range=(0.0, math.inf), low_open=True)
    save_replay_buffer: bool = param(True, "write the replay beside every checkpoint (a resumed run keeps its experience)")
    log_interval: int = param(1000, "iterations per row of metrics")

    def validate(self) -> None:
        super().validate()
        if self.normalize_obs:
            raise ConfigError("normalize_obs is not supported by maddpg; leave it false")
        if self.normalize_reward:
            raise ConfigError("normalize_reward is not supported by maddpg; leave it false")


def gumbel_softmax(logits: torch.Tensor, temperature: float, gumbel: torch.Tensor | None = None) -> torch.Tensor:
    """Straight-through Gumbel-softmax: the one-hot of argmax(logits + g) forward, the gradient of
    softmax((logits + g) / temperature) backward; g ~ Gumbel(0, 1) unless given (logits' shape)."""
    if gumbel is None:
        uniform = torch.rand_like(logits).clamp_(1e-20, 1.0 - 1e-7)  # (0, 1): both logs finite
        gumbel = -torch.log(-torch.log(uniform))
    soft = torch.softmax((logits + gumbel) / temperature, dim=-1)
    hard = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


class MADDPG(Agent):
    """One actor and one critic per agent; the critics centralized, or not (module docstring)."""

    algo = "maddpg"
    Config = MADDPGConfig
    curve_metric = "team_return"

    def setup(self) -> None:
        c = self.config
        spec, spaces = self.env_id, f"observations {self.envs.observation_space}, actions {self.envs.action_space}"
        self.team = team_env(self.algo, spec, spaces,
                             lambda spec: MultiAgentVecEnv(lambda: make_parallel_env(spec), c.n_envs, global_state=False))
        team, N = self.team, self.team.n_agents
        if N < 2:
            raise EnvError(f"{self.algo} trains several agents: {spec} has one; use ddpg or td3 on it")
        spaces = dict(zip(team.agents, team.action_spaces))
        self.discrete = [isinstance(s, gym.spaces.Discrete) for s in team.action_spaces]
        if not all(self.discrete) and not all(isinstance(s, gym.spaces.Box) for s in team.action_spaces):
            raise EnvError(f"{self.algo} needs the agents' actions all Discrete or all Box; {spec}'s agents have {spaces}")
        self.scales = [None if d else ActionScale(s, self.algo) for d, s in zip(self.discrete, team.action_spaces)]
        self.obs_dims = [int(s.n) if isinstance(s, gym.spaces.Discrete) else int(np.prod(s.shape))
                         for s in team.observation_spaces]  # (Discrete observations: one-hot)
        self.act_dims = [int(s.n) if d else sc.dim for d, s, sc in zip(self.discrete, team.action_spaces, self.scales)]
        self.seen = [list(range(N)) if c.centralized_critic else [i] for i in range(N)]  # whose (o_j, a_j) critic i reads
        self.actors = torch.nn.ModuleList(MLP(d, c.net_arch, k, c.activation, init=c.ortho_init)
                                          for d, k in zip(self.obs_dims, self.act_dims))
        self.critics = torch.nn.ModuleList(
            MLP(sum(self.obs_dims[j] + self.act_dims[j] for j in self.seen[i]), c.net_arch, 1, c.activation,
                init=c.ortho_init) for i in range(N))
        self.actor_targets = copy.deepcopy(self.actors).requires_grad_(False)
        self.critic_targets = copy.deepcopy(self.critics).requires_grad_(False)
        # One optimizer per network: agent i's actor loss steps actor i only, its critic loss critic i only.
        self.actor_steps = [OptimizerStep(a, c.learning_rate, max_grad_norm=c.max_grad_norm) for a in self.actors]
        self.critic_steps = [OptimizerStep(q, c.critic_learning_rate, max_grad_norm=c.max_grad_norm) for q in self.critics]
        self.target_pairs = ([*self.actor_targets.parameters(), *self.critic_targets.parameters()],
                             [*self.actors.parameters(), *self.critics.parameters()])
        self.fast_actors = [numpy_linear_stack(a.layers, c.activation) for a in self.actors]  # (None off the CPU)
        self.replay = JointReplay(c.buffer_size, N, team.obs_dim, 0, action_dim=max(self.act_dims), agent_rewards=True)
        self.save_replay = c.save_replay_buffer
        self.team_obs, _ = team.reset(seed=self.seed)
        # Gradient steps, the last one's losses (critic, actor) x agent, the last RECENT episodes' returns.
        self.counters = Counters(updates=0, losses=np.zeros((2, N)), recent=np.zeros((RECENT, N)), episodes=0)
        self.recent_metrics: dict[str, float] = {}

    def modules(self) -> dict:
        names = self.team.agents
        return {"actors": self.actors, "critics": self.critics, "actor_targets": self.actor_targets,
                "critic_targets": self.critic_targets, "counters": self.counters,
                **{f"actor_optimizer_{a}": s.optimizer for a, s in zip(names, self.actor_steps)},
                **{f"critic_optimizer_{a}": s.optimizer for a, s in zip(names, self.critic_steps)}}

    # ---- acting -------------------------------------------------------------------------------------
    def actor_outputs(self, i: int, obs: np.ndarray) -> np.ndarray:
        """Actor i's logits or pre-tanh outputs on its observations (B, obs_dim_i)."""
        if self.fast_actors[i] is not None:
            return self.fast_actors[i](obs)
        with torch.no_grad():
            return self.actors[i](torch.as_tensor(obs, dtype=torch.float32, device=self.device)).cpu().numpy()

    def agent_actions(self, i: int, obs: np.ndarray, explore: bool) -> tuple[np.ndarray, np.ndarray]:
        """(env actions, the one-hot or unit-box actions the critics see) of agent i: a Gumbel-max sample
        or Gaussian noise where `explore`, the argmax or mu(o) otherwise."""
        out = self.actor_outputs(i, obs)
        if self.discrete[i]:
            if explore:  # argmax(logits + g), g ~ Gumbel(0, 1): a draw from softmax(logits)
                out = out - np.log(-np.log(self.rng.uniform(1e-20, 1.0, out.shape)))
            choice = out.argmax(-1)
            return choice + int(self.team.action_spaces[i].start), np.eye(out.shape[-1], dtype=np.float32)[choice]
        unit = np.tanh(out)
        if explore:
            unit = np.clip(unit + self.config.action_noise_std * self.rng.standard_normal(unit.shape), -1.0, 1.0)
        unit = unit.astype(np.float32)
        return self.scales[i].to_env(unit).reshape(len(obs), -1), unit

    def team_actions(self, obs: np.ndarray, explore: bool) -> tuple[np.ndarray, np.ndarray]:
        """Team observations (n, N, obs_dim) -> env actions (n, N) (Box: (n, N, d)) and stored actions (n, N, K)."""
        n, N = len(obs), self.team.n_agents
        stored = np.zeros((n, N, max(self.act_dims)), np.float32)
        env = np.zeros((n, N), np.int64) if self.discrete[0] else np.zeros((n, N, max(self.act_dims)), np.float32)
        for i in range(N):
            env_i, stored_i = self.agent_actions(i, obs[:, i, :self.obs_dims[i]], explore)
            stored[:, i, :self.act_dims[i]] = stored_i
            if self.discrete[i]:
                env[:, i] = env_i
            else:
                env[:, i, :env_i.shape[1]] = env_i
        return env, stored

    def act_batch(self, obs, deterministic: bool) -> np.ndarray:
        """Agent 0's actions on its raw observations (the base's env is agent 0's seat)."""
        space = self.team.observation_spaces[0]
        x = np.stack([flatten_observation(space, o) for o in obs])
        env, _ = self.agent_actions(0, x, explore=not deterministic)
        return env if self.discrete[0] else env.reshape(len(obs), *self.team.action_spaces[0].shape)

    # ---- learning -----------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        env_actions, actions = self.team_actions(self.team_obs, explore=True)
        out = self.team.step(env_actions)
        self.replay.add(self.team_obs, None, actions, out["rewards"], out["final_obs"], None, out["terminated"])
        self.team_obs = out["obs"]
        self.num_steps += c.n_envs
        if out["episodes"]:
            self.record_episodes([(float(r.mean()), n) for r, n in out["episodes"]])
            for r, _ in out["episodes"]:
                self.counters.recent[self.counters.episodes % RECENT] = r
                self.counters.episodes += 1
        due = self.num_steps // c.train_freq - (self.num_steps - c.n_envs) // c.train_freq  # (every train_freq steps)
        if self.num_steps >= c.learning_starts and len(self.replay) >= c.batch_size:
            for _ in range(due):
                self.update(self.replay.sample(c.batch_size, self.rng, self.device))
        if self.counters.episodes and (out["episodes"] or not self.recent_metrics):  # (made anew when they change)
            recent = self.counters.recent[:min(self.counters.episodes, RECENT)]
            self.recent_metrics = team_metrics(self.team.agents, [(r, 0) for r in recent])
        metrics = dict(self.recent_metrics)  # the team return per agent and each agent's, last RECENT episodes
        if self.counters.updates:
            for kind, values in zip(("critic_loss", "actor_loss"), self.counters.losses):
                metrics.update({f"{kind}_{a}": float(v) for a, v in zip(self.team.agents, values)})
        return metrics

    def split(self, x: torch.Tensor, dims: list[int]) -> list[torch.Tensor]:
        """Padded (B, N, D) -> each agent's own (B, dims[i])."""
        return [x[:, i, :d] for i, d in enumerate(dims)]

    def q(self, i: int, obs: list[torch.Tensor], actions: list[torch.Tensor], target: bool = False) -> torch.Tensor:
        """Q_i(x, a_1..a_N) (independent: Q_i(o_i, a_i)), (B,)."""
        seen = self.seen[i]
        critic = (self.critic_targets if target else self.critics)[i]
        return critic(torch.cat([obs[j] for j in seen] + [actions[j] for j in seen], dim=1)).squeeze(1)

    def target_actions(self, next_obs: list[torch.Tensor]) -> list[torch.Tensor]:
        """a'_j = mu'_j(o'_j): the target actors' one-hot argmax or tanh action."""
        with torch.no_grad():
            out = [actor(o) for actor, o in zip(self.actor_targets, next_obs)]
            return [F.one_hot(y.argmax(1), y.shape[1]).float() if d else torch.tanh(y) for y, d in zip(out, self.discrete)]

    def critic_target(self, i: int, batch: dict[str, torch.Tensor], next_obs, next_actions) -> torch.Tensor:
        """y_i = r_i + gamma (1 - terminated) Q'_i(x', a'_1..a'_N) (eq. 6)."""
        with torch.no_grad():
            q_next = self.q(i, next_obs, next_actions, target=True)
            return batch["reward"][:, i] + self.config.gamma * (1.0 - batch["terminated"]) * q_next

    def critic_loss(self, i: int, batch: dict[str, torch.Tensor], obs, actions, next_obs, next_actions) -> torch.Tensor:
        """E[(Q_i(x, a_1..a_N) - y_i)^2] (eq. 6), the actions those of the replay."""
        return (self.q(i, obs, actions) - self.critic_target(i, batch, next_obs, next_actions)).square().mean()

    def actor_loss(self, i: int, obs: list[torch.Tensor], actions: list[torch.Tensor]) -> torch.Tensor:
        """-Q_i(x, a_1..mu_i(o_i)..a_N) + actor_reg * mean(pre-activation^2): eq. 5's gradient by autodiff."""
        pre = self.actors[i](obs[i])
        own = gumbel_softmax(pre, self.config.gumbel_temperature) if self.discrete[i] else torch.tanh(pre)
        joint = [own if j == i else a for j, a in enumerate(actions)]
        return -self.q(i, obs, joint).mean() + self.config.actor_reg * pre.square().mean()

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        """One gradient step of every agent's critic (eq. 6) and actor (eq. 5), then the soft target update."""
        obs, next_obs = self.split(batch["obs"], self.obs_dims), self.split(batch["next_obs"], self.obs_dims)
        actions = self.split(batch["actions"], self.act_dims)
        next_actions = self.target_actions(next_obs)
        for i in range(self.team.n_agents):
            critic_loss = self.critic_loss(i, batch, obs, actions, next_obs, next_actions)
            self.critic_steps[i](critic_loss)
            actor_loss = self.actor_loss(i, obs, actions)
            self.actor_steps[i](actor_loss)  # (backward into actor i's parameters only)
            self.counters.losses[:, i] = critic_loss.item(), actor_loss.item()
        polyak_update(*self.target_pairs, self.config.tau)
        self.counters.updates += 1

    # ---- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, episodes: int = 10, deterministic: bool = True, env=None, seed: int | None = None,
                 video_dir=None) -> dict:
        """`episodes` whole episodes of every agent acting with its actor (greedy where `deterministic`,
        exploring otherwise) on one copy of the env (`env`: another id of the same agents); mean_return
        is the team return per agent, `metrics` each agent's (eval_return_AGENT)."""
        def actions_of(obs: np.ndarray, state: np.ndarray) -> np.ndarray:
            with self.on_device():
                return self.team_actions(obs, explore=not deterministic)[0]

        return evaluate_team(self.env_id if env is None else env, episodes, self.seed + 10_000 if seed is None else seed,
                             actions_of, self.algo, video_dir)

"""Value decomposition for cooperative teams: VDN (Sunehag et al. 2018) and QMIX (Rashid et al. 2018).
On PettingZoo parallel envs with Discrete actions (`--env two_step`, `--env mpe2:simple_spread_v3`).

Every agent a has Q_a(o_a, u_a), all from one network (parameter sharing; its input is the agent's
observation and its one-hot id). The team's value is a function of them,

  VDN    Q_tot(s, u) = sum_a Q_a(o_a, u_a)
  QMIX   Q_tot(s, u) = W2(s)^T elu(W1(s)^T q + b1(s)) + b2(s),   q = (Q_1(o_1, u_1), ..., Q_n(o_n, u_n)),
         W1 = |hyper_w1(s)| (n x embed), W2 = |hyper_w2(s)| (embed x 1), b1 = hyper_b1(s), b2 = V(s) (two layers):
         hypernetworks of the global state whose weights are made non-negative, so dQ_tot/dQ_a >= 0
         (monotonic): each agent's argmax of its own Q_a is the team's argmax (decentralised execution),

and one TD error on the team reward r (the mean of the agents' rewards) trains it all:

  L = (r + gamma (1 - terminated) Q_tot^-(s', u') - Q_tot(s, u))^2,   u'_a = argmax Q_a(o'_a, .)
  (the online network picks u' and the target network Q^- evaluates it where double_q; the target alone otherwise).

Behaviour: epsilon-greedy per agent on its Q_a. Joint transitions in a replay (ascent.buffers.joint_replay);
the target network is a copy made every `target_update_interval` env steps. Agents' networks are
feed-forward over the current observation (the papers' GRU over the history is for a later
recurrent-policy issue): enough for fully observed games like two_step; on MPE it sees one frame.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ascent.algorithms.common.exploration import exploration_epsilon
from ascent.buffers.joint_replay import JointReplay
from ascent.core.agent import Agent, Counters
from ascent.core.config import NetworkConfig, param
from ascent.envs.multiagent import MultiAgentVecEnv, evaluate_team, flatten_observation, make_parallel_env, team_env
from ascent.errors import ConfigError, EnvError
from ascent.nets.layers import MLP
from ascent.nets.optim import OptimizerStep


@dataclass
class ValueDecompositionConfig(NetworkConfig):
    net_arch: tuple = param((64, 64), "hidden layer widths of the agents' shared Q network")
    activation: str = param("relu")
    learning_rate: float = param(5e-4, "Adam step size", range=(0.0, math.inf), low_open=True)
    buffer_size: int = param(50_000, "joint transitions kept", positive=True)
    batch_size: int = param(32, "joint transitions per update", positive=True)
    learning_starts: int = param(500, "env steps before the first update", nonnegative=True)
    train_freq: int = param(1, "env steps (per env) between updates", positive=True)
    target_update_interval: int = param(200, "env steps between copies of the target network", positive=True)
    exploration_fraction: float = param(0.5, "fraction of training over which epsilon decays linearly", range=(0.0, 1.0))
    exploration_initial_eps: float = param(1.0, "epsilon at the start", range=(0.0, 1.0))
    exploration_final_eps: float = param(0.05, "epsilon after the decay", range=(0.0, 1.0))
    double_q: bool = param(True, "the online network picks u', the target network evaluates it")
    max_grad_norm: float = param(10.0, "gradient-norm clip", range=(0.0, math.inf), low_open=True)
    mixing_embed: int = param(32, "QMIX: width of the mixing network's hidden layer", positive=True)
    hypernet_embed: int = param(64, "QMIX: hidden width of the hypernetworks", positive=True)
    save_replay_buffer: bool = param(True, "write the replay beside every checkpoint (a resumed run keeps its experience)")

    def validate(self) -> None:
        super().validate()
        if self.normalize_obs:
            raise ConfigError("normalize_obs is not supported by vdn/qmix; leave it false")
        if self.normalize_reward:
            raise ConfigError("normalize_reward is not supported by vdn/qmix; leave it false")


class AgentQ(torch.nn.Module):
    """Q_a(o_a, .) for every agent from one network: input (obs, one-hot agent id)."""

    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, net_arch, activation: str, ortho_init: bool):
        super().__init__()
        self.n_agents = n_agents
        self.net = MLP(obs_dim + n_agents, net_arch, n_actions, activation, init=ortho_init)
        self.register_buffer("ids", torch.eye(n_agents))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (B, n_agents, obs_dim) -> Q (B, n_agents, n_actions)."""
        ids = self.ids.expand(obs.shape[0], -1, -1)
        return self.net(torch.cat([obs, ids], dim=-1))


class SumMixer(torch.nn.Module):
    """VDN: Q_tot = sum_a Q_a."""

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return q.sum(dim=-1)


class QMixer(torch.nn.Module):
    """QMIX's monotonic mixing network, its weights from hypernetworks of the state."""

    def __init__(self, n_agents: int, state_dim: int, embed: int, hypernet_embed: int):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = torch.nn.Sequential(torch.nn.Linear(state_dim, hypernet_embed), torch.nn.ReLU(),
                                            torch.nn.Linear(hypernet_embed, n_agents * embed))
        self.hyper_w2 = torch.nn.Sequential(torch.nn.Linear(state_dim, hypernet_embed), torch.nn.ReLU(),
                                            torch.nn.Linear(hypernet_embed, embed))
        self.hyper_b1 = torch.nn.Linear(state_dim, embed)
        self.value = torch.nn.Sequential(torch.nn.Linear(state_dim, embed), torch.nn.ReLU(), torch.nn.Linear(embed, 1))

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q (B, n_agents), state (B, state_dim) -> Q_tot (B,)."""
        w1 = self.hyper_w1(state).abs().view(-1, self.n_agents, self.embed)
        b1 = self.hyper_b1(state).unsqueeze(1)
        hidden = F.elu(torch.bmm(q.unsqueeze(1), w1) + b1)  # (B, 1, embed)
        w2 = self.hyper_w2(state).abs().unsqueeze(2)  # (B, embed, 1)
        return (torch.bmm(hidden, w2).squeeze(2) + self.value(state)).squeeze(1)


class VDN(Agent):
    """Value-decomposition networks; QMIX differs in its mixer only."""

    algo = "vdn"
    Config = ValueDecompositionConfig

    def make_mixer(self, n_agents: int, state_dim: int) -> torch.nn.Module:
        return SumMixer()

    def setup(self) -> None:
        c = self.config
        spec, spaces = self.env_id, f"observations {self.envs.observation_space}, actions {self.envs.action_space}"
        self.team = team_env(self.algo, spec, spaces,
                             lambda spec: MultiAgentVecEnv(lambda: make_parallel_env(spec), c.n_envs))
        n_agents, self.n_actions = self.team.n_agents, self.team.same_discrete_actions(self.algo)
        if n_agents < 2:
            raise EnvError(f"{self.algo} decomposes a team's value: {spec} has one agent; use dqn")
        self.q_net = AgentQ(self.team.obs_dim, n_agents, self.n_actions, c.net_arch, c.activation, c.ortho_init)
        obs, state = self.team.reset(seed=self.seed)
        self.mixer = self.make_mixer(n_agents, state.shape[1])
        self.target_q, self.target_mixer = copy.deepcopy(self.q_net), copy.deepcopy(self.mixer)
        self.step = OptimizerStep(torch.nn.ModuleList([self.q_net, self.mixer]), c.learning_rate,
                                  max_grad_norm=c.max_grad_norm)
        self.replay = JointReplay(c.buffer_size, n_agents, self.team.obs_dim, state.shape[1])
        self.save_replay = c.save_replay_buffer
        self.team_obs, self.team_state = obs, state
        self.counters = Counters(next_target_update=c.target_update_interval, updates=0)

    def modules(self) -> dict:
        return {"q_net": self.q_net, "mixer": self.mixer, "target_q": self.target_q, "target_mixer": self.target_mixer,
                "optimizer": self.step.optimizer, "counters": self.counters}

    # ---- acting -------------------------------------------------------------------------------------
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.q_net(torch.as_tensor(obs, dtype=torch.float32, device=self.device)).argmax(-1).cpu().numpy()

    def team_actions(self, obs: np.ndarray, eps: float) -> np.ndarray:
        """Epsilon-greedy for each agent on its own Q_a: obs (n_envs, n_agents, obs_dim)."""
        actions = self.greedy(obs)
        explore = self.rng.random(actions.shape) < eps
        return np.where(explore, self.rng.integers(self.n_actions, size=actions.shape), actions)

    def act_batch(self, obs, deterministic: bool) -> np.ndarray:
        """Agent 0's actions on its raw observations (the base's env is agent 0's seat)."""
        space = self.team.observation_spaces[0]
        x = np.zeros((len(obs), self.team.n_agents, self.team.obs_dim), np.float32)
        for k, o in enumerate(obs):
            flat = flatten_observation(space, o)
            x[k, 0, :len(flat)] = flat
        return self.greedy(x)[:, 0]

    # ---- learning -----------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        eps = exploration_epsilon(c, self.progress)
        actions = self.team_actions(self.team_obs, eps)
        out = self.team.step(actions)
        self.replay.add(self.team_obs, self.team_state, actions, out["rewards"].mean(axis=1), out["final_obs"],
                        out["final_state"], out["terminated"])
        self.team_obs, self.team_state = out["obs"], out["state"]
        self.num_steps += c.n_envs
        metrics: dict[str, float] = {"epsilon": eps}
        if out["episodes"]:
            self.record_episodes([(float(r.mean()), n) for r, n in out["episodes"]])
            per_agent = np.mean([r for r, _ in out["episodes"]], axis=0)
            metrics["team_return"] = float(per_agent.mean())
            metrics.update({f"return_{a}": float(v) for a, v in zip(self.team.agents, per_agent)})
        if self.num_steps >= c.learning_starts and self.iteration % c.train_freq == 0 and len(self.replay) >= c.batch_size:
            metrics.update(self.update(self.replay.sample(c.batch_size, self.rng, self.device)))
        if self.num_steps >= self.counters.next_target_update:
            self.target_q.load_state_dict(self.q_net.state_dict())
            self.target_mixer.load_state_dict(self.mixer.state_dict())
            self.counters.next_target_update = (self.num_steps // c.target_update_interval + 1) * c.target_update_interval
        return metrics

    def td_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """r + gamma (1 - terminated) Q_tot^-(s', u')."""
        with torch.no_grad():
            target_q = self.target_q(batch["next_obs"])
            chooser = self.q_net(batch["next_obs"]) if self.config.double_q else target_q
            u_next = chooser.argmax(-1, keepdim=True)
            q_tot_next = self.target_mixer(target_q.gather(-1, u_next).squeeze(-1), batch["next_state"])
            return batch["reward"] + self.config.gamma * (1.0 - batch["terminated"]) * q_tot_next

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        q_taken = self.q_net(batch["obs"]).gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
        q_tot = self.mixer(q_taken, batch["state"])
        loss = F.mse_loss(q_tot, self.td_target(batch))
        self.step(loss)
        self.counters.updates += 1
        return {"loss": loss.item(), "q_tot": q_tot.mean().item()}

    # ---- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, episodes: int = 10, deterministic: bool = True, env=None, seed: int | None = None,
                 video_dir=None) -> dict:
        """`episodes` episodes of the team acting greedily (epsilon 0; `deterministic=False`: the final
        epsilon); mean_return is the team return (the agents' mean)."""
        eps = 0.0 if deterministic else self.config.exploration_final_eps
        return evaluate_team(self.env_id if env is None else env, episodes, self.seed + 10_000 if seed is None else seed,
                             lambda obs, state: self.team_actions(obs, eps), self.algo, video_dir)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Every agent's Q_a(o_a, .) for team observations (B, n_agents, obs_dim)."""
        with torch.no_grad():
            return self.q_net(torch.as_tensor(obs, dtype=torch.float32, device=self.device)).cpu().numpy()


class QMIX(VDN):
    """QMIX: VDN with the monotonic mixing network of the state."""

    algo = "qmix"

    def make_mixer(self, n_agents: int, state_dim: int) -> torch.nn.Module:
        return QMixer(n_agents, state_dim, self.config.mixing_embed, self.config.hypernet_embed)

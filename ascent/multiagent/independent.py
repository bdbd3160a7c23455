"""Independent learners with parameter sharing: IPPO (de Witt et al. 2020) and IDQN (Tampuu et al. 2017)
on PettingZoo parallel envs (`--env mpe2:simple_spread_v3`, `--env two_step`, `--env soccer`).

Each agent learns as if the others were part of its env: its own PPO or DQN objective on its own
observation, unchanged (ascent.algorithms.ppo, ascent.algorithms.dqn: nothing forked). What makes
them a team's learners is one network shared by all agents (Gupta et al. 2017's parameter sharing):
the agents' transitions are pooled into one batch, and each agent's row carries its one-hot id, so
the shared policy can still act differently per agent. The env is ascent.envs.multiagent's
`AgentRowsVecEnv`: `n_envs` copies of the game, one row per agent of every copy.

`--steps` counts env steps of the game (one step of every agent), as every algorithm's env steps;
a rollout of n_steps therefore holds n_steps x n_envs x n_agents transitions. Metrics add the
team's return per agent (`team_return`, EPyMARL's convention: the agents' returns averaged) and each
agent's (`return_AGENT`); `episode_return` is the same mean over the agents' rows. Evaluation plays
whole episodes of the team on one copy (`evaluate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ascent.algorithms.dqn import DQN
from ascent.algorithms.ppo import PPO, PPOConfig
from ascent.core.config import param
from ascent.envs.multiagent import AgentRowsVecEnv, evaluate_team, team_env, team_metrics, team_rows
from ascent.envs.vector import VecEnv


@dataclass
class TeamPPOConfig(PPOConfig):
    """PPO's hyperparameters at the MAPPO paper's values for MPE (Yu et al. 2022, appendix), for IPPO and MAPPO."""

    normalize_value: bool = param(True, "the critic learns standardized returns (running mean and std: MAPPO's "
                                  "value normalization)")
    learning_rate: float | str = param(7e-4, "Adam step size; 'lin_X' decays linearly from X to 0", schedule=True)
    n_envs: int = param(32, "copies of the game stepped together (the paper: 128 rollout threads on MPE)", positive=True)
    n_steps: int = param(25, "steps per copy per rollout (batch = n_steps * n_envs * n_agents rows)", positive=True)
    batch_size: int = param(800, "minibatch size in rows (the paper: the whole rollout as one on MPE)", positive=True)
    clip_range_vf: float | None = param(0.2, "clip the value update around the old value (the paper clips it)",
                                        range=(0.0, math.inf), low_open=True)
    ent_coef: float = param(0.01, "entropy bonus coefficient", range=(0.0, math.inf))
    max_grad_norm: float = param(10.0, "global gradient-norm clip (the paper: 10)", range=(0.0, math.inf), low_open=True)


class SharedPolicyTeam:
    """What a single-agent algorithm needs to train one policy for a team (put before it in the bases:
    `class IPPO(SharedPolicyTeam, PPO)`): the team's rows as its env, the team's metrics, the team's
    evaluation. `global_state`: every row also carries the copy's global state (MAPPO's critic)."""

    global_state = False
    algo: str
    config: Any
    envs: VecEnv

    def setup(self) -> None:
        self.envs.close()  # (the base made the first seat's env; the rows replace it)
        spaces = f"observations {self.envs.observation_space}, actions {self.envs.action_space}"
        self.envs = VecEnv(team_env(self.algo, self.env_id, spaces, lambda spec: AgentRowsVecEnv(
            spec, self.config.n_envs, self.global_state, self.algo)))
        super().setup()

    @property
    def team(self) -> AgentRowsVecEnv:
        return self.envs.env

    def train_iteration(self) -> dict[str, float]:
        metrics = super().train_iteration()
        metrics.update(team_metrics(self.team.agents, self.team.pop_ended()))
        return metrics

    def evaluate(self, episodes: int = 10, deterministic: bool = True, env: Any = None, seed: int | None = None,
                 video_dir: Any = None) -> dict:
        """`episodes` whole episodes of the team, every agent acting with the shared policy (greedy where
        `deterministic`) on one copy of the env (`env`: another multi-agent env id of the same agents);
        mean_return is the team return per agent, `metrics` each agent's."""

        def actions_of(obs: np.ndarray, state: np.ndarray) -> np.ndarray:
            rows = team_rows(obs, state if self.global_state else None)
            with self.on_device():
                return self.act_batch(rows, deterministic).reshape(obs.shape[0], obs.shape[1])

        return evaluate_team(self.env_id if env is None else env, episodes, self.seed + 10_000 if seed is None else seed,
                             actions_of, self.algo, video_dir)


class IPPO(SharedPolicyTeam, PPO):
    """PPO on every agent's rows, one shared actor-critic (module docstring)."""

    algo = "ippo"
    Config = TeamPPOConfig


class IDQN(SharedPolicyTeam, DQN):
    """DQN on every agent's rows, one shared Q network and replay (module docstring)."""

    algo = "idqn"

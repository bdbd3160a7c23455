"""Multi-agent PPO with a centralized critic (MAPPO; Yu et al. 2022, "The Surprising Effectiveness of
PPO in Cooperative Multi-Agent Games") on PettingZoo parallel envs (`--env mpe2:simple_spread_v3`).

Centralized training, decentralized execution. Every agent a acts with the shared actor
pi_theta(u_a | o_a, id_a) on what it observes alone, as in IPPO; the critic, used only in training,
sees more: V_phi(o_a, id_a, s), the agent-specific global state of the paper's section 4 (the agent's
own observation and id, then the env's global state `state()`, or the agents' observations
concatenated where the env has none). The objective is PPO's clipped surrogate (eq. 7 of Schulman et
al. 2017, ascent.algorithms.ppo) on every agent's advantage

  A_a = GAE(lambda) of r_a + gamma V_phi(o'_a, id_a, s') - V_phi(o_a, id_a, s),

with the paper's implementation details as defaults:
- value normalization (its "ValueNorm", section 4.1): the critic regresses returns standardized by
  their running mean and std; its outputs are mapped back to the returns' scale for the advantages;
- the actor sees only its own features of a row (`actor_dim`), the critic the whole row;
- few epochs on large batches (no minibatch split on MPE), clipped value loss, entropy bonus, Adam 7e-4.

A rollout holds n_steps x n_envs x n_agents rows; one env step is one step of every agent
(ascent.multiagent.independent's docstring says how the team trains on rows and is evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass

from ascent.algorithms.ppo import PPO, PPOConfig
from ascent.core.config import param
from ascent.multiagent.independent import SharedPolicyTeam


@dataclass
class MAPPOConfig(PPOConfig):
    normalize_value: bool = param(True, "the critic learns standardized returns (running mean and std: MAPPO's "
                                  "value normalization)")
    learning_rate: float | str = param(7e-4, "Adam step size; 'lin_X' decays linearly from X to 0", schedule=True)
    n_envs: int = param(32, "copies of the game stepped together (the paper: 128 rollout threads on MPE)")
    n_steps: int = param(25, "steps per copy per rollout (batch = n_steps * n_envs * n_agents rows)", positive=True)
    batch_size: int = param(800, "minibatch size in rows (the paper: one minibatch on MPE)", positive=True)
    n_epochs: int = param(10, "passes over the rollout per iteration", positive=True)
    clip_range_vf: float | None = param(0.2, "clip the value update around the old value (the paper clips it)")
    ent_coef: float = param(0.01, "entropy bonus coefficient")
    max_grad_norm: float = param(10.0, "global gradient-norm clip (the paper: 10)")


class MAPPO(SharedPolicyTeam, PPO):
    """PPO with the shared actor on each agent's view and the critic on the agent-specific global state."""

    algo = "mappo"
    Config = MAPPOConfig
    global_state = True

    def policy_options(self) -> dict:
        return {"actor_dim": self.team.local_dim}  # (the actor reads a row's observation and id, not the state)

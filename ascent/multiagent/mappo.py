"""Multi-agent PPO with a centralized critic (MAPPO; Yu et al. 2022, "The Surprising Effectiveness of
PPO in Cooperative Multi-Agent Games") on PettingZoo parallel envs (`--env mpe2:simple_spread_v3`).

Centralized training, decentralized execution. Every agent a acts with the shared actor
pi_theta(u_a | o_a, id_a) on what it observes alone, as in IPPO; the critic, used only in training,
sees more: V_phi(o_a, id_a, s), the agent-specific global state of the paper's section 4 (the agent's
own observation and id, then the env's global state `state()`, or the agents' observations
concatenated where the env has none). The objective is PPO's clipped surrogate (eq. 7 of Schulman et
al. 2017, ascent.algorithms.ppo) on every agent's advantage

  A_a = GAE(lambda) of r_a + gamma V_phi(o'_a, id_a, s') - V_phi(o_a, id_a, s),

with the paper's implementation details as defaults (TeamPPOConfig, IPPO's too: the two differ in the
critic's input alone, as in the paper's comparison):
- value normalization (its "ValueNorm", section 4.1): the critic regresses returns standardized by
  their running mean and std; its outputs are mapped back to the returns' scale for the advantages;
- the actor sees only its own features of a row (`actor_dim`), the critic the whole row;
- few epochs on large minibatches, clipped value loss, entropy bonus, Adam 7e-4, gradient clip 10.

A rollout holds n_steps x n_envs x n_agents rows; one env step is one step of every agent
(ascent.multiagent.independent's docstring says how the team trains on rows and is evaluated).
"""

from __future__ import annotations

from ascent.algorithms.ppo import PPO
from ascent.multiagent.independent import SharedPolicyTeam, TeamPPOConfig


class MAPPO(SharedPolicyTeam, PPO):
    """PPO with the shared actor on each agent's view and the critic on the agent-specific global state."""

    algo = "mappo"
    Config = TeamPPOConfig
    global_state = True

    def policy_options(self) -> dict:
        return {"actor_dim": self.team.local_dim}  # (the actor reads a row's observation and id, not the state)

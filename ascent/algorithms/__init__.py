"""The registry of algorithms: CLI name -> class."""

from __future__ import annotations

from ascent.algorithms.a2c import A2C
from ascent.algorithms.ac import AC
from ascent.algorithms.dqn import DQN
from ascent.algorithms.offpolicy_pg import OffPolicyPG
from ascent.algorithms.ppo import PPO
from ascent.algorithms.reinforce import REINFORCE
from ascent.algorithms.sac import SAC
from ascent.algorithms.tabular import SARSA, QLearning
from ascent.algorithms.td3 import DDPG, TD3
from ascent.algorithms.trpo import NPG, TRPO
from ascent.errors import ConfigError, did_you_mean

ALGORITHMS = {cls.algo: cls for cls in (PPO, A2C, TRPO, NPG, REINFORCE, OffPolicyPG, AC, SAC, TD3, DDPG, QLearning, SARSA, DQN)}


def get_algorithm(name: str) -> type:
    """The algorithm class for a CLI name like 'ppo', or a ConfigError listing the choices."""
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown algorithm {name!r}{did_you_mean(name.lower(), ALGORITHMS)}; available: {', '.join(sorted(ALGORITHMS))}"
        ) from None

"""The registry of algorithms: CLI name -> class."""

from __future__ import annotations

from ascent.algorithms.a2c import A2C
from ascent.algorithms.offpolicy_pg import OffPolicyPG
from ascent.algorithms.ppo import PPO
from ascent.algorithms.reinforce import REINFORCE
from ascent.algorithms.trpo import NPG, TRPO
from ascent.errors import ConfigError, did_you_mean

ALGORITHMS = {cls.algo: cls for cls in (PPO, A2C, TRPO, NPG, REINFORCE, OffPolicyPG)}


def get_algorithm(name: str) -> type:
    """The algorithm class for a CLI name like 'ppo', or a ConfigError listing the choices."""
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown algorithm {name!r}{did_you_mean(name.lower(), ALGORITHMS)}; available: {', '.join(sorted(ALGORITHMS))}"
        ) from None

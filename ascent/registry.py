"""The registry of algorithms: one line per algorithm, its CLI name -> "module:Class".

An algorithm's module is imported the first time it is asked for, so `ascent --help`, `ascent
list` and the CLI's bad-input errors do not pay for torch or the other algorithms. Adding an
algorithm is adding its line here. `load(path)` restores any checkpoint by the algorithm name it
records; `PPO.load(path)` and its like stay bound to their class.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ascent.errors import ConfigError, did_you_mean

ALGORITHMS: dict[str, str] = {
    "ppo": "ascent.algorithms.ppo:PPO",
    "a2c": "ascent.algorithms.a2c:A2C",
    "trpo": "ascent.algorithms.trpo:TRPO",
    "npg": "ascent.algorithms.trpo:NPG",
    "reinforce": "ascent.algorithms.reinforce:REINFORCE",
    "offpg": "ascent.algorithms.offpolicy_pg:OffPolicyPG",
    "ac": "ascent.algorithms.ac:AC",
    "sac": "ascent.algorithms.sac:SAC",
    "td3": "ascent.algorithms.td3:TD3",
    "ddpg": "ascent.algorithms.td3:DDPG",
    "dqn": "ascent.algorithms.dqn:DQN",
    "qlearning": "ascent.algorithms.tabular:QLearning",
    "sarsa": "ascent.algorithms.tabular:SARSA",
    "impala": "ascent.distributed.impala:IMPALA",
    "a3c": "ascent.distributed.a3c:A3C",
    "dppo": "ascent.distributed.dppo:DPPO",
    "apex": "ascent.distributed.apex:ApeXDQN",
    "apex-dpg": "ascent.distributed.apex:ApeXDPG",
    "bc": "ascent.imitation.bc:BC",
    "dagger": "ascent.imitation.dagger:DAgger",
    "gail": "ascent.imitation.gail:GAIL",
    "airl": "ascent.imitation.airl:AIRL",
    "dqfd": "ascent.imitation.dqfd:DQfD",
    "alphazero": "ascent.search.alphazero:AlphaZero",
    "minimaxq": "ascent.multiagent.markov_q:MinimaxQ",
    "nashq": "ascent.multiagent.markov_q:NashQ",
    "iql": "ascent.multiagent.markov_q:IndependentQ",
    "vdn": "ascent.multiagent.value_decomposition:VDN",
    "qmix": "ascent.multiagent.value_decomposition:QMIX",
    "ippo": "ascent.multiagent.independent:IPPO",
    "idqn": "ascent.multiagent.independent:IDQN",
    "mappo": "ascent.multiagent.mappo:MAPPO",
    "selfplay": "ascent.multiagent.selfplay:SelfPlay",
    "maddpg": "ascent.multiagent.maddpg:MADDPG",
    "cem": "ascent.model_based.cem:CEM",
    "dynaq": "ascent.model_based.dyna:DynaQ",
    "pets": "ascent.model_based.pets:PETS",
    "mbpo": "ascent.model_based.mbpo:MBPO",
}


def class_path(name: str) -> tuple[str, str]:
    """(module, class name) registered for a CLI name, or a ConfigError listing the choices."""
    try:
        module, cls = ALGORITHMS[name.lower()].split(":")
    except KeyError:
        raise ConfigError(
            f"unknown algorithm {name!r}{did_you_mean(name.lower(), ALGORITHMS)}; available: {', '.join(sorted(ALGORITHMS))}"
        ) from None
    return module, cls


def get_algorithm(name: str) -> type:
    """The algorithm class for a CLI name like 'ppo' (its module imported now)."""
    module, cls = class_path(name)
    return getattr(importlib.import_module(module), cls)


def load(path: str | os.PathLike, env: Any = None, run_dir: str | os.PathLike | None = None, verbose: int = 1,
         device: str | None = None):
    """The agent saved in a checkpoint, whatever its algorithm (`ascent.load("model.pt")`; `device`
    replaces the one it was trained on, e.g. "cpu" for a GPU run on a machine without one)."""
    from ascent.core.checkpoint import load_checkpoint  # torch: only when a checkpoint is read

    algo = load_checkpoint(path).get("algo", "?")
    return get_algorithm(str(algo)).load(path, env=env, run_dir=run_dir, verbose=verbose, device=device)

"""Starting an agent from another run's policy (`init_from=RUN`, the book's 8.6: imitation as the
initialization of RL), shared by PPO and SAC.

The policy's weights are copied from the run's checkpoint (a BC or DAgger run, or any run of the same
policy class); the value function or critics are then warmed up alone for a while (`critic_warmup`),
because an actor-critic's first policy updates follow advantages from a critic that knows nothing
yet, and a few of those undo what imitation learned (Rajeswaran et al. 2018, section 4.2).
"""

from __future__ import annotations

from typing import Any

import torch

from ascent.core.checkpoint import load_checkpoint
from ascent.core.run import RunDirectory
from ascent.errors import CheckpointError

# Config fields that change what a policy's weights mean (its architecture and its input).
SHAPING_FIELDS = ("net_arch", "activation", "normalize_obs")


def load_policy_state(run_dir: str, into: torch.nn.Module, config: Any, keys: tuple[str, ...]) -> str:
    """Copy the policy of a run's trained model into `into`, checking that the run's policy has this
    config's architecture. `keys`: the checkpoint modules that may hold it, first match wins
    ("policy": BC, DAgger, PPO...; "actor": SAC). The observation statistics come with it and stay
    fixed. Returns the run's algorithm name."""
    payload = load_checkpoint(RunDirectory(run_dir).trained_model())
    algo, source = payload.get("algo", "?"), payload.get("config", {})
    for name in SHAPING_FIELDS:
        theirs = source.get(name)
        theirs = tuple(theirs) if isinstance(theirs, list) else theirs
        if theirs is not None and theirs != getattr(config, name):
            raise CheckpointError(f"init_from={run_dir}: its {algo} policy has {name}={theirs!r}, this agent "
                                  f"{getattr(config, name)!r}; set --set {name}=... to match (or train the run with yours)")
    for key in keys:
        state = payload.get("modules", {}).get(key)
        if state is None:
            continue
        try:
            into.load_state_dict(state)
            # The policy was fitted to inputs standardized by the loaded statistics: moving them with the new
            # agent's own states would change what it sees (measured: PPO CartPole from a 1-episode BC fell
            # from 500 to 156 while its running statistics moved).
            into.encoder.frozen = True
        except RuntimeError as err:
            raise CheckpointError(f"init_from={run_dir}: its {algo} {key!r} does not fit this agent's policy "
                                  f"({str(err).splitlines()[0][:160]}); BC's policy=actor_critic fits PPO/A2C/TRPO, "
                                  "policy=sac fits SAC") from None
        return algo
    raise CheckpointError(f"init_from={run_dir}: its {algo} checkpoint holds no policy ({' or '.join(keys)})")

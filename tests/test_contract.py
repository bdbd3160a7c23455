"""The Agent contract, checked for every registered algorithm (as Stable-Baselines3 tests its model list).

An algorithm registered in ascent.registry.ALGORITHMS gets every test here by adding its row to
CASES (test_every_registered_algorithm_has_a_case fails until it does):
  1. save -> load (Algo.load and ascent.load): the same deterministic actions and the same state of
     every checkpointed module, optimizers included
  2. the same seed gives the same metrics.csv (wall-clock columns aside) and the same final state
  3. an interrupted run resumes to its target: one metrics row per iteration, no duplicates, the
     rows before the interruption kept; bit-identical to an uninterrupted run where the algorithm
     allows (see RESUME_NOT_EXACT for the measured reasons where it does not); and a checkpoint
     holds all the training state but the envs' (STATE_NOT_CHECKPOINTED lists what is missing)
  4. an action (or observation) space the algorithm cannot handle is an AscentError naming the space
  5. a bad hyperparameter value or an unknown hyperparameter name is a ConfigError naming it
  6. the `device` setting: networks, optimizer state and the batches the networks see are on the
     configured device (every device this machine has: the CPU, and a GPU where one is visible),
     storage in host memory; and setup builds every network on the agent's device (checked on the
     meta device, which stands in for a GPU on a machine without one)
"""

from __future__ import annotations

import copy
import functools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import ascent
from ascent.core.checkpoint import load_checkpoint
from ascent.core.logger import read_csv
from ascent.errors import AscentError, ConfigError
from ascent.envs.vector import batch_of
from ascent.registry import ALGORITHMS, get_algorithm

TUPLE_ACTIONS = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2)))
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DICT_OBS = gym.spaces.Dict({"a": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})


TEAM_PPO = dict(n_envs=2, n_steps=8, batch_size=16, n_epochs=2, net_arch=(16,), log_interval=1)
MULTI_AGENT = dict(net_arch=(16,), learning_starts=10, batch_size=8, buffer_size=200, target_update_interval=20,
                   mixing_embed=8, hypernet_embed=8, log_interval=1)


@dataclass(frozen=True)
class Case:
    """How to run one algorithm small and fast (about a second per training)."""

    env: str
    hyperparameters: dict[str, Any]
    iteration: int | None  # env steps per iteration (None: it varies, e.g. whole episodes)
    steps: int  # env steps of a training; the resume test interrupts it at checkpoint_every = steps // 2
    invalid: tuple[str, Any]  # a hyperparameter of the algorithm and a value out of its bounds
    # (observation space, action space, "obs" or "action") the algorithm cannot handle: the error must
    # name the space the third item points to
    bad_spaces: tuple[tuple[gym.Space, gym.Space, str], ...] = field(default=())


# (Dict/Tuple observations are supported by the on-policy encoder; actions must be Discrete,
# MultiDiscrete or a 1-D Box)
ON_POLICY_BAD = ((BOX, TUPLE_ACTIONS, "action"), (BOX, gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32), "action"))
OFF_POLICY = dict(net_arch=(16, 16), learning_starts=32, batch_size=32, buffer_size=1000, train_freq=1,
                  gradient_steps=1, log_interval=1)
TRPO_SMALL = dict(n_envs=1, n_steps=64, batch_size=32, n_critic_updates=2, cg_max_steps=5, net_arch=(16, 16),
                  log_interval=1)
TABULAR = dict(n_envs=2, q_init=0.5, log_interval=1)  # optimistic q_init: the table moves without a goal reached

# The imitation algorithms' demonstrations and expert, made once per session by `demonstrations`
# below (the paths are fixed at import: the cases name them).
DEMOS_ROOT = Path(tempfile.mkdtemp(prefix="ascent-contract-demos-"))
CARTPOLE_DEMOS, EXPERT_RUN = str(DEMOS_ROOT / "cartpole"), str(DEMOS_ROOT / "expert")
IMITATION = dict(dataset=CARTPOLE_DEMOS, net_arch=(16, 16), log_interval=1)
GENERATOR_SMALL = "n_envs=2;n_steps=16;batch_size=32;n_epochs=1;net_arch=16,16"

# Every registered algorithm, keyed by its registry name. The sizes override the env's preset
# (ascent/presets/*.toml applies by env id) so that a preset change cannot slow these tests down.
CASES: dict[str, Case] = {
    "ppo": Case("CartPole-v1", dict(n_envs=2, n_steps=32, batch_size=32, n_epochs=2, net_arch=(16, 16), log_interval=1),
                64, 256, ("learning_rate", -1.0), ON_POLICY_BAD),
    "a2c": Case("CartPole-v1", dict(n_envs=2, n_steps=8, net_arch=(16, 16), log_interval=1),
                16, 128, ("learning_rate", -1.0), ON_POLICY_BAD),
    "trpo": Case("CartPole-v1", TRPO_SMALL, 64, 256, ("target_kl", -0.01), ON_POLICY_BAD),
    "npg": Case("CartPole-v1", TRPO_SMALL, 64, 256, ("target_kl", 0.0), ON_POLICY_BAD),
    "reinforce": Case("CartPole-v1", dict(n_envs=2, n_episodes=2, n_critic_updates=2, net_arch=(16, 16), log_interval=1),
                      None, 200, ("learning_rate", 0.0), ON_POLICY_BAD),
    "offpg": Case("CartPole-v1", dict(n_envs=2, n_episodes=2, n_updates=2, n_batches_kept=2, net_arch=(16, 16),
                                      log_interval=1),
                  None, 200, ("max_weight", 0.5), ON_POLICY_BAD),
    "ac": Case("CartPole-v1", dict(n_envs=2, net_arch=(16, 16), log_interval=1),
               2, 100, ("vf_learning_rate", -1e-3), ON_POLICY_BAD),
    "sac": Case("CartPole-v1", dict(OFF_POLICY, target_update_interval=2), 1, 160, ("tau", 1.5),
                ((BOX, gym.spaces.MultiDiscrete([2, 2]), "action"), (DICT_OBS, gym.spaces.Discrete(2), "obs"))),
    "td3": Case("Pendulum-v1", OFF_POLICY, 1, 160, ("policy_delay", 0),
                ((BOX, gym.spaces.Discrete(3), "action"), (DICT_OBS, BOX, "obs"))),
    "ddpg": Case("Pendulum-v1", dict(OFF_POLICY, action_noise="ornstein_uhlenbeck"), 1, 160, ("action_noise_std", -0.1),
                 ((BOX, gym.spaces.Discrete(3), "action"), (DICT_OBS, BOX, "obs"))),
    "dqn": Case("CartPole-v1", dict(OFF_POLICY, train_freq=2, target_update_interval=50), 2, 200,
                ("exploration_final_eps", 1.5), ((BOX, BOX, "action"), (DICT_OBS, gym.spaces.Discrete(2), "obs"))),
    "qlearning": Case("FrozenLake-v1", TABULAR, 2, 200, ("learning_rate", 2.0),
                      ((BOX, gym.spaces.Discrete(2), "obs"), (gym.spaces.Discrete(4), BOX, "action"))),
    "sarsa": Case("FrozenLake-v1", TABULAR, 2, 200, ("exploration_fraction", -0.5),
                  ((BOX, gym.spaces.Discrete(2), "obs"), (gym.spaces.Discrete(4), BOX, "action"))),
    # distributed: two Ray actors of 2 envs, 16-step segments, one segment a batch
    "impala": Case("CartPole-v1", dict(n_actors=2, n_envs=2, n_steps=16, segments_per_batch=1, net_arch=(16, 16),
                                       log_interval=1), 32, 256, ("rho_bar", 0.0), ON_POLICY_BAD),
    "a3c": Case("CartPole-v1", dict(n_actors=2, n_envs=2, n_steps=8, rounds_per_call=1, net_arch=(16, 16),
                                    log_interval=1), 32, 256, ("rms_prop_alpha", 0.0), ON_POLICY_BAD),
    "dppo": Case("CartPole-v1", dict(n_actors=2, n_envs=2, n_steps=16, batch_size=32, n_epochs=2, net_arch=(16, 16),
                                     log_interval=1), 64, 256, ("batch_size", 33), ON_POLICY_BAD),
    "apex": Case("CartPole-v1", dict(n_actors=2, actor_steps=20, chunk=10, learning_starts=40, batch_size=16,
                                     buffer_size=1000, prefetch=2, net_arch=(16, 16), log_interval=1),
                 None, 400, ("epsilon", 1.5), ((BOX, BOX, "action"), (DICT_OBS, gym.spaces.Discrete(2), "obs"))),
    "apex-dpg": Case("Pendulum-v1", dict(n_actors=2, actor_steps=20, chunk=10, learning_starts=40, batch_size=16,
                                         buffer_size=1000, prefetch=2, net_arch=(16, 16), log_interval=1),
                     None, 400, ("policy_delay", 0), ((BOX, gym.spaces.Discrete(3), "action"), (DICT_OBS, BOX, "obs"))),
    # imitation: BC counts gradient steps; DAgger and GAIL env steps
    "bc": Case("CartPole-v1", dict(IMITATION, eval_interval=16, batch_size=16, eval_every=0), 16, 64,
               ("validation_fraction", 1.5), ON_POLICY_BAD),
    "dagger": Case("CartPole-v1", dict(IMITATION, expert=EXPERT_RUN, n_episodes=1, round_steps=16, train_steps=4,
                                       initial_train_steps=4, batch_size=16, eval_every=0), 16, 64,
                   ("beta_decay", 1.5), ON_POLICY_BAD),
    "gail": Case("CartPole-v1", dict(IMITATION, generator_set=GENERATOR_SMALL, n_disc_updates=1, disc_batch_size=16),
                 32, 128, ("disc_learning_rate", -1.0), ON_POLICY_BAD),
    "airl": Case("CartPole-v1", dict(IMITATION, generator_set=GENERATOR_SMALL, n_disc_updates=1, disc_batch_size=16,
                                     grad_penalty=1.0), 32, 128, ("disc_batch_size", 0), ON_POLICY_BAD),
    "dqfd": Case("CartPole-v1", dict(OFF_POLICY, train_freq=2, target_update_interval=50, dataset=CARTPOLE_DEMOS,
                                     pretrain_steps=8, pretrain_target_update_interval=4), 2, 200,
                 ("margin", -0.8), ((BOX, BOX, "action"), (DICT_OBS, gym.spaces.Discrete(2), "obs"))),
    # search: self-play moves of 2 lockstep tic-tac-toe games (an iteration's length varies with the games')
    "alphazero": Case("tic_tac_toe", dict(simulations=4, parallel_games=2, batch_size=16, net_arch=(16, 16),
                                          eval_simulations=2, eval_opponent="random", replay_size=200, log_interval=1),
                      None, 60, ("dirichlet_fraction", 1.5), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    # multi-agent: one joint step of ascent's Markov games per iteration, both seats learning
    "minimaxq": Case("soccer", dict(log_interval=1), 1, 200, ("exploration", 1.5), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    "nashq": Case("grid_game", dict(gamma=0.99, log_interval=1), 1, 100, ("learning_rate_final", 0.0),
                  ((BOX, gym.spaces.Discrete(2), "obs"),)),
    "iql": Case("soccer", dict(log_interval=1), 1, 200, ("learning_rate", 0.0), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    "vdn": Case("two_step", dict(MULTI_AGENT), 1, 100, ("target_update_interval", 0), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    "qmix": Case("two_step", dict(MULTI_AGENT), 1, 100, ("mixing_embed", 0), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    # a team's rows: 2 copies of the two-step game, one row per agent of each
    "ippo": Case("two_step", dict(TEAM_PPO), 16, 64, ("clip_range", -0.1), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    "mappo": Case("two_step", dict(TEAM_PPO), 16, 64, ("n_epochs", 0), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    "idqn": Case("two_step", dict(OFF_POLICY, learning_starts=8, batch_size=8, target_update_interval=10), 1, 100,
                 ("exploration_final_eps", 1.5), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    # self-play: 2 copies of tic-tac-toe, a snapshot every iteration, an Elo round every other one
    "selfplay": Case("pettingzoo:tictactoe_v3", dict(TEAM_PPO, save_steps=16, elo_every=32, elo_games=4, elo_opponents=1),
                     16, 64, ("play_against_latest_model_ratio", 1.5), ((BOX, gym.spaces.Discrete(2), "obs"),)),
    # one actor and one critic per agent: an update every env step from step 10
    "maddpg": Case("two_step", dict(net_arch=(16,), learning_starts=10, batch_size=8, buffer_size=200, train_freq=1,
                                    log_interval=1), 1, 100, ("gumbel_temperature", 0.0),
                   ((BOX, gym.spaces.Discrete(2), "obs"),)),
    # model-based: CEM's elite episodes (whole episodes an iteration); Dyna-Q on the book's maze, 2 envs
    "cem": Case("CartPole-v1", dict(n_envs=2, n_episodes=2, gradient_steps=2, net_arch=(16,), log_interval=1),
                None, 200, ("percentile", 150.0), ON_POLICY_BAD),
    "dynaq": Case("ascent/DynaMaze-v0", dict(n_envs=2, planning_steps=5, q_init=0.5, log_interval=1), 2, 200,
                  ("planning_steps", -1), ((BOX, gym.spaces.Discrete(4), "obs"), (gym.spaces.Discrete(4), BOX, "action"))),
    # PETS: a refit every 25 steps after 25 random ones; a 2-member ensemble, CEM of 16 x 2 particles over 4 steps
    "pets": Case("Pendulum-v1", dict(net_arch=(16, 16), n_members=2, horizon=4, population=16, cem_elites=4,
                                     cem_iterations=2, particles=2, train_freq=25, learning_starts=25, batch_size=16,
                                     model_epochs=2, buffer_size=1000, log_interval=1), 25, 100, ("cem_alpha", 1.5),
                 ((BOX, gym.spaces.Discrete(3), "action"), (DICT_OBS, BOX, "obs"))),
    # MBPO: a refit and 32 one-step rollouts every 25 steps after 25 random ones; one SAC update a step
    "mbpo": Case("Pendulum-v1", dict(net_arch=(16, 16), model_net_arch=(16, 16), n_members=2, n_elites=1,
                                     model_train_freq=25, learning_starts=25, rollout_batch_size=32, gradient_steps=1,
                                     batch_size=16, model_batch_size=16, model_max_epochs=2, buffer_size=1000,
                                     epoch_length=50, log_interval=1), 25, 100, ("real_ratio", 1.5),
                 ((BOX, gym.spaces.Discrete(3), "action"), (DICT_OBS, BOX, "obs"))),
}

# Algorithms whose resumed run is NOT bit-identical to an uninterrupted one, and why. Measured: for
# each of them, test_checkpoint_holds_all_training_state_but_the_envs (a run loaded from the
# checkpoint, given the env objects as they were at the interruption) continues exactly, unless the
# algorithm is also in STATE_NOT_CHECKPOINTED. The common cause: the checkpoint holds no env state,
# and `Agent.start_episodes` (ascent/core/agent.py) resets the envs of a loaded agent with
# `_env_seed()`, a seed derived from the iteration; so the resumed run starts new episodes where the
# uninterrupted one was mid-episode (and an off-policy agent's loaded replay buffer has its newest
# transitions cut as truncations, `ReplayBuffer.cut_episodes`).
ENV_RESET = "the envs are re-seeded and reset on resume: env state is not checkpointed"
RESUME_NOT_EXACT: dict[str, str] = {name: ENV_RESET for name in
                                    ("ppo", "a2c", "trpo", "npg", "ac", "sac", "td3", "ddpg", "dqn", "qlearning", "sarsa",
                                     "dagger", "gail", "airl", "dqfd", "selfplay", "dynaq", "pets", "mbpo")}
# ascent's Markov games: the learner steps its own game, which is the env's state (not checkpointed)
GAME_UNDER_WAY = "the game under way is the env's state, not checkpointed: a loaded learner starts a new game"
RESUME_NOT_EXACT.update({name: GAME_UNDER_WAY for name in ("minimaxq", "nashq", "iql")})
# Asynchronous actors: which actor's segments make a batch, and with which weights they were
# collected, depends on timing, so neither a run nor its resumption repeats exactly.
ASYNCHRONOUS = "asynchronous actors: the segments of a batch and the weights that collected them depend on timing"
NOT_DETERMINISTIC: dict[str, str] = {name: ASYNCHRONOUS for name in ("impala", "a3c", "apex", "apex-dpg")}
RESUME_NOT_EXACT.update(NOT_DETERMINISTIC, dppo=ENV_RESET)
# ippo, mappo, idqn and maddpg resume exactly on their case's game: the two-step game is deterministic and the
# checkpoint falls between its 2-step episodes, so the re-seeded reset changes nothing.
# reinforce and offpg resume exactly: every iteration collects whole episodes from resets seeded by
# the agent's own (checkpointed) numpy stream, so no env state outlives an iteration.

# Training state that an algorithm keeps outside its checkpoint (measured: restoring the attribute
# named, besides the envs, made the continuation from the checkpoint exact). Empty since the
# algorithms keep such numbers in `Counters` (TD3's and SAC's update counts, DQN's next target
# update, the tabular methods' drawn next action, the OU noise state); the sac and ddpg cases run
# with target_update_interval=2 and Ornstein-Uhlenbeck noise so that those counters are exercised.
IN_ACTORS = "the envs live in Ray actors, started anew by a resumed run"
STATE_NOT_CHECKPOINTED: dict[str, str] = {"impala": f"{IN_ACTORS}; {ASYNCHRONOUS}", "a3c": f"{IN_ACTORS}; {ASYNCHRONOUS}",
                                          "dppo": IN_ACTORS, "apex": f"{IN_ACTORS}; {ASYNCHRONOUS}",
                                          "apex-dpg": f"{IN_ACTORS}; {ASYNCHRONOUS}",
                                          **{name: GAME_UNDER_WAY for name in ("minimaxq", "nashq", "iql")}}

@pytest.fixture(scope="session", autouse=True)
def demonstrations():
    """A 4-episode random-policy CartPole dataset and a (barely trained) PPO run as the expert."""
    import gymnasium as gym
    from ascent.imitation.datasets import record_episodes, write_dataset

    env = gym.make("CartPole-v1")
    space = env.action_space
    space.seed(0)
    write_dataset(CARTPOLE_DEMOS, record_episodes(lambda obs: np.array([space.sample()]), env, 4, seed=0), env,
                  "cartpole/contract-v0", "random")
    get_algorithm("ppo")("CartPole-v1", seed=0, run_dir=EXPERT_RUN, verbose=0, **CASES["ppo"].hyperparameters).learn(
        64, progress_bar=False)
    yield
    shutil.rmtree(DEMOS_ROOT, ignore_errors=True)


WALL_CLOCK = ("wall_time", "steps_per_s", "actor_steps_per_s", "learner_utilisation",
              "plan_ms", "fit_seconds", "rollout_seconds")  # (timings; plan_ms PETS's, rollout_seconds MBPO's)
ALGOS = sorted(ALGORITHMS)


def make(algo: str, seed: int = 0, run_dir: Path | None = None, **overrides):
    case = CASES[algo]
    return get_algorithm(algo)(case.env, seed=seed, run_dir=run_dir, verbose=0, **{**case.hyperparameters, **overrides})


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in read_csv(run_dir / "metrics.csv")]


def observation_batch(agent, n: int = 16) -> np.ndarray:
    space = agent.envs.observation_space
    space.seed(123)
    return batch_of(space, [space.sample() for _ in range(n)])  # (a dict of arrays for Dict spaces)


def state_of(agent) -> dict[str, Any]:
    """state_dict() of every checkpointed object (modules(), optimizers, the reward scaler)."""
    return {name: mod.state_dict() for name, mod in agent.checkpointed().items()}


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two nested state dicts differ (tensors compared exactly, dtype and shape included)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
        return [] if same else [where]
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return [] if np.array_equal(np.asarray(a), np.asarray(b)) else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where} keys {sorted(map(str, set(a) ^ set(b)))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where} length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [where]


def tensor_count(state: Any) -> int:
    if isinstance(state, torch.Tensor):
        return 1
    if isinstance(state, dict):
        return sum(tensor_count(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(tensor_count(v) for v in state)
    return 0


# ---- the table covers the registry ---------------------------------------------------------------------
def test_every_registered_algorithm_has_a_case():
    missing = sorted(set(ALGORITHMS) - set(CASES))
    assert not missing, f"add a row to CASES in {__file__} for: {', '.join(missing)}"
    assert not set(CASES) - set(ALGORITHMS), "CASES has rows for algorithms that are not registered"
    assert not (set(RESUME_NOT_EXACT) | set(STATE_NOT_CHECKPOINTED) | set(NOT_DETERMINISTIC)) - set(ALGORITHMS)
    for name, case in CASES.items():
        assert case.bad_spaces, f"{name}: give at least one space it cannot handle"
        if case.iteration is not None:  # the resume test checkpoints at steps // 2 and stops an iteration later
            assert case.steps % (2 * case.iteration) == 0 and case.steps // case.iteration >= 4, name


# ---- 1. save -> load ------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_roundtrip(algo, tmp_path):
    Algo = get_algorithm(algo)
    agent = make(algo, seed=3)
    untrained = state_of(make(algo, seed=3))
    agent.learn(CASES[algo].steps, progress_bar=False)
    path = agent.save(tmp_path / "model.pt")
    obs = observation_batch(agent)
    expected = agent.act(obs, deterministic=True)
    state = state_of(agent)
    assert tensor_count(state) > 0
    assert differences(state, untrained), "training changed no checkpointed tensor: the comparison below would be vacuous"
    for loaded in (Algo.load(path, verbose=0), ascent.load(path, verbose=0)):
        assert type(loaded) is Algo
        np.testing.assert_array_equal(loaded.act(obs, deterministic=True), expected)
        assert not differences(state_of(loaded), state)
        assert set(loaded.checkpointed()) == set(agent.checkpointed())
        assert (loaded.num_steps, loaded.iteration, loaded.config, loaded.seed) == \
               (agent.num_steps, agent.iteration, agent.config, agent.seed)
        assert loaded.evaluate(1)["episodes"] == 1


# ---- 2. same seed, same run -----------------------------------------------------------------------------
@pytest.mark.parametrize("algo", [a for a in ALGOS if a not in NOT_DETERMINISTIC])
def test_same_seed_same_metrics(algo, tmp_path):
    runs, states = [], []
    for name in ("a", "b"):
        agent = make(algo, seed=7, run_dir=tmp_path / name).learn(CASES[algo].steps, progress_bar=False)
        runs.append(metric_rows(tmp_path / name))
        states.append(state_of(agent))
    assert len(runs[0]) == agent.iteration  # log_interval=1: a row per iteration
    assert any(len(row) > 1 for row in runs[0]), "no metric besides the step count"
    assert runs[0] == runs[1]
    assert not differences(states[0], states[1])


@pytest.mark.parametrize("algo", sorted(NOT_DETERMINISTIC))
def test_same_seed_same_start_where_runs_cannot_repeat(algo, tmp_path):
    """What the seed still fixes for an asynchronous algorithm: the initial networks, and a run's
    shape (a row per iteration, the same steps per iteration)."""
    assert not differences(state_of(make(algo, seed=7)), state_of(make(algo, seed=7)))
    agent = make(algo, seed=7, run_dir=tmp_path / "a").learn(CASES[algo].steps, progress_bar=False)
    rows = metric_rows(tmp_path / "a")
    assert len(rows) == agent.iteration
    steps = [int(r["steps"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == agent.num_steps >= CASES[algo].steps
    if CASES[algo].iteration is not None:
        assert steps[:2] == [CASES[algo].iteration, 2 * CASES[algo].iteration]


# ---- 3. resume ------------------------------------------------------------------------------------------
@dataclass
class ResumeRuns:
    full: Any  # the uninterrupted agent
    resumed: Any
    full_dir: Path
    cut_dir: Path
    cut_at: int  # num_steps of the checkpoint the resumed run started from
    rows_at_interruption: list[dict[str, str]]  # metrics.csv when the run "crashed" (rows past cut_at included)


@functools.cache
def _resume_runs(algo: str, root: Path) -> ResumeRuns:
    """An uninterrupted run of `steps` and the same run (same seed) interrupted one iteration after its
    checkpoint at steps // 2, then resumed from that checkpoint with Algo.resume."""
    case, Algo = CASES[algo], get_algorithm(algo)
    every = case.steps // 2
    hp = dict(checkpoint_every=every)
    if "save_replay_buffer" in {f for f in Algo.Config.__dataclass_fields__}:
        hp["save_replay_buffer"] = True
    root = root / algo
    full = make(algo, seed=1, run_dir=root / "full", **hp).learn(case.steps, progress_bar=False)

    cut = root / "cut"
    kept = root / "checkpoint_at_interruption"
    seen: dict[str, int] = {}

    def crash_after_checkpoint(agent, metrics):
        # Called after the iteration's checkpoint is written: keep that checkpoint aside, run one more
        # iteration (its metrics row goes past the checkpoint), then stop.
        if "iteration" not in seen and agent.num_steps >= every:
            seen["iteration"], seen["steps"] = agent.iteration, agent.num_steps
            shutil.copytree(cut / "checkpoints", kept)
        return "iteration" not in seen or agent.iteration < seen["iteration"] + 1

    make(algo, seed=1, run_dir=cut, **hp).learn(case.steps, callbacks=crash_after_checkpoint, progress_bar=False)
    # What a crash one iteration after the checkpoint leaves: that checkpoint, no model.pt, and
    # metrics rows past the checkpoint (which the resumed run must redo, not repeat).
    shutil.rmtree(cut / "checkpoints")
    shutil.copytree(kept, cut / "checkpoints")
    (cut / "model.pt").unlink()
    rows = metric_rows(cut)
    assert int(load_checkpoint(cut / "checkpoints" / "last.pt")["num_steps"]) == seen["steps"]
    assert int(rows[-1]["steps"]) > seen["steps"], "the simulated crash left no row past the checkpoint"
    resumed = Algo.resume(cut, progress_bar=False, verbose=0)
    return ResumeRuns(full, resumed, root / "full", cut, seen["steps"], rows)


@pytest.fixture(scope="module")
def resume_root(tmp_path_factory):
    return tmp_path_factory.mktemp("resume")


@pytest.mark.parametrize("algo", ALGOS)
def test_resume_reaches_target_with_consistent_metrics(algo, resume_root):
    """What holds for every algorithm today: the resumed run ends at the target, with one metrics row
    per iteration, steps strictly increasing, no row lost or repeated, the rows before the checkpoint
    kept as they were (and equal to the uninterrupted run's), and the run's files complete."""
    case = CASES[algo]
    r = _resume_runs(algo, resume_root)
    assert r.resumed.config.log_interval == 1
    assert r.resumed.target_steps == r.full.target_steps == case.steps
    assert r.resumed.num_steps >= case.steps
    rows = metric_rows(r.cut_dir)
    steps = [int(row["steps"]) for row in rows]
    assert steps == sorted(set(steps)), f"duplicated or unordered rows: {steps}"
    assert len(rows) == r.resumed.iteration, "a row per iteration (log_interval=1): none missing, none repeated"
    assert steps[-1] == r.resumed.num_steps
    before = [row for row in rows if int(row["steps"]) <= r.cut_at]
    assert before == [row for row in r.rows_at_interruption if int(row["steps"]) <= r.cut_at]
    if algo not in NOT_DETERMINISTIC:
        assert before == [row for row in metric_rows(r.full_dir) if int(row["steps"]) <= r.cut_at]
    if case.iteration is not None:  # fixed-size iterations: exactly the steps of the uninterrupted run
        assert steps == list(range(case.iteration, case.steps + 1, case.iteration))
        assert r.resumed.num_steps == r.full.num_steps == case.steps
    assert (r.cut_dir / "model.pt").exists()
    assert int(load_checkpoint(r.cut_dir / "checkpoints" / "last.pt")["num_steps"]) == r.resumed.num_steps


def _unless(known: dict[str, str], algo: str):
    """algo, marked as an expected failure with its measured reason if it is in `known`; strict: an
    algorithm that starts passing must be taken off the list."""
    if algo in known:
        return pytest.param(algo, marks=pytest.mark.xfail(reason=known[algo], raises=AssertionError, strict=True))
    return algo


@pytest.mark.parametrize("algo", [_unless(RESUME_NOT_EXACT, a) for a in ALGOS])
def test_resume_is_bit_identical_to_uninterrupted_run(algo, resume_root):
    r = _resume_runs(algo, resume_root)
    assert metric_rows(r.cut_dir) == metric_rows(r.full_dir)
    assert r.resumed.num_steps == r.full.num_steps and r.resumed.iteration == r.full.iteration
    assert not differences(state_of(r.resumed), state_of(r.full))


@pytest.mark.parametrize("algo", [_unless(STATE_NOT_CHECKPOINTED, a) for a in ALGOS])
def test_checkpoint_holds_all_training_state_but_the_envs(algo, resume_root):
    """Loaded from the mid-run checkpoint and given the envs as they were then (what a checkpoint does
    not hold), an agent continues exactly as the uninterrupted run: nothing else is missing from it."""
    case, Algo = CASES[algo], get_algorithm(algo)
    r = _resume_runs(algo, resume_root)  # its uninterrupted run
    run_dir = resume_root / algo / "envs_kept"
    kept: dict[str, Any] = {}

    def stop_after_checkpoint(agent, metrics):
        if agent.num_steps < r.cut_at:
            return True
        kept["envs"], kept["obs"] = copy.deepcopy(agent.envs), copy.deepcopy(agent.obs)
        return False

    make(algo, seed=1, run_dir=run_dir, checkpoint_every=r.cut_at,
         **({"save_replay_buffer": True} if r.resumed.replay is not None else {})).learn(
        case.steps, callbacks=stop_after_checkpoint, progress_bar=False)
    agent = Algo.load(run_dir / "checkpoints" / "last.pt", run_dir=run_dir, verbose=0)
    assert agent.num_steps == r.cut_at
    agent.envs, agent.obs = kept["envs"], kept["obs"]
    agent.learn(agent.target_steps - agent.num_steps, progress_bar=False)
    assert metric_rows(run_dir) == metric_rows(r.full_dir)
    assert not differences(state_of(agent), state_of(r.full))


# ---- 4. unsupported spaces ------------------------------------------------------------------------------
class TinyEnv(gym.Env):
    """Any observation and action space; samples observations, ends every episode after 5 steps."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space, self.action_space = observation_space, action_space
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), 0.0, False, self.t >= 5, {}


@pytest.mark.parametrize("algo,index", [(a, i) for a in ALGOS for i in range(len(CASES[a].bad_spaces))])
def test_unsupported_space_is_a_clear_error(algo, index):
    obs_space, action_space, which = CASES[algo].bad_spaces[index]
    named = obs_space if which == "obs" else action_space
    hp = {k: v for k, v in CASES[algo].hyperparameters.items() if k not in ("n_envs",)}
    with pytest.raises(AscentError) as err:
        agent = get_algorithm(algo)(functools.partial(TinyEnv, obs_space, action_space), seed=0, verbose=0, **hp)
        agent.learn(8, progress_bar=False)  # reached only if the constructor accepted the space
    assert str(named) in str(err.value), f"the message does not name {named}: {err.value}"


# ---- 5. hyperparameters ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ALGOS)
def test_invalid_hyperparameter_value_is_a_config_error(algo):
    name, value = CASES[algo].invalid
    assert name in get_algorithm(algo).Config.__dataclass_fields__, f"{algo} has no hyperparameter {name}"
    make(algo)  # the case's own values are valid
    with pytest.raises(ConfigError, match=name):
        make(algo, **{name: value})
    with pytest.raises(ConfigError, match="gamma"):
        make(algo, gamma=1.5)


@pytest.mark.parametrize("algo", ALGOS)
def test_unknown_hyperparameter_is_a_config_error(algo):
    with pytest.raises(ConfigError, match="learning_rat_typo"):
        make(algo, learning_rat_typo=1e-3)


# ---- 6. the device -------------------------------------------------------------------------------------
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def has_device_setting(algo: str) -> bool:
    return "device" in get_algorithm(algo).Config.__dataclass_fields__


def tensors_of(obj: Any, seen: set | None = None) -> list[torch.Tensor]:
    """The tensors an object holds in its attributes (one level of lists, tuples and dicts)."""
    found = []
    for value in vars(obj).values():
        values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        found += [v for v in values if isinstance(v, torch.Tensor)]
    return found


def placement_errors(agent, device: torch.device) -> list[str]:
    """Where the agent's networks or optimizer state are off `device`, or its storage off the CPU."""
    errors = []
    for name, mod in agent.modules().items():
        if isinstance(mod, torch.nn.Module):
            errors += [f"{name}.{k} on {t.device}" for k, t in [*mod.named_parameters(), *mod.named_buffers()]
                       if t.device != device]
        elif isinstance(mod, torch.optim.Optimizer):
            errors += [f"{name} parameter on {p.device}" for g in mod.param_groups for p in g["params"] if p.device != device]
            errors += [f"{name} state {k} on {v.device}" for st in mod.state.values() for k, v in st.items()
                       if isinstance(v, torch.Tensor) and v.device != device]
    for name in ("storage", "replay"):
        store = getattr(agent, name, None)
        store = getattr(store, "buffer", store)  # (prioritized replay wraps a buffer)
        if store is not None:
            errors += [f"{name} tensor on {t.device}" for t in tensors_of(store) if t.device.type != "cpu"]
    return errors


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", [a for a in ALGOS if has_device_setting(a)])
def test_networks_optimizers_and_batches_are_on_the_configured_device(algo, device):
    agent = make(algo, device=device)
    assert agent.device == torch.device(device)
    seen = []  # the device of every tensor a network is called with while training and acting

    def record(module, args):
        seen.extend(a.device for a in args if isinstance(a, torch.Tensor))

    hooks = [m.register_forward_pre_hook(record) for mod in agent.modules().values()
             if isinstance(mod, torch.nn.Module) for m in mod.modules()]
    try:
        agent.learn(CASES[algo].steps // 2, progress_bar=False)
        actions = agent.act(observation_batch(agent), deterministic=False)
    finally:
        for h in hooks:
            h.remove()
    assert isinstance(actions, np.ndarray)
    assert seen, "no network was called: the check would be vacuous"
    off = {str(d) for d in seen if d != torch.device(device)}
    assert not off, f"{algo}: networks were given tensors on {off}, not {device}"
    assert not placement_errors(agent, torch.device(device))


@pytest.mark.parametrize("algo", [a for a in ALGOS if has_device_setting(a)])
def test_setup_builds_every_network_on_the_agents_device(algo, monkeypatch):
    """With the agent's device the meta device (a stand-in for a GPU that needs none), every
    parameter, buffer and optimizer entry setup makes must land there, and storage on the CPU."""
    monkeypatch.setattr("ascent.core.agent.resolve_device", lambda spec, image: torch.device("meta"))
    agent = make(algo)
    errors = placement_errors(agent, torch.device("meta"))
    assert not errors, f"{algo}: {errors[:5]}"


@pytest.mark.parametrize("algo", [a for a in ALGOS if not has_device_setting(a)])
def test_algorithms_without_networks_run_on_the_cpu(algo):
    assert make(algo).device == torch.device("cpu")

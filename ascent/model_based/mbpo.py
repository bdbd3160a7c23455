"""MBPO: model-based policy optimization (Janner et al. 2019, "When to Trust Your Model",
arXiv:1906.08253, Algorithm 2 and appendix C).

SAC trained mostly on short rollouts of a learned model, branched from real states:
  1. `learning_starts` env steps of uniformly random actions fill the real buffer D_env;
  2. every iteration (model_train_freq env steps, 250) the probabilistic ensemble (ensemble.py:
     7 members, 5 elites, the reward learned) is refitted to all of D_env, continuing from its
     weights, with early stopping on a held-out split                              (Alg. 2 line 3)
  3. then rollout_batch_size states are drawn from D_env and rolled out k steps with SAC's current
     policy, every step through an elite member drawn at random per row; the model transitions go
     to the model buffer D_model, which holds `model_retain_epochs` epochs of them   (lines 5-8)
  4. then every env step, SAC acts and stores its transition in D_env and takes `gradient_steps`
     updates (G, 20), each on a batch of real_ratio (5%) real and 1 - real_ratio model
     transitions                                                                  (lines 9-12)
The rollout length grows with the epoch (epoch_length env steps after learning_starts), app. C:
    k = min(max(x + (epoch - a) / (b - a) (y - x), x), y),  floored,  rollout_schedule = [a, b, x, y]
A rollout stops where the termination function says an episode ends (KNOWN_TERMINATIONS by env id,
the health conditions of Hopper, Walker2d and Ant; or the ensemble's learned termination); that
transition is stored as terminal and its row is not continued. The last step of a rollout that
did not terminate is stored as truncated: SAC bootstraps from its next state.

MBPO subclasses SAC, as DQfD does DQN: the networks, acting, the update (SAC.update, given the
mixed batch) and their checkpoint are SAC's, unchanged; MBPO adds the model, the model buffer and
the iteration above. D_model is ascent's ReplayBuffer laid out (rows, rollout_batch_size): a row
is one step of every branch of a rollout, and the branches that already terminated are invalid
there (never sampled). It is allocated for the longest k of the schedule, and sampled in its newest
rows, as many as model_retain_epochs epochs of rollouts of the current k fill: the paper's pool,
which it reallocates when k changes, keeping its newest samples.

Logged every iteration: the model's one-step and k-step prediction errors on the transitions
collected since its last fit (not trained on yet), its train NLL and held-out MSE, the rollout
length, the mean steps a branch lasted, the model buffer's size, and SAC's losses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from ascent.algorithms.common.offpolicy import collect_transitions, gradient_steps_per_round
from ascent.algorithms.sac import SAC, SACConfig
from ascent.buffers.replay import Batch, ReplayBuffer
from ascent.core.config import param
from ascent.errors import ConfigError
from ascent.model_based.ensemble import ProbabilisticEnsemble, check_model_spaces, refit

TERMINATIONS = ("auto", "known", "learned", "none")


# ---- known terminations: the Gymnasium MuJoCo envs' health conditions (v4 and v5, default kwargs) ----
def hopper_terminated(next_obs: torch.Tensor) -> torch.Tensor:
    """Hopper: unhealthy when the height obs[0] <= 0.7, the torso angle obs[1] leaves (-0.2, 0.2), or
    any of obs[1:] leaves (-100, 100) (gymnasium hopper_v5.is_healthy)."""
    z, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (next_obs[..., 1:].abs() < 100.0).all(-1) & (z > 0.7) & (angle.abs() < 0.2)
    return ~healthy


def walker2d_terminated(next_obs: torch.Tensor) -> torch.Tensor:
    """Walker2d: unhealthy when the height obs[0] leaves (0.8, 2.0) or the angle obs[1] leaves (-1, 1)."""
    z, angle = next_obs[..., 0], next_obs[..., 1]
    return ~((z > 0.8) & (z < 2.0) & (angle.abs() < 1.0))


def ant_terminated(next_obs: torch.Tensor) -> torch.Tensor:
    """Ant: unhealthy when the state is not finite or the torso's height obs[0] leaves [0.2, 1.0]."""
    z = next_obs[..., 0]
    return ~(torch.isfinite(next_obs).all(-1) & (z >= 0.2) & (z <= 1.0))


KNOWN_TERMINATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    **{f"Hopper-v{v}": hopper_terminated for v in (4, 5)},
    **{f"Walker2d-v{v}": walker2d_terminated for v in (4, 5)},
    **{f"Ant-v{v}": ant_terminated for v in (4, 5)},
}


@dataclass
class MBPOConfig(SACConfig):
    gradient_steps: int = param(20, "SAC updates per round of train_freq env steps: G, the update-to-data ratio "
                                "(MBPO: 20; 40 on HalfCheetah)")
    learning_starts: int = param(5000, "env steps of uniformly random actions before the first fit (MBPO's)")
    log_interval: int = param(1, "iterations (model_train_freq env steps each) per row of metrics")
    real_ratio: float = param(0.05, "share of real transitions in SAC's batches; the rest are model transitions",
                              range=(0.0, 1.0))
    model_train_freq: int = param(250, "env steps (per env) between refits of the model: an iteration", positive=True)
    rollout_batch_size: int = param(100_000, "branched rollouts started after each refit (MBPO's 400 per env step; "
                                    "on a CPU core 1-5 s per k-step, against SAC's 100+ s per iteration)",
                                    positive=True)
    rollout_schedule: tuple = param((20, 100, 1, 1), "[a, b, x, y]: the rollout length k grows from x at epoch a to "
                                    "y at epoch b (MBPO app. C)")
    epoch_length: int = param(1000, "env steps per epoch of the rollout schedule and of model_retain_epochs",
                              positive=True)
    model_retain_epochs: int = param(1, "epochs of model rollouts the model buffer holds", positive=True)
    termination: str = param("auto", "where model rollouts end: known (KNOWN_TERMINATIONS by env id) | learned (the "
                             "ensemble's classifier) | none | auto (known where listed, else none)", choices=TERMINATIONS)
    model_net_arch: tuple = param((200, 200, 200, 200), "hidden layer widths of each ensemble member (MBPO: 4 x 200)")
    model_activation: str = param("silu", "activation of the members (MBPO: swish = silu)")
    model_learning_rate: float = param(1e-3, "Adam step size of the ensemble", range=(0.0, math.inf), low_open=True)
    model_weight_decay: float = param(5e-5, "L2 weight decay of the ensemble's weights", range=(0.0, math.inf))
    n_members: int = param(7, "ensemble members, each on its own bootstrap resample", positive=True)
    n_elites: int = param(5, "members rollouts step through: the best on held-out data", positive=True)
    model_batch_size: int = param(256, "rows of each member's minibatch when fitting the model", positive=True)
    model_max_epochs: int = param(200, "at most this many epochs per refit (early stopping usually ends sooner)",
                                  positive=True)
    holdout_fraction: float = param(0.2, "fraction of the real data held out for early stopping and elites",
                                    range=(0.0, 0.5))
    max_holdout: int = param(5000, "at most this many held-out transitions", nonnegative=True)
    patience: int = param(5, "epochs without a 1% held-out improvement before a refit stops", nonnegative=True)
    error_horizon: int = param(5, "k of the k-step prediction error logged every iteration", positive=True)

    def validate(self) -> None:
        super().validate()
        s = self.rollout_schedule
        if len(s) != 4 or not s[1] > s[0] >= 0 or min(s[2:]) < 1:
            raise ConfigError(f"rollout_schedule must be [a, b, x, y] with 0 <= a < b and lengths x, y >= 1; got {s!r}")
        if self.n_elites > self.n_members:
            raise ConfigError(f"n_elites ({self.n_elites}) cannot exceed n_members ({self.n_members})")
        if self.optimize_memory_usage:
            raise ConfigError("optimize_memory_usage is not supported by mbpo: the model is fitted to the real buffer's "
                              "stored next observations; leave it false")
        if self.model_train_freq % self.train_freq:
            raise ConfigError(f"model_train_freq ({self.model_train_freq}) must be a multiple of train_freq "
                              f"({self.train_freq})")


def rollout_length(schedule: tuple, epoch: int) -> int:
    """k at an epoch: x until epoch a, linear to y at epoch b, y after; floored (as the MBPO code)."""
    a, b, x, y = schedule
    return int(x + min(max((epoch - a) / (b - a), 0.0), 1.0) * (y - x))


def concat(a: Batch, b: Batch) -> Batch:
    """The transitions of two batches, a's first, as float32 (a MuJoCo env's real observations are float64)."""
    return Batch(*(torch.cat([getattr(a, f.name).float(), getattr(b, f.name).float()])
                   for f in fields(Batch) if f.name != "discount"))


class MBPO(SAC):
    """MBPO: SAC on a mix of real transitions and branched rollouts of a probabilistic ensemble."""

    algo = "mbpo"
    Config = MBPOConfig

    def setup(self) -> None:
        c = self.config
        obs_space, space = self.envs.observation_space, self.envs.action_space
        check_model_spaces(self.algo, obs_space, space)
        if c.termination == "known" and self.env_id not in KNOWN_TERMINATIONS:
            raise ConfigError(f"termination='known': no known termination for {self.env_id!r} (KNOWN_TERMINATIONS has "
                              f"{', '.join(KNOWN_TERMINATIONS)}); use termination=learned or none")
        super().setup()  # SAC's actor, critics, temperature, the real buffer D_env (self.replay)
        known = c.termination in ("auto", "known") and self.env_id in KNOWN_TERMINATIONS
        self.terminated_fn = KNOWN_TERMINATIONS[self.env_id] if known else None
        self.ensemble = ProbabilisticEnsemble(
            obs_space.shape[0], space.shape[0], c.n_members, c.n_elites, c.model_net_arch, c.model_activation,
            learn_reward=True, learn_termination=c.termination == "learned", learning_rate=c.model_learning_rate,
            weight_decay=c.model_weight_decay)
        # D_model: (rows, M) for the longest k; rows_kept(k) of its newest rows are sampled.
        self.rollouts_per_epoch = max(1, round(c.epoch_length / (c.model_train_freq * self.envs.num_envs)))
        rows = self.rows_kept(max(c.rollout_schedule[2:]))
        model_obs = gym.spaces.Box(-np.inf, np.inf, obs_space.shape, np.float32)  # (the model predicts float32)
        self.model_replay = ReplayBuffer(rows * c.rollout_batch_size, c.rollout_batch_size, model_obs, space)
        self.counters.fitted = False  # (SAC's counters) the ensemble has been fitted: rollouts can start
        self.counters.rollout_length = c.rollout_schedule[2]

    def modules(self) -> dict:
        mods = {**super().modules(), "ensemble": self.ensemble, "ensemble_optimizer": self.ensemble.optimizer}
        if self.config.save_replay_buffer:  # (else a loaded agent's D_model is refilled by its first rollout)
            mods["model_buffer"] = self.model_replay
        return mods

    def rows_kept(self, k: int) -> int:
        """Rows of D_model sampled at rollout length k: model_retain_epochs epochs of k-step rollouts."""
        return self.config.model_retain_epochs * self.rollouts_per_epoch * k

    # ---- the iteration -------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        metrics: dict[str, float] = {}
        if self.num_steps >= c.learning_starts and len(self.replay) > 0:
            metrics.update(self.fit_model())
            metrics.update(self.branched_rollouts())
        for _ in range(c.model_train_freq // c.train_freq):
            if collect_transitions(self, self.explore) and self.counters.fitted:
                for _ in range(gradient_steps_per_round(c, self.envs.num_envs)):
                    update = self.update(self.mixed_batch().to(self.device))
                metrics.update(update)
        return metrics

    def fit_model(self) -> dict[str, float]:
        """The model's errors on the transitions collected since its last fit, then its refit to all
        of D_env (Alg. 2 line 3)."""
        c = self.config
        metrics = refit(self.ensemble, self.replay, c.model_train_freq // self.envs.num_envs, self.device,
                        measure=self.counters.fitted, error_horizon=c.error_horizon, batch_size=c.model_batch_size,
                        max_epochs=c.model_max_epochs, holdout_fraction=c.holdout_fraction,
                        max_holdout=c.max_holdout, patience=c.patience)
        self.counters.fitted = True
        return metrics

    @torch.no_grad()
    def branched_rollouts(self) -> dict[str, float]:
        """rollout_batch_size k-step rollouts of the policy in the model from states of D_env, into
        D_model: a row per step, each branch through a random elite; a predicted termination ends a
        branch (stored terminal, invalid in the rows after it) (Alg. 2 lines 5-8)."""
        c, M = self.config, self.config.rollout_batch_size
        epoch = max(0, self.num_steps - c.learning_starts) // c.epoch_length
        k = self.counters.rollout_length = rollout_length(c.rollout_schedule, epoch)
        start = time.perf_counter()
        obs = self.replay.sample(M).obs.float().to(self.device)  # s ~ D_env, (M, d_obs)
        alive = torch.arange(M, device=self.device)  # the branches still running
        d_obs, d_act = obs.shape[1], self.scale.dim
        steps = terminated_steps = 0
        for t in range(k):
            action = self.actor(self.actor.encoder(obs))  # a ~ pi(.|s) in the unit box, (n, d_act)
            step = self.ensemble.step(obs, action, self.ensemble.random_members(len(obs)))
            if self.terminated_fn is not None:
                ended = self.terminated_fn(step.next_obs)
            elif step.terminated is not None:
                ended = step.terminated
            else:
                ended = torch.zeros(len(obs), dtype=torch.bool, device=self.device)
            row = {"obs": torch.zeros(M, d_obs), "actions": torch.zeros(M, d_act), "rewards": torch.zeros(M),
                   "next_obs": torch.zeros(M, d_obs), "terminated": torch.zeros(M), "truncated": torch.zeros(M),
                   "valid": torch.zeros(M, dtype=torch.bool)}  # (M, .): the dead branches stay invalid
            for name, value in (("obs", obs), ("actions", action), ("rewards", step.reward),
                                ("next_obs", step.next_obs), ("terminated", ended.float()),
                                ("truncated", (~ended).float() if t == k - 1 else torch.zeros(len(obs))),
                                ("valid", torch.ones(len(obs), dtype=torch.bool))):
                row[name][alive.cpu()] = value.cpu().to(row[name].dtype)
            self.model_replay.add(*(row[n].numpy() for n in ("obs", "actions", "rewards", "next_obs", "terminated",
                                                             "truncated", "valid")))
            steps += len(obs)
            terminated_steps += int(ended.sum())
            keep = ~ended
            obs, alive = step.next_obs[keep], alive[keep]
            if len(alive) == 0:
                break
        return {"rollout_length": float(k), "rollout_mean_steps": steps / M, "model_terminated": terminated_steps / steps,
                "model_buffer_size": float(self.model_transitions()), "rollout_seconds": time.perf_counter() - start}

    # ---- SAC's batches ------------------------------------------------------------------------------
    def kept_window(self) -> int:
        """Rows of D_model that may be sampled now: the newest rows_kept(k) (fewer while it fills)."""
        r = self.model_replay
        return min(self.rows_kept(self.counters.rollout_length), len(r) // r.n_envs)

    def model_transitions(self) -> int:
        """Valid model transitions in the rows sampled."""
        r, n = self.model_replay, self.kept_window()
        rows = (r.pos - 1 - torch.arange(n)) % r.rows
        return int(r.valid[rows].sum())

    def sample_model(self, n: int) -> Batch:
        """n transitions drawn uniformly from the valid ones of D_model's kept rows."""
        r, window = self.model_replay, self.kept_window()
        row = (r.pos - 1 - torch.randint(window, (n,))) % r.rows
        branch = torch.randint(r.n_envs, (n,))
        bad = ~r.valid[row, branch]
        while bad.any():  # the rows of branches that had terminated
            m = int(bad.sum())
            row[bad] = (r.pos - 1 - torch.randint(window, (m,))) % r.rows
            branch[bad] = torch.randint(r.n_envs, (m,))
            bad = ~r.valid[row, branch]
        return r.batch(row, branch)

    def mixed_batch(self) -> Batch:
        """SAC's batch: int(batch_size * real_ratio) transitions of D_env, the rest of D_model (the
        MBPO code's split), real ones first."""
        c = self.config
        n_real = int(c.batch_size * c.real_ratio)
        real = self.replay.sample(n_real)
        if n_real == c.batch_size:
            return real
        return concat(real, self.sample_model(c.batch_size - n_real))

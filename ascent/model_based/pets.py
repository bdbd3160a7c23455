"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018, arXiv:1805.12114).

Model-predictive control with a learned model, no policy and no value function:
  1. `learning_starts` env steps of uniformly random actions fill the replay buffer;
  2. every iteration (train_freq env steps; 200 by default, one Pendulum episode: PETS refits after
     every episode) the probabilistic ensemble (ensemble.py) is refitted to all the real transitions,
     continuing from its weights, with early stopping on a held-out split;
  3. at every env step, CEM searches action sequences a_0..a_{H-1} for the highest expected return
         J(a) = 1/P sum_p sum_{t<H} r(s_t^p, a_t),           s_{t+1}^p ~ f_{b(p, t)}(s_t^p, a_t)   (PETS sec. 5)
     with P particles per candidate sequence propagated through the ensemble by trajectory sampling
     (TS-inf: particle p keeps member b(p); TS-1: b(p, t) redrawn every step), r the known reward
     (ensemble.KNOWN_REWARDS) or the ensemble's sampled reward; the first action of CEM's final mean
     is executed, and the next step's search starts from the mean shifted by one step.

CEM as the PETS code runs it: samples from a normal truncated at 2 std, whose std is shrunk so that
the samples stay within the action bounds; the `cem_elites` best of `population` refit the mean and
variance, smoothed by alpha: mean <- alpha mean + (1 - alpha) mean(elites). All N envs x population
x particles rows go through the ensemble in one batched call per horizon step.

Before each refit the model's one-step and k-step prediction errors on the transitions collected
since the last one (which it has not trained on: what it faced while planning) are logged, with
the fit's held-out MSE and the milliseconds of planning per env step (plan_ms).

Bounded Box actions and flat Box observations only. The defaults are the paper's planner, which
costs about 10 s of one CPU core per env step (2.4 GFLOP per horizon step, 150 of them, nearly all
in the members' matmuls): on a CPU, plan smaller (benchmarks/model_based_bench.py's Pendulum row).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ascent.algorithms.common.offpolicy import collect_transitions
from ascent.buffers.replay import ReplayBuffer
from ascent.core.agent import Agent, Counters
from ascent.core.config import NetworkConfig, param
from ascent.errors import ConfigError
from ascent.model_based.ensemble import KNOWN_REWARDS, ProbabilisticEnsemble, check_model_spaces, refit

PROPAGATIONS = ("ts_inf", "ts_1")
REWARD_MODELS = ("auto", "known", "learned")


@dataclass
class PETSConfig(NetworkConfig):
    net_arch: tuple = param((200, 200, 200, 200), "hidden layer widths of each ensemble member (PETS: 4 x 200)")
    activation: str = param("silu", "activation of the members (PETS: swish = silu)")
    ortho_init: bool = param(False, "unused: the members' weights are drawn from PETS's truncated normal")
    normalize_obs: bool = param(False, "unused: the ensemble always normalizes its inputs by statistics of the data")
    learning_rate: float = param(1e-3, "Adam step size of the ensemble", range=(0.0, math.inf), low_open=True)
    weight_decay: float = param(5e-5, "L2 weight decay of the ensemble's weights", range=(0.0, math.inf))
    n_members: int = param(5, "ensemble members, each on its own bootstrap resample", positive=True)
    n_elites: int | None = param(None, "members the planner samples: the best on held-out data (None: all; "
                                 "MBPO: 5 of 7)", positive=True)
    min_logvar: float = param(-10.0, "initial lower bound of the predicted log-variance (learned)",
                              range=(-math.inf, math.inf))
    max_logvar: float = param(0.5, "initial upper bound of the predicted log-variance (learned)",
                              range=(-math.inf, math.inf))
    reward_model: str = param("auto", "known | learned | auto (known where ensemble.KNOWN_REWARDS has the env: "
                              "Pendulum-v1; learned otherwise)", choices=REWARD_MODELS)
    learn_termination: bool = param(False, "learn a termination classifier; a planned particle's reward stops there")
    buffer_size: int = param(1_000_000, "replay buffer capacity in transitions (the model is fitted to all of it)",
                             positive=True)
    learning_starts: int = param(200, "env steps of uniformly random actions before the first fit", nonnegative=True)
    train_freq: int = param(200, "env steps (per env) between refits of the ensemble: an iteration", positive=True)
    save_replay_buffer: bool = param(True, "write the replay buffer next to each checkpoint (resume refits on it)")
    batch_size: int = param(32, "rows of each member's minibatch in the ensemble's gradient steps (PETS: 32)",
                            positive=True)
    model_epochs: int = param(100, "at most this many epochs per refit (early stopping usually ends sooner)",
                              positive=True)
    holdout_fraction: float = param(0.2, "fraction of the data held out for early stopping and elites",
                                    range=(0.0, 0.5))
    max_holdout: int = param(5000, "at most this many held-out transitions (MBPO)", nonnegative=True)
    patience: int = param(5, "epochs without a 1% held-out improvement before a refit stops (MBPO)", nonnegative=True)
    horizon: int = param(30, "planning horizon H in env steps", positive=True)
    population: int = param(500, "CEM candidate action sequences per iteration", positive=True)
    cem_elites: int = param(50, "best candidates that refit CEM's distribution", positive=True)
    cem_iterations: int = param(5, "CEM iterations per env step", positive=True)
    cem_alpha: float = param(0.1, "smoothing: new mean = alpha old + (1 - alpha) elite mean (same for the variance)",
                             range=(0.0, 1.0))
    particles: int = param(20, "trajectory samples P per candidate; its return is their mean", positive=True)
    propagation: str = param("ts_inf", "trajectory sampling: ts_inf (a particle keeps its member) | ts_1 (redrawn "
                             "every step)", choices=PROPAGATIONS)
    error_horizon: int = param(5, "k of the k-step prediction error logged every iteration", positive=True)

    def validate(self) -> None:
        super().validate()
        if self.normalize_reward:
            raise ConfigError("normalize_reward is not supported by pets (the model learns, and the planner sums, the "
                              "env's own rewards); leave it false")
        if self.cem_elites > self.population:
            raise ConfigError(f"cem_elites ({self.cem_elites}) cannot exceed population ({self.population})")
        if self.n_elites is not None and self.n_elites > self.n_members:
            raise ConfigError(f"n_elites ({self.n_elites}) cannot exceed n_members ({self.n_members})")
        if not self.min_logvar < self.max_logvar:
            raise ConfigError(f"min_logvar ({self.min_logvar}) must be below max_logvar ({self.max_logvar})")


def cem(objective: Callable[[torch.Tensor], torch.Tensor], mean: torch.Tensor, var: torch.Tensor, low: torch.Tensor,
        high: torch.Tensor, population: int, n_elites: int, iterations: int, alpha: float,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """The cross-entropy method over action sequences (the PETS code's optimizer), for N problems at
    once: mean, var (N, H, A) -> the final mean (N, H, A). `objective` maps candidates
    (N, population, H, A) to returns (N, population), to be maximized; low, high (A,) the bounds."""
    for _ in range(iterations):
        # std shrunk so that mean +- 2 std, the truncation, stays within [low, high]
        var = torch.minimum(torch.minimum(mean - low, high - mean).square() / 4.0, var)
        noise = torch.nn.init.trunc_normal_(mean.new_empty(mean.shape[0], population, *mean.shape[1:]),
                                            0.0, 1.0, -2.0, 2.0, generator=generator)
        candidates = mean.unsqueeze(1) + var.sqrt().unsqueeze(1) * noise  # (N, pop, H, A)
        returns = objective(candidates).nan_to_num(nan=-math.inf)  # (N, pop)
        best = returns.topk(n_elites, dim=1).indices  # (N, K)
        elites = candidates.gather(1, best[..., None, None].expand(-1, -1, *mean.shape[1:]))  # (N, K, H, A)
        mean = alpha * mean + (1.0 - alpha) * elites.mean(1)
        var = alpha * var + (1.0 - alpha) * elites.var(1, unbiased=False)
    return mean


class PETS(Agent):
    """PETS: MPC by CEM through a probabilistic ensemble, refitted every train_freq env steps."""

    algo = "pets"
    Config = PETSConfig

    def setup(self) -> None:
        c = self.config
        obs_space, space = self.envs.observation_space, self.envs.action_space
        check_model_spaces(self.algo, obs_space, space)
        if c.reward_model == "known" and self.env_id not in KNOWN_REWARDS:
            raise ConfigError(f"reward_model='known': no known reward for {self.env_id!r} (ensemble.KNOWN_REWARDS has "
                              f"{', '.join(KNOWN_REWARDS)}); use reward_model=learned")
        known = c.reward_model != "learned" and self.env_id in KNOWN_REWARDS
        self.reward_fn = KNOWN_REWARDS[self.env_id] if known else None
        self.ensemble = ProbabilisticEnsemble(
            obs_space.shape[0], space.shape[0], c.n_members, c.n_elites, c.net_arch, c.activation,
            learn_reward=not known, learn_termination=c.learn_termination, min_logvar=c.min_logvar,
            max_logvar=c.max_logvar, learning_rate=c.learning_rate, weight_decay=c.weight_decay)
        self.replay = ReplayBuffer(c.buffer_size, self.envs.num_envs, obs_space, space)
        self.save_replay = c.save_replay_buffer
        self.low, self.high = (torch.as_tensor(b, dtype=torch.float32, device=self.device)
                               for b in (space.low, space.high))
        self.center = ((space.low + space.high) / 2).astype(np.float32)  # CEM's initial mean, and its variance:
        self.init_var = torch.as_tensor((space.high - space.low) ** 2 / 16.0, dtype=torch.float32, device=self.device)
        # plan: each env's warm start, CEM's last mean shifted by a step (H, A per env); fitted: a model to plan with
        self.counters = Counters(plan=np.tile(self.center, (self.envs.num_envs, c.horizon, 1)), fitted=False)
        self.plan_seconds, self.planned = 0.0, 0

    def modules(self) -> dict:
        return {"ensemble": self.ensemble, "ensemble_optimizer": self.ensemble.optimizer, "counters": self.counters}

    # ---- acting: model-predictive control ----------------------------------------------------------------
    def act_batch(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """A plan from CEM's initial distribution for each observation (no warm start: a batch's rows
        need not be the episodes of the last call). deterministic: CEM's noise from a generator seeded
        by the agent's seed, so the same observations give the same actions."""
        plan = np.tile(self.center, (len(obs), self.config.horizon, 1))
        generator = torch.Generator(self.device).manual_seed(self.seed) if deterministic else None
        return self.mpc(obs, plan, generator)

    @torch.inference_mode()
    def mpc(self, obs: np.ndarray, plan: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
        """The first action of CEM's plan for each observation (N, d_obs) -> (N, A), CEM started from
        `plan` (N, H, A), which is then shifted in place: the next step's warm start."""
        c = self.config
        start = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        mean = torch.as_tensor(plan, device=self.device)
        var = self.init_var.expand_as(mean)
        mean = cem(lambda actions: self.expected_returns(start, actions, generator), mean, var, self.low, self.high,
                   c.population, c.cem_elites, c.cem_iterations, c.cem_alpha, generator)
        mean = mean.cpu().numpy()
        plan[:, :-1], plan[:, -1] = mean[:, 1:], self.center
        return mean[:, 0]

    def expected_returns(self, obs: torch.Tensor, actions: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """J of every candidate: start states (N, d_obs), candidates (N, pop, H, A) -> (N, pop), the
        mean over its P particles' returns."""
        return self.particle_returns(obs, actions, generator).mean(0)

    def particle_returns(self, obs: torch.Tensor, actions: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """(P, N, pop) the summed (discounted) rewards of each particle's sampled trajectory, every
        candidate's P particles starting from its env's state, all rows one batch per horizon step."""
        c, ens = self.config, self.ensemble
        N, pop, H, A = actions.shape
        P, E, d = c.particles, ens.n_elites, obs.shape[-1]
        rows = P * N * pop  # row (p, n, i): particle p of env n's candidate i
        state = obs[None, :, None].expand(P, N, pop, d).reshape(rows, d)
        steps = actions.permute(2, 0, 1, 3).reshape(H, 1, N * pop, A)  # (H, 1, N pop, A)
        if c.propagation == "ts_inf" and P % E == 0:
            # Balanced TS-inf, as the PETS code: particles p < P/E go through elite 0, the next P/E
            # through elite 1...: the rows viewed (E, rows / E, .) are the members' blocks, no regrouping.
            members = None if E == ens.n_members else ens.elites  # (all of them: in any order)

            def model_step(s: torch.Tensor, a: torch.Tensor):
                grouped = s.view(E, -1, d)
                return ens.sample(ens(grouped, a.view(E, -1, A), members), grouped, generator)
        else:  # any member of any row: TS-1 redraws them every step, TS-inf draws them once
            member = ens.random_members(rows, generator)

            def model_step(s: torch.Tensor, a: torch.Tensor):
                m = ens.random_members(rows, generator) if c.propagation == "ts_1" else member
                return ens.step(s, a, m, generator)
        total = torch.zeros(rows, device=obs.device)
        alive = torch.ones(rows, device=obs.device)
        for t in range(H):
            action = steps[t].expand(P, -1, -1).reshape(rows, A)
            step = model_step(state, action)
            reward = self.reward_fn(state, action) if self.reward_fn is not None else step.reward.reshape(rows)
            total += alive * reward  # (undiscounted, as PETS sums them; gamma is unused)
            if step.terminated is not None:  # no reward after a predicted termination
                alive = alive * (~step.terminated.reshape(rows)).float()
            state = step.next_obs.reshape(rows, d)
        return total.view(P, N, pop)

    def explore(self, obs: np.ndarray, warmup: bool) -> tuple[np.ndarray, np.ndarray]:
        """Uniformly random actions until the first fit, then MPC warm-started from each env's plan."""
        if warmup or not self.counters.fitted:
            space = self.envs.action_space
            action = self.rng.uniform(space.low, space.high, (len(obs), *space.shape)).astype(np.float32)
            return action, action
        start = time.perf_counter()
        action = self.mpc(obs, self.counters.plan)
        self.plan_seconds += time.perf_counter() - start
        self.planned += 1
        return action, action

    def end_plans(self, done: np.ndarray) -> None:
        """A new episode starts from CEM's initial mean, not from the last episode's plan."""
        self.counters.plan[done] = self.center

    # ---- the iteration ---------------------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        c = self.config
        self.plan_seconds, self.planned = 0.0, 0
        started = collect_transitions(self, self.explore, self.end_plans)
        metrics = {"plan_ms": 1000.0 * self.plan_seconds / self.planned} if self.planned else {}
        if not started:
            return metrics
        metrics.update(refit(
            self.ensemble, self.replay, c.train_freq // self.envs.num_envs, self.device, measure=self.counters.fitted,
            error_horizon=c.error_horizon, batch_size=c.batch_size, max_epochs=c.model_epochs,
            holdout_fraction=c.holdout_fraction, max_holdout=c.max_holdout, patience=c.patience))
        self.counters.fitted = True
        return metrics

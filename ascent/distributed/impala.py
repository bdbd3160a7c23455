"""IMPALA: Importance Weighted Actor-Learner Architecture (Espeholt et al. 2018, arXiv:1802.01561).

Actors act with the behaviour policy mu, the weights they were last sent, and send fixed-length
segments without waiting for the learner; each actor keeps `in_flight` requests queued, so it
starts its next segment as soon as it has sent one. The learner (in the driver) batches
`segments_per_batch` segments and, per batch, takes one gradient step on

  L = -E[rho_s log pi(a_s|x_s) (r_s + gamma v_{s+1} - V(x_s))]      (the rho-weighted policy gradient)
      + vf_coef E[(v_s - V(x_s))^2] - ent_coef E[H(pi(.|x_s))]

with the V-trace targets v_s (eq. 1; ascent.algorithms.common.returns.vtrace), truncated at
rho_bar and c_bar, computed with the learner's current pi and V on the behaviour policy's data.
The learner then publishes its weights (every `broadcast_interval` updates); the policy lag (learner
versions between the weights that acted and the weights that learn) is logged. A dead actor is
replaced and its segment in flight dropped (ascent.cluster.pool).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ascent.algorithms.common.returns import explained_variance, vtrace
from ascent.cluster.weights import WeightBroadcast
from ascent.core.agent import Agent, Counters
from ascent.core.config import param
from ascent.distributed.common import DistributedConfig, policy_options, segment_metrics, stack_segments, start_runners
from ascent.nets.optim import OptimizerStep
from ascent.nets.policies import ActorCritic


@dataclass
class IMPALAConfig(DistributedConfig):
    n_envs: int = param(8, "envs per actor")
    n_steps: int = param(64, "segment (unroll) length T, in steps of every env of an actor", positive=True)
    segments_per_batch: int = param(2, "segments in one learner batch", positive=True)
    in_flight: int = param(2, "segment requests queued at each actor (2: it never waits for the learner)",
                           positive=True)
    broadcast_interval: int = param(1, "learner updates between weight broadcasts", positive=True)
    learning_rate: float = param(1e-3, "Adam step size", range=(0.0, math.inf), low_open=True)
    adam_eps: float = param(1e-5, "Adam epsilon", range=(0.0, math.inf), low_open=True)
    rho_bar: float = param(1.0, "V-trace truncation of the importance weights in the targets and the gradient",
                           range=(0.0, math.inf), low_open=True)
    c_bar: float = param(1.0, "V-trace truncation of the trace coefficients c_s", range=(0.0, math.inf), low_open=True)
    vf_coef: float = param(0.5, "value loss coefficient", range=(0.0, math.inf))
    ent_coef: float = param(0.0, "entropy bonus coefficient", range=(0.0, math.inf))
    max_grad_norm: float = param(40.0, "global gradient-norm clip", range=(0.0, math.inf), low_open=True)
    share_torso: bool = param(False, "one torso for actor and critic")
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy (Box actions)")
    log_interval: int = param(10, "iterations (learner updates) per row of metrics")
    checkpoint_seconds: float = param(120.0)


class IMPALA(Agent):
    """Asynchronous actors, one learner with V-trace off-policy correction."""

    algo = "impala"
    Config = IMPALAConfig

    def setup(self) -> None:
        c = self.config
        self.policy = ActorCritic.from_config(self.envs.observation_space, self.envs.action_space, c,
                                              **policy_options(c))
        self.step = OptimizerStep(self.policy, c.learning_rate, eps=c.adam_eps, max_grad_norm=c.max_grad_norm)
        self.counters = Counters(n_updates=0)
        self.broadcast = WeightBroadcast()
        self.runners = None  # the actors: started by the first iteration of a learn(), released at its end
        self.published_at = None  # n_updates when the weights were last published

    def modules(self) -> dict:
        return {"policy": self.policy, "optimizer": self.step.optimizer, "counters": self.counters}

    def publish(self) -> None:
        self.broadcast.publish(self.policy)
        self.published_at = self.counters.n_updates

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        start = time.perf_counter()
        if self.runners is None:  # the first iteration of a learn(): actors started, weights out, actors busy
            self.runners = start_runners(self, c.n_steps)
            self.publish()
            for index in range(len(self.runners)):
                for _ in range(c.in_flight):
                    self.runners.submit(index, "sample", *self.broadcast.handle())
        # 1. The next segments_per_batch segments, from whichever actors finish first; each actor is
        #    sent its next request (with the newest weights) as soon as one arrives.
        segments = []
        while len(segments) < c.segments_per_batch:
            for result in self.runners.wait():
                while self.runners.in_flight(result.index) < c.in_flight:  # (a replaced actor gets its queue anew)
                    self.runners.submit(result.index, "sample", *self.broadcast.handle())
                if not result.lost:
                    segments.append(result.value)
        waited = time.perf_counter() - start
        for seg in segments:
            self.record_episodes(seg["episodes"])
            self.num_steps += seg["steps"]
        # 2. V-trace targets with the learner's pi and V, one gradient step.
        metrics = self.update(stack_segments(segments, self.device))
        metrics.update(segment_metrics(segments, self.broadcast.version))
        self.counters.n_updates += 1
        if self.counters.n_updates - self.published_at >= c.broadcast_interval:
            self.publish()
        elapsed = time.perf_counter() - start
        metrics.update(learner_utilisation=1.0 - waited / max(elapsed, 1e-9), actor_restarts=float(self.runners.restarts))
        return metrics

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        c = self.config
        T, N = batch["rewards"].shape
        x = batch["x"].flatten(0, 1)  # (T N, *x_shape)
        dist, values = self.policy(x)
        target_logprobs = dist.log_prob(batch["actions"].flatten(0, 1)).view(T, N)
        values = values.view(T, N)
        with torch.no_grad():  # V(x_{t+1}): the next step's, V(x_T) after the last, V(final obs) where truncated
            next_values = torch.cat([values[1:], self.policy.value(batch["last_x"]).unsqueeze(0)])
            if batch["bootstrap"].any():
                next_values[batch["bootstrap"]] = self.policy.value(batch["final_x"][batch["bootstrap"]])
        valid = batch["valid"].float()
        cut = batch["dones"] | ~batch["valid"]  # (an autoreset step starts no trace either)
        vt = vtrace(batch["logprobs"], target_logprobs.detach(), batch["rewards"], values.detach(), next_values,
                    batch["terminated"], cut, c.gamma, c.rho_bar, c.c_bar)

        def mean(v: torch.Tensor) -> torch.Tensor:
            return (v * valid).sum() / valid.sum().clamp(min=1.0)

        policy_loss = -mean(target_logprobs * vt.pg_advantages)
        value_loss = mean((vt.vs - values).square())
        entropy = mean(dist.entropy().view(T, N))
        loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * entropy
        self.step(loss)
        names = ("loss", "policy_loss", "value_loss", "entropy", "rho_mean")
        metrics = dict(zip(names, torch.stack([loss, policy_loss, value_loss, entropy,
                                               mean(vt.clipped_rhos)]).detach().tolist()))
        metrics["explained_variance"] = explained_variance(values.detach()[batch["valid"]], vt.vs[batch["valid"]])
        return metrics

    def release(self) -> None:
        """Stop the actors (the Ray session stays for other agents; it ends with the process)."""
        if self.runners is not None:
            self.runners.shutdown()
            self.runners = None

"""The probabilistic ensemble of dynamics models of PETS (Chua et al. 2018, arXiv:1805.12114, sec. 4),
fitted as MBPO fits it (Janner et al. 2019, arXiv:1906.08253, app. C): the model of PETS and MBPO.

Each of E members maps (obs, action), normalized by statistics fitted to the training inputs, to a
Gaussian over the target y = (obs' - obs, reward) (the reward only when it is learned), and where
asked to a termination logit (a Bernoulli, fitted by cross-entropy):

  mean mu, log-variance l, soft-bounded by learned bounds (the PETS code's clamp):
      l <- max_logvar - softplus(max_logvar - l);   l <- min_logvar + softplus(l - min_logvar)
  loss, per member: Gaussian NLL  sum_dims 1/2 [(mu - y)^2 e^-l + l + log 2 pi]   (PETS sec. 4.1)
                    + 0.01 (sum max_logvar - sum min_logvar)  (keeps the bounds tight)  + L2 weight decay

The members are one set of weights (E, in, out) applied with torch.baddbmm: block k of an (E, M, in)
input goes through member k, so every member computes in the same call, each on its own rows. Each
member trains on its own bootstrap resample of the training split (drawn with replacement), which
is what makes their disagreement measure the model's (epistemic) uncertainty, and the variance each
predicts the env's own noise (aleatoric). `fit` holds out a split, stops on the held-out MSE (no
member improved by 1% for `patience` epochs), restores each member's best epoch and ranks the
members: the `n_elites` best are the ones predictions are drawn from (MBPO: 5 of 7).

Trajectory sampling (PETS sec. 5): a particle's next state is drawn from the Gaussian of one member,
`step(obs, action, member)` with the member of every row: TS-1 draws a new member every step
(`random_members` each step), TS-inf keeps a particle's member for the whole trajectory (drawn once).

The reward is learned (an output of the ensemble) or known: KNOWN_REWARDS holds reward functions of
(obs, action) by env id (Pendulum-v1), which a planner uses instead (learn_reward=False then).

`prediction_error` is the model's quality on real transitions: one-step and k-step MSE of the
elites' mean predictions, logged every iteration by the agents that plan or roll out with it;
`refit` is their model step (measure it on the newest transitions, then fit it to all of them) and
`check_model_spaces` the spaces they accept.
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ascent.buffers.replay import ReplayBuffer
from ascent.errors import EnvError

from ascent.nets.layers import check_activation
from ascent.nets.optim import OptimizerStep

LOG_2PI = math.log(2.0 * math.pi)


class Prediction(NamedTuple):
    """The members' Gaussians: `mean` and `logvar` (..., out) over (obs' - obs, reward if learned),
    `terminated_logit` (...) where termination is learned, else None."""

    mean: torch.Tensor
    logvar: torch.Tensor
    terminated_logit: torch.Tensor | None


class Transition(NamedTuple):
    """A sampled model step: next_obs (n, d_obs); reward (n,) or None (known reward); terminated
    (n,) bool or None (termination not learned)."""

    next_obs: torch.Tensor
    reward: torch.Tensor | None
    terminated: torch.Tensor | None


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log N(target; mean, e^logvar), elementwise: 1/2 [(target - mean)^2 e^-logvar + logvar + log 2 pi]."""
    return 0.5 * ((target - mean).square() * torch.exp(-logvar) + logvar + LOG_2PI)


def bootstrap(rows: torch.Tensor, n_members: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n_members, n) each member's bootstrap resample of the n data rows `rows`: n draws with
    replacement, independent between members (each sees ~63% of the rows, some several times)."""
    n = len(rows)
    return rows[torch.randint(n, (n_members, n), generator=generator, device=rows.device)]


class ProbabilisticEnsemble(nn.Module):
    """E Gaussian MLPs (obs, action) -> (obs' - obs[, reward]) as one batched module, with its own
    Adam (`optimizer`, for checkpoints) and input statistics (buffers, set by `fit`).

    hidden/activation: each member's MLP (PETS: 4 x 200 swish = silu). Weights are drawn from a
    normal truncated at 2 std, std 1/(2 sqrt(fan_in)), biases zero (the PETS and MBPO code).
    min_logvar/max_logvar: the learned bounds' initial values (PETS: -10 and 0.5). A predicted
    log-variance lies in [min_logvar, max_logvar + softplus(min_logvar - max_logvar)]: the lower clamp,
    applied last, may lift it past the upper bound by that much (3e-5 at the initial bounds).
    """

    def __init__(self, obs_dim: int, action_dim: int, n_members: int = 5, n_elites: int | None = None,
                 hidden: Sequence[int] = (200, 200, 200, 200), activation: str = "silu", learn_reward: bool = True,
                 learn_termination: bool = False, min_logvar: float = -10.0, max_logvar: float = 0.5,
                 learning_rate: float = 1e-3, weight_decay: float = 5e-5):
        super().__init__()
        n_elites = n_members if n_elites is None else n_elites
        if not 1 <= n_elites <= n_members:
            raise ValueError(f"n_elites must be in [1, n_members={n_members}], got {n_elites}")
        if not min_logvar < max_logvar:
            raise ValueError(f"min_logvar ({min_logvar}) must be below max_logvar ({max_logvar})")
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.n_members, self.n_elites = n_members, n_elites
        self.learn_reward, self.learn_termination = learn_reward, learn_termination
        self.out_dim = obs_dim + int(learn_reward)  # the Gaussian's dimensions
        in_dim = obs_dim + action_dim
        widths = [in_dim, *hidden, 2 * self.out_dim + int(learn_termination)]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:]):
            std = 1.0 / (2.0 * math.sqrt(a))
            weight = nn.init.trunc_normal_(torch.empty(n_members, a, b), 0.0, std, -2 * std, 2 * std)
            self.weights.append(nn.Parameter(weight))  # (E, in, out)
            self.biases.append(nn.Parameter(torch.zeros(n_members, 1, b)))  # (E, 1, out)
        self.layers = list(zip(self.weights, self.biases))  # (a plain list: ParameterList indexing costs ~5 us)
        self.max_logvar = nn.Parameter(torch.full((self.out_dim,), float(max_logvar)))
        self.min_logvar = nn.Parameter(torch.full((self.out_dim,), float(min_logvar)))
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_std", torch.ones(in_dim))
        self.register_buffer("elites", torch.arange(n_elites))  # the members predictions are drawn from
        self.activation = check_activation(activation)
        self.weight_decay = weight_decay
        self.gradient_step = OptimizerStep(self, learning_rate)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The ensemble's Adam (its state_dict goes in checkpoints beside the ensemble's)."""
        return self.gradient_step.optimizer

    # ---- predictions -----------------------------------------------------------------------------------
    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None) -> Prediction:
        """obs (K, M, d_obs), action (K, M, d_act) -> the Prediction of (K, M, .): block k through
        member k (K = E), or through member members[k] (a 1-D index of K members: the elites; their
        weights are gathered for the call, so pass None where every member is meant)."""
        x = (torch.cat([obs, action], -1) - self.input_mean) / self.input_std
        last = len(self.layers) - 1
        for i, (weight, bias) in enumerate(self.layers):
            if members is not None:
                weight, bias = weight[members], bias[members]
            x = torch.baddbmm(bias, x, weight)
            if i < last:
                x = self.activation(x)
        out = self.out_dim
        logvar = self.max_logvar - F.softplus(self.max_logvar - x[..., out:2 * out])  # soft upper bound
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)  # soft lower bound
        return Prediction(x[..., :out], logvar, x[..., 2 * out] if self.learn_termination else None)

    def predict(self, obs: torch.Tensor, action: torch.Tensor, member: torch.Tensor) -> Prediction:
        """Rows obs (n, d_obs), action (n, d_act), each through its member member[i] (n,) -> the
        Prediction of (n, .). The rows are grouped by member into an (E, width, .) batch (padded to
        the largest group), so the members still compute in one batched call."""
        n = obs.shape[0]
        order = torch.argsort(member, stable=True)
        by_member = member[order]
        counts = torch.bincount(member, minlength=self.n_members)
        width = int(counts.max())
        slot = torch.arange(n, device=obs.device) - (torch.cumsum(counts, 0) - counts)[by_member]  # rank in its group
        grouped_obs = obs.new_zeros(self.n_members, width, obs.shape[1])
        grouped_action = action.new_zeros(self.n_members, width, action.shape[1])
        grouped_obs[by_member, slot] = obs[order]
        grouped_action[by_member, slot] = action[order]
        pred = self(grouped_obs, grouped_action)
        back = torch.empty_like(order)
        back[order] = torch.arange(n, device=obs.device)  # row i sits at position back[i] of the sorted rows
        where = (by_member[back], slot[back])
        term = pred.terminated_logit
        return Prediction(pred.mean[where], pred.logvar[where], None if term is None else term[where])

    def sample(self, pred: Prediction, obs: torch.Tensor, generator: torch.Generator | None = None) -> Transition:
        """Draw y ~ N(mean, e^logvar) of a Prediction made at `obs`: next_obs = obs + y[:d_obs],
        reward = y[d_obs] where learned; terminated where the termination logit is > 0."""
        noise = torch.randn(pred.mean.shape, generator=generator, device=pred.mean.device)
        y = pred.mean + torch.exp(0.5 * pred.logvar) * noise
        reward = y[..., self.obs_dim] if self.learn_reward else None
        term = None if pred.terminated_logit is None else pred.terminated_logit > 0
        return Transition(obs + y[..., :self.obs_dim], reward, term)

    def step(self, obs: torch.Tensor, action: torch.Tensor, member: torch.Tensor,
             generator: torch.Generator | None = None) -> Transition:
        """One sampled model step of rows (n, .), row i through member member[i] (trajectory sampling)."""
        return self.sample(self.predict(obs, action, member), obs, generator)

    def random_members(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n,) members drawn uniformly from the elites: TS-1 draws them every step, TS-inf once."""
        return self.elites[torch.randint(self.n_elites, (n,), generator=generator, device=self.elites.device)]

    # ---- fitting -----------------------------------------------------------------------------------------
    def targets(self, obs: torch.Tensor, next_obs: torch.Tensor, reward: torch.Tensor | None) -> torch.Tensor:
        """y = (obs' - obs[, reward]) (n, out)."""
        delta = next_obs - obs
        return torch.cat([delta, reward.reshape(-1, 1)], -1) if self.learn_reward else delta

    def loss(self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor,
             terminated: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Each member's own batch (E, B, .): Gaussian NLL summed over dimensions, averaged over the
        batch and summed over members (so a member's gradient does not depend on E), the bounds'
        regularizer, L2 weight decay, and where learned the termination's cross-entropy."""
        pred = self(obs, action)
        nll = gaussian_nll(pred.mean, pred.logvar, target).sum(-1).mean(-1).sum()
        bounds = 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        decay = 0.5 * self.weight_decay * sum(w.square().sum() for w in self.weights)
        loss = nll + bounds + decay
        metrics = {"model_nll": nll.item() / self.n_members}
        if self.learn_termination:
            bce = F.binary_cross_entropy_with_logits(pred.terminated_logit, terminated, reduction="none").mean(-1).sum()
            loss = loss + bce
            metrics["model_termination_bce"] = bce.item() / self.n_members
        return loss, metrics

    @torch.no_grad()
    def member_mse(self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor,
                   terminated: torch.Tensor | None = None) -> torch.Tensor:
        """(E,) each member's MSE of its mean prediction on the same rows (n, .), plus, where
        termination is learned and `terminated` given, its termination cross-entropy (the held-out
        score that early stopping and the choice of elites read)."""
        expand = lambda x: x.unsqueeze(0).expand(self.n_members, -1, -1)  # noqa: E731
        pred = self(expand(obs), expand(action))
        score = (pred.mean - target).square().mean((1, 2))
        if self.learn_termination and terminated is not None:
            score = score + F.binary_cross_entropy_with_logits(
                pred.terminated_logit, terminated.expand(self.n_members, -1), reduction="none").mean(1)
        return score

    def fit(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor, reward: torch.Tensor | None = None,
            terminated: torch.Tensor | None = None, *, batch_size: int = 256, max_epochs: int = 100,
            holdout_fraction: float = 0.2, max_holdout: int = 5000, patience: int = 5,
            generator: torch.Generator | None = None) -> dict[str, float]:
        """Fit every member to real transitions (n, .) (reward (n,) where learned; terminated (n,)
        float 0/1 where learned), from the current weights (MBPO's and PETS's refits continue).

        A random `holdout_fraction` (at most max_holdout rows) is held out; each member draws its
        bootstrap resample of the rest, then trains in epochs of shuffled minibatches of batch_size
        rows each. After every epoch the held-out MSE of each member is measured (plus its termination
        cross-entropy where learned: `member_mse`): a member that
        improved on its best by more than 1% has this epoch kept as its best; when none did for
        more than `patience` epochs, or after max_epochs, each member is restored to its best epoch
        and the n_elites lowest held-out MSEs become the elites. Without held-out rows (too little
        data, holdout_fraction 0) it trains max_epochs and keeps every member's last weights.
        Returns {model_train_nll, model_holdout_mse, model_epochs}."""
        n, device = obs.shape[0], obs.device
        target = self.targets(obs, next_obs, reward)
        perm = torch.randperm(n, generator=generator, device=device)
        n_hold = min(max_holdout, int(n * holdout_fraction))
        hold, train = perm[:n_hold], perm[n_hold:]
        inputs = torch.cat([obs[train], action[train]], -1)
        self.input_mean.copy_(inputs.mean(0))
        std = inputs.std(0) if len(train) > 1 else torch.ones_like(self.input_std)
        self.input_std.copy_(torch.where(std < 1e-12, torch.ones_like(std), std))

        n_train, members = len(train), list(self.weights) + list(self.biases)  # the (E, ...) parameters
        boot = bootstrap(train, self.n_members, generator)  # (E, n_train)
        best_mse = torch.full((self.n_members,), math.inf, device=device)
        best = [p.detach().clone() for p in members]
        since, epoch, metrics = 0, 0, {}
        for epoch in range(1, max_epochs + 1):
            shuffled = boot.gather(1, torch.argsort(torch.rand(boot.shape, generator=generator, device=device), 1))
            for start in range(0, n_train, batch_size):
                rows = shuffled[:, start:start + batch_size]  # (E, B): each member its own rows
                loss, metrics = self.loss(obs[rows], action[rows], target[rows],
                                          None if terminated is None else terminated[rows])
                self.gradient_step(loss)
            if n_hold == 0:
                continue
            mse = self.member_mse(obs[hold], action[hold], target[hold],
                                  None if terminated is None else terminated[hold])
            improved = mse < 0.99 * best_mse  # improved by more than 1% (MBPO's rule; the first epoch always)
            if improved.any():
                best_mse = torch.where(improved, mse, best_mse)
                with torch.no_grad():
                    for p, kept in zip(members, best):
                        kept.copy_(torch.where(improved.view(-1, *[1] * (p.dim() - 1)), p, kept))
                since = 0
            else:
                since += 1
            if since > patience:
                break
        if n_hold > 0:
            with torch.no_grad():
                for p, kept in zip(members, best):
                    p.copy_(kept)
            self.elites.copy_(torch.argsort(best_mse)[:self.n_elites])
        out = {"model_train_nll": metrics.get("model_nll", math.nan), "model_epochs": float(epoch)}
        out["model_holdout_mse"] = best_mse[self.elites].mean().item() if n_hold > 0 else math.nan
        return out


@torch.no_grad()
def prediction_error(ensemble: ProbabilisticEnsemble, obs: torch.Tensor, action: torch.Tensor,
                     next_obs: torch.Tensor, done: torch.Tensor, reward: torch.Tensor | None = None,
                     k: int = 5, valid: torch.Tensor | None = None) -> dict[str, float]:
    """The model's quality on real, consecutive transitions, time-major (T, N, .) (done (T, N) bool:
    the episode ended at that step; valid (T, N) bool, None for all: False where a transition is not
    one, the autoreset step of a next-step-autoreset env): the elites' mean predictions against what
    happened, each elite its own rollout, errors averaged over elites.

      model_mse_1step  MSE of the predicted next observation, over the valid steps
      model_mse_kstep  MSE of the observation k steps ahead, predicted by iterating the mean model
                       with the actions taken, from every start whose k steps are valid and lie in one
                       episode (nan where there is none); its growth over model_mse_1step is
                       compounding error
      reward_mse       MSE of the predicted reward (a learned reward, `reward` given)
    Pass transitions the model has not trained on (PETS: those collected since its last fit)."""
    E, d = ensemble.n_elites, ensemble.obs_dim
    elites = ensemble.elites
    valid = torch.ones_like(done) if valid is None else valid
    keep = valid.reshape(-1)
    expand = lambda x: x.reshape(1, -1, x.shape[-1])[:, keep].expand(E, -1, -1)  # noqa: E731  (valid rows, every elite)
    pred = ensemble(expand(obs), expand(action), elites).mean  # (E, valid rows, out)
    out = {"model_mse_1step": (expand(obs) + pred[..., :d] - expand(next_obs)).square().mean().item()}
    if reward is not None and ensemble.learn_reward:
        out["reward_mse"] = (pred[..., d] - reward.reshape(1, -1)[:, keep]).square().mean().item()
    T = obs.shape[0]
    starts = T - k + 1
    if starts <= 0:
        out["model_mse_kstep"] = math.nan
        return out

    def before(flags: torch.Tensor) -> torch.Tensor:  # [t]: how many flags among steps < t, (T + 1, N)
        return torch.cat([torch.zeros_like(flags[:1], dtype=torch.float32), flags.float().cumsum(0)])

    # A start t is usable when steps t .. t+k-1 are valid and none of t .. t+k-2 ended its episode.
    ends, invalid = before(done), before(~valid)
    usable = ((ends[k - 1:k - 1 + starts] - ends[:starts]) == 0) & ((invalid[k:k + starts] - invalid[:starts]) == 0)
    if not usable.any():
        out["model_mse_kstep"] = math.nan
        return out
    state = obs[:starts][usable].unsqueeze(0).expand(E, -1, -1)  # (E, S, d)
    for j in range(k):
        a = action[j:j + starts][usable].unsqueeze(0).expand(E, -1, -1)
        state = state + ensemble(state, a, elites).mean[..., :d]
    out["model_mse_kstep"] = (state - next_obs[k - 1:k - 1 + starts][usable]).square().mean().item()
    return out


# ---- what PETS and MBPO share: the spaces they model, the model step of an iteration ----------------
def check_model_spaces(algo: str, obs_space: gym.Space, action_space: gym.Space) -> None:
    """EnvError unless the observations are a flat Box and the actions a bounded flat Box (what the
    ensemble models, and what CEM's sequences and SAC's squashed actions stay within)."""
    if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
            and np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise EnvError(f"{algo} models continuous actions within their bounds: it needs a bounded 1-D Box action "
                       f"space, got {action_space}; for discrete actions use sac (its discrete variant), dqn or ppo")
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise EnvError(f"{algo} models flat vector observations (a 1-D Box), got {obs_space}; wrap the env in "
                       "gymnasium.wrappers.FlattenObservation, or use sac or ppo for images and dicts")


def refit(ensemble: ProbabilisticEnsemble, replay: ReplayBuffer, recent_rows: int, device: torch.device, *,
          measure: bool, error_horizon: int, **fit_options) -> dict[str, float]:
    """The model step of a PETS or MBPO iteration. Where `measure` (the ensemble was fitted before),
    first its prediction_error on the newest `recent_rows` rows of the buffer, the transitions
    collected since its last fit, which it has not trained on: what planning or rollouts met. Then
    its refit to every valid transition of the buffer (`fit`, with fit_options), continuing from
    its weights; fit_seconds its wall time."""
    metrics = {}
    to = lambda data: {k: (v if k == "valid" else v.float()).to(device) for k, v in data.items()}  # noqa: E731
    if measure:
        recent = to(replay.newest(recent_rows))
        metrics.update(prediction_error(
            ensemble, recent["obs"], recent["actions"], recent["next_obs"],
            recent["terminated"].bool() | recent["truncated"].bool(), recent["rewards"], k=error_horizon,
            valid=recent["valid"]))
    data = to(replay.newest())
    valid = data["valid"].reshape(-1)
    flat = {k: v.reshape(-1, *v.shape[2:])[valid] for k, v in data.items()}
    start = time.perf_counter()
    metrics.update(ensemble.fit(
        flat["obs"], flat["actions"], flat["next_obs"], flat["rewards"] if ensemble.learn_reward else None,
        flat["terminated"] if ensemble.learn_termination else None, **fit_options))
    metrics["fit_seconds"] = time.perf_counter() - start
    return metrics


# ---- known rewards ------------------------------------------------------------------------------------
def pendulum_reward(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's reward -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), computed by the env from the state
    before the step (gymnasium's pendulum.py): theta = atan2(sin, cos) of the observation (cos theta,
    sin theta, theta_dot), in [-pi, pi] as the env's angle_normalize; u the torque clipped to +-2."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    torque = action[..., 0].clamp(-2.0, 2.0)
    return -(theta.square() + 0.1 * obs[..., 2].square() + 0.001 * torque.square())


# Reward functions of (obs (..., d_obs), action (..., d_act)) -> reward (...), by env id: a planner
# given one learns no reward (reward_model="known"); every other env's reward is learned.
KNOWN_REWARDS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"Pendulum-v1": pendulum_reward}

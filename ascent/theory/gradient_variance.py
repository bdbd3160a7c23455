"""`ascent diagnose gradient-variance`: the variance reductions of the policy-gradient theory, measured.

On one env and one policy (a trained run's, or a fresh random one), REINFORCE's estimators of
grad J are evaluated on the SAME independent batches of complete episodes (common random numbers),
and each one's bias and variance are reported:

  reference  g_ref = mean over `reference_episodes` independent episodes of the reward-to-go
             estimator without baseline (unbiased, and of lower variance than the full return)
  bias       || mean_b g_b - g_ref ||, beside the value it would have on average if the estimator
             were unbiased: noise^2 = tr Cov(g_b) / B + tr Cov(g_ref)  (batches independent of the
             reference), so bias_z = bias / noise is about 1 for an unbiased estimator
  variance   tr Cov(g_b) over the B batch estimates, and its ratio to the vanilla estimator's
             (full return, no baseline: the estimator of Williams 1992 before any reduction)
  scale      mean_b g_b . g_ref / ||g_ref||^2, with its standard error: the estimate's length along
             the reference, about 1 when unbiased (a sharper check than the bias norm for
             shrinkage, which is what a baseline estimated from the episode it weights causes)
  cosine     mean over batches of cos(g_b, g_ref)

With gamma = 1 (the default) every estimator is unbiased for the same grad J. With gamma < 1 the
reward-to-go estimators drop the gamma^t factor of the discounted objective's exact gradient (see
ascent/algorithms/reinforce.py), so they and the full-return ones estimate different vectors and
the bias column of the full-return estimators measures that difference.
The batch-mean and variance-optimal baselines are computed leave-one-out (each episode's from the
other episodes of its batch), and the value baseline is fitted beforehand on the reference episodes;
so every estimator is exactly unbiased, and the scale column checks it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ascent.algorithms.common.onpolicy import collect_agent_episodes
from ascent.algorithms.reinforce import REINFORCE
from ascent.errors import CheckpointError, ConfigError, did_you_mean
from ascent.algorithms.common.returns import discounted_returns

# name -> (return_type, baseline) of REINFORCEConfig
ESTIMATORS = {
    "full": ("full", "none"),
    "full+mean": ("full", "mean"),
    "full+optimal": ("full", "optimal"),
    "full+value": ("full", "value"),
    "rtg": ("reward_to_go", "none"),
    "rtg+mean": ("reward_to_go", "mean"),
    "rtg+optimal": ("reward_to_go", "optimal"),
    "rtg+value": ("reward_to_go", "value"),
}
DEFAULT_ESTIMATORS = ("full", "full+mean", "full+optimal", "rtg", "rtg+mean", "rtg+optimal", "rtg+value")
VANILLA = "full"  # the variance reference; always measured
REFERENCE_CHUNKS = 40  # the reference's own noise is estimated from this many equal chunks of it


@dataclass
class VarianceReport:
    """What gradient_variance measured: one row (a dict) per estimator, plus context."""

    rows: list[dict]
    reference_norm: float
    reference_noise: float  # sqrt(tr Cov(g_ref)): how far g_ref itself may lie from grad J
    settings: dict
    notes: list[str] = field(default_factory=list)


def parse_estimators(spec: str | Sequence[str]) -> list[str]:
    """'full,rtg+value' (or a list of names) -> validated names, in order, without repeats."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in names if n]
    if not names:
        raise ConfigError(f"no estimator given; choose from {', '.join(ESTIMATORS)}")
    for name in names:
        if name not in ESTIMATORS:
            raise ConfigError(f"unknown estimator {name!r}{did_you_mean(name, ESTIMATORS)}; "
                              f"valid: {', '.join(ESTIMATORS)}")
    return list(dict.fromkeys(names))


def make_agent(env: str | None, run_dir: str | Path | None, seed: int, gamma: float, n_envs: int,
               net_arch: Sequence[int]) -> tuple[REINFORCE, str]:
    """A REINFORCE agent to estimate gradients with: a fresh random policy, or the policy of a
    trained run (RUN_DIR/model.pt, else its last checkpoint) copied into it. Returns (agent, source)."""
    from ascent.envs.vector import check_env_id

    if env is not None:
        check_env_id(env)
    if run_dir is None:
        env = env or "CartPole-v1"
        agent = REINFORCE(env, seed=seed, verbose=0, n_envs=n_envs, gamma=gamma, net_arch=tuple(net_arch), device="cpu")
        return agent, f"random policy (net_arch {tuple(net_arch)}, seed {seed})"
    from ascent.core.run import RunDirectory
    from ascent.registry import load

    run = RunDirectory(run_dir)
    run.read_config()  # a clear error for a missing or foreign directory
    path = run.trained_model()
    trained = load(path, verbose=0, device="cpu")  # (the estimates are measured on the CPU)
    if env is not None and env != trained.env_id:
        raise ConfigError(f"{run_dir} was trained on {trained.env_id}; drop --env or pass --env {trained.env_id}")
    c = trained.config
    if getattr(c, "share_torso", False) or getattr(c, "squash_actions", False) or not hasattr(trained, "policy"):
        raise ConfigError(f"{run_dir}: only actor-critic policies with separate torsos and unsquashed actions "
                          "can be diagnosed (REINFORCE's policy)")
    agent = REINFORCE(trained.env_id, seed=seed, verbose=0, n_envs=n_envs, gamma=gamma, net_arch=tuple(c.net_arch),
                      activation=c.activation, normalize_obs=c.normalize_obs, device="cpu")
    try:
        agent.policy.load_state_dict(trained.policy.state_dict())
    except RuntimeError as err:
        first_line = str(err).splitlines()[0][:160]
        raise CheckpointError(f"{path}: its policy does not fit REINFORCE's ({first_line})") from None
    trained.envs.close()
    return agent, f"{trained.algo} policy from {path}"


def configure(agent: REINFORCE, **changes) -> None:
    """Switch config fields (return_type, baseline, n_episodes, ...) and validate the combination."""
    config = dataclasses.replace(agent.config, **changes)
    config.validate()
    agent.config = config


def fit_value(agent: REINFORCE, episodes: list[dict], steps: int = 300, lr: float = 3e-3,
              minibatch: int = 2048) -> float:
    """Regress V(s_t) on the reward-to-go G_t of `episodes` (Adam on random minibatches), so the
    value baseline is meaningful. Returns the explained variance 1 - Var(G - V) / Var(G) of the fit
    (for a random CartPole policy about 0.35: the remaining length of an episode is mostly luck)."""
    x = torch.cat([ep["x"] for ep in episodes])  # (sum T, d)
    no_cut = [torch.zeros(len(ep["rewards"]), 1, dtype=torch.bool) for ep in episodes]
    returns = torch.cat([discounted_returns(ep["rewards"].unsqueeze(1), cut, agent.config.gamma).squeeze(1)
                         for ep, cut in zip(episodes, no_cut)])  # (sum T,)
    with torch.no_grad():  # start at the mean return: the regression then only fits the variation
        agent.policy.value_head.bias.fill_(float(returns.mean()))
    optimizer = torch.optim.Adam(agent.policy.critic_parameters(), lr=lr)
    for _ in range(steps):
        i = torch.randint(len(x), (min(minibatch, len(x)),))
        loss = F.mse_loss(agent.policy.value(x[i]), returns[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(1 - (returns - agent.policy.value(x)).var() / returns.var().clamp(min=1e-12))


def gradient_variance(env: str | None = None, estimators: str | Sequence[str] = DEFAULT_ESTIMATORS,
                      episodes_per_batch: int = 10, batches: int = 50, reference_episodes: int = 2000,
                      seed: int = 0, run_dir: str | Path | None = None, gamma: float = 1.0, n_envs: int = 8,
                      net_arch: Sequence[int] = (64, 64), value_fit_steps: int = 300) -> VarianceReport:
    """Bias and variance of each policy-gradient estimator on `env` (see the module docstring).

    env: a Gymnasium id (default CartPole-v1, or the run's env); run_dir: take the policy of a
    trained run instead of a fresh random one (net_arch, seed); estimators: names of ESTIMATORS
    (the vanilla `full` is always measured, as the variance reference); n_envs: parallel envs
    collecting the episodes (each contributes a fixed quota, so the batches stay unbiased)."""
    names = parse_estimators(estimators)
    for name, value, low in (("episodes_per_batch", episodes_per_batch, 1), ("n_envs", n_envs, 1),
                             ("value_fit_steps", value_fit_steps, 1), ("batches", batches, 2),
                             ("reference_episodes", reference_episodes, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}"
                              + (" (a variance needs two estimates)" if low == 2 else ""))
    if not (isinstance(gamma, (int, float)) and 0.0 <= gamma <= 1.0):
        raise ConfigError(f"gamma must be in [0, 1], got {gamma!r}")
    agent, source = make_agent(env, run_dir, seed, float(gamma), n_envs, net_arch)
    configure(agent, normalize_advantage=False)
    notes = [f"policy: {source}"]
    if agent.config.normalize_obs:
        notes.append("the policy normalizes observations; its running statistics keep updating during collection")
    if gamma < 1:
        notes.append(f"gamma = {gamma} < 1: the reward-to-go estimators omit gamma^t, so full-return estimators differ "
                     "from the (reward-to-go) reference by design")

    runnable = []  # estimators the REINFORCE of this checkout supports (others are skipped with a note)
    for name in dict.fromkeys([VANILLA, *names]):
        return_type, baseline = ESTIMATORS[name]
        try:
            configure(agent, return_type=return_type, baseline=baseline)
            runnable.append(name)
        except ConfigError as err:
            notes.append(f"{name} skipped: {err}")

    # The reference: K equal chunks of fresh episodes; g_ref is their mean, its noise their spread / sqrt(K).
    chunks = min(REFERENCE_CHUNKS, reference_episodes)
    size = reference_episodes // chunks
    configure(agent, n_episodes=chunks * size)
    reference_eps = collect_agent_episodes(agent, agent.config.n_episodes)
    if any(ESTIMATORS[n][1] == "value" for n in runnable):
        r2 = fit_value(agent, reference_eps, value_fit_steps)
        notes.append(f"value baseline: V(s) first regressed on the reward-to-go of the {len(reference_eps)} reference "
                     f"episodes ({value_fit_steps} Adam steps, explained variance {r2:.3f}), then held fixed")
    configure(agent, return_type="reward_to_go", baseline="none")
    chunk_grads = torch.stack([agent.gradient_estimate(reference_eps[i * size:(i + 1) * size])
                               for i in range(chunks)]).double()  # (K, P)
    reference = chunk_grads.mean(0)
    reference_var = float(chunk_grads.var(0).sum()) / chunks if chunks > 1 else float("nan")
    ref_sq = max(float(reference @ reference), 1e-30)
    reference_along_var = float((chunk_grads @ reference / ref_sq).var()) / chunks if chunks > 1 else float("nan")

    # The batches: every estimator on the same episodes.
    estimates: dict[str, list[torch.Tensor]] = {n: [] for n in runnable}
    lengths = []
    for _ in range(batches):
        configure(agent, n_episodes=episodes_per_batch)
        episodes = collect_agent_episodes(agent, agent.config.n_episodes)
        lengths.extend(len(ep["rewards"]) for ep in episodes)
        for name in runnable:
            return_type, baseline = ESTIMATORS[name]
            configure(agent, return_type=return_type, baseline=baseline)
            estimates[name].append(agent.gradient_estimate(episodes).double())

    rows = []
    vanilla_var = float(torch.stack(estimates[VANILLA]).var(0).sum()) if VANILLA in estimates else float("nan")
    ref_norm = float(reference.norm())
    for name in runnable:
        if name == VANILLA and VANILLA not in names:
            continue
        g = torch.stack(estimates[name])  # (B, P)
        total_var = float(g.var(0).sum())
        bias = float((g.mean(0) - reference).norm())
        noise = math.sqrt(total_var / batches + reference_var)
        cosine = float(F.cosine_similarity(g, reference[None], dim=1).mean())
        along = g @ reference / ref_sq  # (B,) each estimate's length along g_ref, in units of ||g_ref||
        scale_se = math.sqrt(float(along.var()) / batches + reference_along_var)
        return_type, baseline = ESTIMATORS[name]
        rows.append({"estimator": name, "return_type": return_type, "baseline": baseline,
                     "bias_norm": bias, "relative_bias": bias / max(ref_norm, 1e-12), "bias_noise": noise,
                     "bias_z": bias / noise if noise > 0 else float("nan"), "total_variance": total_var,
                     "variance_ratio": total_var / vanilla_var, "cosine": cosine,
                     "scale": float(along.mean()), "scale_se": scale_se})
    settings = {"env": agent.env_id, "episodes_per_batch": episodes_per_batch, "batches": batches,
                "reference_episodes": len(reference_eps), "gamma": gamma, "seed": seed, "n_envs": n_envs,
                "parameters": int(reference.numel()), "mean_episode_length": float(np.mean(lengths))}
    agent.envs.close()
    return VarianceReport(rows, ref_norm, math.sqrt(reference_var), settings, notes)


COLUMNS = [("estimator", "{}"), ("bias_norm", "{:.4g}"), ("relative_bias", "{:.3f}"), ("bias_z", "{:.2f}"),
           ("scale", "{:.3f}"), ("scale_se", "{:.3f}"), ("total_variance", "{:.4g}"), ("variance_ratio", "{:.3f}"),
           ("cosine", "{:.3f}")]


def format_table(report: VarianceReport) -> str:
    """The rows as an aligned text table, with the settings above and the notes below."""
    s = report.settings
    head = (f"gradient variance on {s['env']}: {s['batches']} batches of {s['episodes_per_batch']} episodes "
            f"(mean length {s['mean_episode_length']:.1f}), reference over {s['reference_episodes']} episodes, "
            f"gamma {s['gamma']}, {s['parameters']} policy parameters\n"
            f"||g_ref|| = {report.reference_norm:.4g} (its own noise sqrt(tr Cov) = {report.reference_noise:.3g}); "
            "bias_z = bias / its expected size if unbiased, scale = mean length along g_ref "
            "(both about 1 when unbiased)")
    cells = [[name for name, _ in COLUMNS]] + [[fmt.format(row[name]) for name, fmt in COLUMNS] for row in report.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    return "\n".join([head, *lines, *(f"note: {n}" for n in report.notes)])


def write_report(report: VarianceReport, out: str | Path = ".") -> dict[str, Path]:
    """OUT/gradient_variance.{csv,json,png}; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "gradient_variance.csv", "json": out / "gradient_variance.json",
             "png": out / "gradient_variance.png"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(report.rows[0]) if report.rows else ["estimator"])
        writer.writeheader()
        writer.writerows(report.rows)
    paths["json"].write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n")
    plot_gradient_variance(report, paths["png"])
    return paths


def plot_gradient_variance(report: VarianceReport, path: str | Path) -> Path:
    """Two bar charts, one bar per estimator: total variance (log scale) and bias norm, the latter
    with the size an unbiased estimator's bias would have (noise) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["estimator"] for r in report.rows]
    x = np.arange(len(names))
    colors = ["tab:gray" if r["return_type"] == "full" else "tab:blue" for r in report.rows]
    fig, (ax_var, ax_bias) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, layout="constrained")
    ax_var.bar(x, [r["total_variance"] for r in report.rows], color=colors)
    ax_var.set_yscale("log")
    ax_var.set_ylabel("total variance  tr Cov(g)")
    ax_var.set_title("variance of the batch estimate (gray: full return, blue: reward-to-go)", fontsize=9)
    for i, r in enumerate(report.rows):
        ax_var.annotate(f"x{r['variance_ratio']:.2g}", (i, r["total_variance"]), ha="center", va="bottom", fontsize=8)
    ax_bias.bar(x, [r["bias_norm"] for r in report.rows], color=colors, label="||mean - g_ref||")
    ax_bias.scatter(x, [r["bias_noise"] for r in report.rows], marker="_", s=400, color="black", zorder=3,
                    label="its expected size if unbiased")
    ax_bias.set_ylabel("bias norm")
    ax_bias.set_title(f"bias against the reference (||g_ref|| = {report.reference_norm:.3g})", fontsize=9)
    ax_bias.legend(fontsize=8)
    for ax in (ax_var, ax_bias):
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.grid(alpha=0.3, axis="y")
    s = report.settings
    fig.suptitle(f"policy-gradient estimators on {s['env']}: {s['batches']} batches x {s['episodes_per_batch']} "
                 f"episodes, gamma {s['gamma']}", fontsize=10)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)

"""What a study leaves: a line per trial, the table of the top trials, best.toml (a preset file that
`ascent train ALGO --env ENV --preset OUT/best.toml` accepts) and the plots of Optuna's
visualization module (history.png, importances.png)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ascent.errors import ConfigError


def retried(trials) -> set[int]:
    """The numbers of the failed trials that were queued again (a killed or interrupted process):
    a copy with the same hyperparameters stands for each."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    return {number for t in trials for number in RetryHeartbeatStaleTrialCallback.retry_history(t)}


def state_counts(trials) -> dict[str, int]:
    """{complete, pruned, invalid (pruned as an invalid combination), failed, retried (failed and
    queued again), running, waiting, finished (complete + pruned + failed)}."""
    counts = {name: 0 for name in ("complete", "pruned", "invalid", "failed", "retried", "running", "waiting")}
    again = retried(trials)
    for t in trials:
        name = ("retried" if t.number in again else "failed") if t.state.name == "FAIL" else t.state.name.lower()
        counts[name] += 1
        counts["invalid"] += name == "pruned" and "invalid" in t.user_attrs
    counts["finished"] = counts["complete"] + counts["pruned"] + counts["failed"]
    return counts


def format_params(params: dict[str, Any]) -> str:
    """key=value pairs, numbers to 3 significant digits."""
    def show(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    return " ".join(f"{k}={show(v)}" for k, v in params.items())


def trial_line(t) -> str:
    """One line for a finished trial, as the workers print it."""
    took = f"{t.duration.total_seconds():.1f} s" if t.duration is not None else "?"
    head = f"trial {t.number} (worker {t.user_attrs.get('worker', '?')}, {took}): "
    if t.state.name == "COMPLETE":
        head += f"{t.value:.2f}"
    elif t.state.name == "PRUNED" and "invalid" in t.user_attrs:
        head += f"invalid: {t.user_attrs['invalid']}"
    elif t.state.name == "PRUNED":
        last = max(t.intermediate_values) if t.intermediate_values else None
        head += f"pruned at evaluation {last} ({t.intermediate_values[last]:.2f})" if last is not None else "pruned"
    else:
        head += f"failed: {t.user_attrs.get('failed_because', t.state.name)}"
    return f"{head} | {format_params(t.params)}"


def first_reason(trials) -> str:
    """': <why the first failed or invalid trial was>' or ''."""
    for t in trials:
        why = t.user_attrs.get("failed_because") if t.state.name == "FAIL" else t.user_attrs.get("invalid")
        if why:
            return f" (trial {t.number}: {why})"
    return ""


def format_table(trials, wall_seconds: float, top: int = 5) -> str:
    """The study's counts and its `top` complete trials, best first."""
    c = state_counts(trials)
    in_trials = sum(t.duration.total_seconds() for t in trials if t.duration is not None)
    again = f" ({c['retried']} more killed or interrupted, and run again)" if c["retried"] else ""
    lines = [f"{c['finished']} trials finished: {c['complete']} complete, {c['pruned']} pruned ({c['invalid']} "
             f"invalid), {c['failed']} failed{again}; {wall_seconds:.1f} s of wall time in this run, {in_trials:.1f} s "
             "in trials over the study"]
    complete = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)[:top]
    if complete:
        lines.append(f"{'rank':>4} {'trial':>5} {'value':>10} {'time':>8}  hyperparameters")
        for rank, t in enumerate(complete, 1):
            took = f"{t.duration.total_seconds():.1f}s" if t.duration is not None else "?"
            lines.append(f"{rank:>4} {t.number:>5} {t.value:>10.2f} {took:>8}  {format_params(t.params)}")
    again = retried(trials)
    for t in trials:
        if t.state.name == "FAIL" and t.number not in again:
            lines.append(f"failed: trial {t.number}: {t.user_attrs.get('failed_because', '?')}")
    return "\n".join(lines)


def format_returns(returns: list[float | None]) -> str:
    """'a, b, c (mean m +- sd)' of fresh-seed returns, None shown as diverged."""
    shown = ", ".join(f"{r:.2f}" if r is not None else "diverged" for r in returns)
    finite = [r for r in returns if r is not None]
    return shown + (f" (mean {np.mean(finite):.2f} +- {np.std(finite):.2f})" if finite else "")


def format_final(best, final: dict[str, Any], trials=None) -> str:
    """The chosen trial and its returns on the fresh seeds; the other finalists' (from `trials`); the
    preset's."""
    line = f"best: trial {best.number}, {best.value:.2f}"
    if final["seeds"]:
        line += f"; on fresh seeds {', '.join(map(str, final['seeds']))}: {format_returns(final['returns'])}"
        values = {t.number: t.value for t in trials or []}
        others = [(int(n), r) for n, r in (final.get("finalists") or {}).items() if int(n) != best.number]
        if others:
            line += "\nthe other finalists on the same seeds: " + "; ".join(
                f"trial {n}" + (f" ({values[n]:.2f})" if n in values else "") + f": {format_returns(r)}"
                for n, r in others)
    if final.get("preset_returns") is not None and final["seeds"]:
        line += f"\nthe env's preset on the same seeds: {format_returns(final['preset_returns'])}"
    return line


# ---- best.toml -----------------------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    """A hyperparameter as a TOML value that ascent.core.config.coerce reads back to it."""
    if value is None:
        return '"none"'  # (TOML has no null; coerce reads "none" as None where the field takes it)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string escapes as JSON does
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) into a preset file")


def write_best(path: Path, algo: str, env: str, steps: int, seed: int, best, n_trials: int,
               params: dict[str, Any], preset: dict[str, Any], preset_name: str | None, final: dict[str, Any]) -> Path:
    """best.toml: the env's preset with the best trial's hyperparameters over it, flat `key = value`
    lines, `description` and `n_timesteps` (--steps) among them."""
    returns = [r for r in final["returns"] if r is not None]
    fresh = f"; fresh seeds mean {np.mean(returns):.2f}" if returns else ""
    description = f"ascent tune {algo} {env}: trial {best.number} of {n_trials}, {best.value:.2f} at {steps} steps{fresh}"
    lines = [f"# {line}" for line in f"{format_final(best, final)} (tuned with seed {seed}).".splitlines()]
    lines += [f"# ascent train {algo} --env {env} --preset {path} trains with it.",
              f"description = {toml_value(description)}",
              f"n_timesteps = {steps}"]
    kept = {k: v for k, v in preset.items() if k not in params}
    if kept:
        lines.append(f"# from the preset {preset_name!r} made for {env}:")
        lines += [f"{k} = {toml_value(v)}" for k, v in kept.items()]
    lines.append("# tuned:")
    lines += [f"{k} = {toml_value(v)}" for k, v in params.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- plots ---------------------------------------------------------------------------------------------
def plot_study(study, out: Path) -> tuple[list[Path], list[str]]:
    """history.png (every trial's value and the best so far) and importances.png (PED-ANOVA,
    Watanabe et al. 2023: how much each hyperparameter's distribution in the top trials differs from
    its distribution in all), from optuna.visualization.matplotlib. Returns (files written, notes on
    what was skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as views

    files, notes = [], []
    ax = views.plot_optimization_history(study)
    ax.figure.savefig(out / "history.png", dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
    files.append(out / "history.png")
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        notes.append("importances.png skipped: parameter importances need at least 2 complete trials")
    else:
        try:
            with warnings.catch_warnings():  # (few trials: "importances will be equal", said once here)
                warnings.simplefilter("ignore")
                ax = views.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
        except (RuntimeError, ValueError) as err:
            notes.append(f"importances.png skipped: {err}")
        else:
            ax.figure.savefig(out / "importances.png", dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
            files.append(out / "importances.png")
    return files, notes

"""The `ascent` command line: train, eval, resume, plot, list.

Every user error (unknown algorithm/env/hyperparameter, bad value, missing or corrupt run dir)
exits with status 2 and one line `ascent: error: ...`, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ascent.errors import AscentError, ConfigError


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0 or value != float(text):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ascent", description="Deep RL, faithful to the theory and fast.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train an agent and write a run directory")
    t.add_argument("algo", help="algorithm (`ascent list`)")
    t.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    t.add_argument("--steps", type=_positive_int, default=None, help="env steps to train for (default: the preset's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--run-dir", default=None, help="where to write logs and checkpoints (default runs/ALGO-ENV-sSEED)")
    t.add_argument("--preset", default=None, help="named hyperparameter preset (default: the env's, if any)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter (repeatable)")
    t.add_argument("--eval-episodes", type=_positive_int, default=10, help="episodes of the final evaluation")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="evaluate a trained run")
    e.add_argument("run_dir")
    e.add_argument("--episodes", type=_positive_int, default=10)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--video", action="store_true", help="record videos into RUN_DIR/videos (needs moviepy)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic mode")
    e.add_argument("--seed", type=int, default=None)

    r = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    r.add_argument("run_dir")
    r.add_argument("--no-progress", action="store_true")

    pl = sub.add_parser("plot", help="learning curves of one or more runs (mean and spread over seeds)")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/learning_curve.png for one run, else curves.png)")
    pl.add_argument("--metric", default="episode_return", help="CSV column to plot")
    pl.add_argument("--smoothing", type=int, default=10)

    ls = sub.add_parser("list", help="algorithms and presets; `ascent list ALGO` shows its hyperparameters")
    ls.add_argument("algo", nargs="?")
    return p


def cmd_train(args: argparse.Namespace) -> int:
    from ascent.algorithms import get_algorithm
    from ascent.config import load_presets, parse_set, preset_for_env
    from ascent.envs import check_env_id

    cls = get_algorithm(args.algo)
    check_env_id(args.env)
    overrides = parse_set(args.set)
    presets = load_presets(cls.algo)
    preset_name = args.preset if args.preset is not None else preset_for_env(presets, args.env)
    steps = args.steps
    if steps is None:
        steps = int(presets.get(preset_name, {}).get("n_timesteps", 0)) if preset_name in presets else 0
        if steps <= 0:
            raise ConfigError("--steps is required (no preset gives a default number of steps for this env)")
    run_dir = Path(args.run_dir or f"runs/{cls.algo}-{args.env}-s{args.seed}")
    if (run_dir / "checkpoints" / "last.pt").exists():
        raise ConfigError(f"{run_dir} already holds a run; `ascent resume {run_dir}` continues it, or pick another --run-dir")
    agent = cls(args.env, seed=args.seed, run_dir=run_dir, preset=args.preset, **overrides)
    print(f"training {cls.algo} on {args.env} for {steps} steps (seed {args.seed}, preset {agent.preset or 'none'}) -> {run_dir}")
    agent.learn(steps, progress_bar=not args.no_progress)
    result = agent.evaluate(args.eval_episodes)
    _write_eval(run_dir, result)
    print(f"evaluation over {result['episodes']} episodes: {result['mean_return']:.2f} +- {result['std_return']:.2f}")
    print(f"run directory: {run_dir} (metrics.csv, tb/, model.pt, learning_curve.png)")
    return 0


def _write_eval(run_dir: Path, result: dict) -> None:
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")


def _load_run(run_dir: str):
    from ascent.agent import Agent, read_run_config
    from ascent.errors import CheckpointError

    info = read_run_config(run_dir)
    model = Path(run_dir) / "model.pt"
    if not model.exists():
        model = Path(run_dir) / "checkpoints" / "last.pt"
    if not model.exists():
        raise CheckpointError(f"{run_dir} has no model.pt or checkpoint yet; nothing to evaluate")
    return Agent.load(model, verbose=0), info


def cmd_eval(args: argparse.Namespace) -> int:
    agent, _ = _load_run(args.run_dir)
    video_dir = Path(args.run_dir) / "videos" if args.video else None
    result = agent.evaluate(args.episodes, deterministic=not args.stochastic, seed=args.seed, video_dir=video_dir)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{agent.algo} {agent.env_id}: mean return {result['mean_return']:.2f} +- {result['std_return']:.2f} "
              f"over {result['episodes']} episodes (mean length {result['mean_length']:.1f})")
        if video_dir is not None:
            print(f"videos: {video_dir}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from ascent.agent import read_run_config
    from ascent.algorithms import get_algorithm

    info = read_run_config(args.run_dir)
    cls = get_algorithm(info.get("algo", "?"))
    agent = cls.resume(args.run_dir, progress_bar=not args.no_progress)
    result = agent.evaluate(10)
    _write_eval(Path(args.run_dir), result)
    print(f"resumed run finished at {agent.num_steps} steps; evaluation: {result['mean_return']:.2f} +- {result['std_return']:.2f}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ascent.plotting import plot_runs

    out = args.out or (Path(args.run_dirs[0]) / "learning_curve.png" if len(args.run_dirs) == 1 else "curves.png")
    path = plot_runs(args.run_dirs, out, column=args.metric, smoothing=args.smoothing)
    print(f"wrote {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ascent.algorithms import ALGORITHMS, get_algorithm
    from ascent.config import config_help, load_presets

    if args.algo:
        cls = get_algorithm(args.algo)
        print(f"{cls.algo}: hyperparameters (name = default: help)")
        for name, help_text, default in config_help(cls.Config):
            print(f"  {name} = {default!r}: {help_text}")
        names = [cls.algo]
    else:
        names = sorted(ALGORITHMS)
        print("algorithms: " + ", ".join(names))
    for name in names:
        for preset, values in load_presets(name).items():
            envs = ", ".join(values.get("envs", [])) or "-"
            print(f"  preset {name}/{preset} (default for: {envs}): {values.get('description', '')}")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "resume": cmd_resume, "plot": cmd_plot, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AscentError as err:
        print(f"ascent: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ascent: interrupted; the last checkpoint is kept (`ascent resume RUN_DIR` continues)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

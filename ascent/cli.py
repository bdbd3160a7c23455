"""The `ascent` command line: train, eval, resume, tune, collect, plot, list, diagnose, table, arena, play.

Every user error (unknown algorithm/env/hyperparameter, bad value, missing or corrupt run dir)
exits with status 2 and one line `ascent: error: ...`, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import json
import sys
from pathlib import Path

from ascent.errors import AscentError, ConfigError, TrainingInterrupted


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0 or value != float(text):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ascent.core.tracking import TRACKERS  # (standard library only: neither mlflow nor wandb is imported)

    p = argparse.ArgumentParser(prog="ascent", description="Deep RL, faithful to the theory and fast.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train an agent and write a run directory")
    t.add_argument("algo", help="algorithm (`ascent list`)")
    t.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    t.add_argument("--steps", type=_positive_int, default=None, help="env steps to train for (default: the preset's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--run-dir", default=None, help="where to write logs and checkpoints (default runs/ALGO-ENV-sSEED)")
    t.add_argument("--preset", default=None, help="named hyperparameter preset, a preset file PATH.toml of key = value lines, or zoo:PATH.yml, the env's entry of an RL-Zoo hyperparameter file (default: the env's preset, if any; none: the defaults)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter (repeatable)")
    t.add_argument("--eval-episodes", type=_positive_int, default=10, help="episodes of the final evaluation")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--overwrite", action="store_true", help="clear what an earlier run wrote into --run-dir first")
    t.add_argument("--ray-address", default=None, help="distributed algorithms: the Ray cluster to run on ('auto', "
                   "HOST:PORT, 'local' a local Ray; default: RAY_ADDRESS, else a local Ray)")
    t.add_argument("--track", choices=TRACKERS, default=None, help="also log the config, metrics, videos, learning "
                   "curve and model to MLflow (MLFLOW_TRACKING_URI, default sqlite:///mlruns.db) or W&B "
                   "(WANDB_PROJECT, default ascent; offline without a login)")

    e = sub.add_parser("eval", help="evaluate a trained run")
    e.add_argument("run_dir")
    e.add_argument("--episodes", type=_positive_int, default=10)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--video", action="store_true", help="record the episodes into RUN_DIR/videos/eval (needs moviepy)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic mode")
    e.add_argument("--seed", type=int, default=None)
    e.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the run's)")

    r = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    r.add_argument("run_dir")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the run's)")
    r.add_argument("--ray-address", default=None, help="distributed algorithms: the Ray cluster to continue on "
                   "(default: the run's)")
    r.add_argument("--track", choices=TRACKERS, default=None, help="continue the run's tracked run (RUN_DIR/tracking.json) "
                   "with this tracker, or start one")

    pl = sub.add_parser("plot", help="learning curves of one or more runs (mean and spread over seeds)")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/learning_curve.png for one run, else curves.png)")
    pl.add_argument("--metric", default="episode_return", help="CSV column to plot")
    pl.add_argument("--smoothing", type=int, default=10)

    co = sub.add_parser("collect", help="record a trained run's agent (or random actions) into a Minari dataset")
    co.add_argument("run_dir", nargs="?", default=None, help="the run whose agent acts (optional with --policy random --env)")
    co.add_argument("--episodes", type=_positive_int, required=True, help="episodes to record")
    co.add_argument("--out", required=True, help="directory of the dataset to write (Minari format, HDF5)")
    co.add_argument("--deterministic", action="store_true", help="the policy's deterministic action (default: sampled)")
    co.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    co.add_argument("--policy", choices=("agent", "random"), default="agent", help="agent (the run's) or random actions")
    co.add_argument("--env", default=None, help="env id for --policy random without a run directory")
    co.add_argument("--dataset-id", default=None, help="Minari id recorded in the metadata (default ENV/ascent-ALGO-v0)")

    ar = sub.add_parser("arena", help="two players over N board games, alternating the first move: W/D/L with 95%% CIs")
    ar.add_argument("player_a", help="random, mc:N, mcts:SIMS, mcts-solver:SIMS, minimax, openspiel-mcts:SIMS, "
                    "openspiel-mcts-solver:SIMS, human, an AlphaZero run directory (RUN_DIR[:SIMS]), a run trained on "
                    "the PettingZoo game (selfplay), or on a Markov game a minimaxq/nashq/iql run")
    ar.add_argument("player_b", help="the same choices")
    ar.add_argument("--game", default=None, help="OpenSpiel game, e.g. tic_tac_toe, connect_four(rows=6,columns=7); a "
                    "PettingZoo turn-based game, e.g. pettingzoo:tictactoe_v3; or a Markov game, e.g. soccer "
                    "(default: a run's own)")
    ar.add_argument("--games", type=_positive_int, default=100, help="games to play")
    ar.add_argument("--seed", type=int, default=0, help="players' random seeds (B's is seed + 1)")
    ar.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")

    pg = sub.add_parser("play", help="play a board game at the terminal against a trained run or any arena player")
    pg.add_argument("opponent", help="an AlphaZero run directory (RUN_DIR[:SIMS]) or an arena player (mcts:1000, ...)")
    pg.add_argument("--game", default=None, help="OpenSpiel game (default: the run's own)")
    pg.add_argument("--second", action="store_true", help="let the opponent move first")
    pg.add_argument("--seed", type=int, default=0)

    ls = sub.add_parser("list", help="algorithms and presets; `ascent list ALGO` shows its hyperparameters")
    ls.add_argument("algo", nargs="?")
    _add_diagnose_parser(sub)
    _add_tune_parser(sub)
    tb = sub.add_parser("table", help="a tabular run's greedy policy (arrows on grid worlds) and a heat-map of its Q table")
    tb.add_argument("run_dir")
    tb.add_argument("--out", default=None, help="PNG path (default RUN_DIR/q_table.png)")
    return p


def _add_diagnose_parser(sub) -> None:
    d = sub.add_parser("diagnose", help="measure the theory: gradient-estimator variance, the LQR gradient fields, "
                       "equilibria of matrix games")
    dsub = d.add_subparsers(dest="diagnostic", required=True, metavar="DIAGNOSTIC")
    gv = dsub.add_parser("gradient-variance", help="bias and variance of each policy-gradient estimator")
    gv.add_argument("--env", default=None, help="Gymnasium env id (default CartPole-v1, or the run's env)")
    gv.add_argument("--run-dir", default=None, help="use this trained run's policy (default: a fresh random one)")
    gv.add_argument("--episodes", type=_positive_int, default=10, help="episodes per batch (one gradient estimate)")
    gv.add_argument("--batches", type=_positive_int, default=50, help="independent batches (estimates per estimator)")
    gv.add_argument("--reference-episodes", type=_positive_int, default=2000, help="episodes of the reference gradient")
    gv.add_argument("--estimators", default="full,full+mean,full+optimal,rtg,rtg+mean,rtg+optimal,rtg+value",
                    help="comma list: full, rtg (reward-to-go), each with +mean, +optimal or +value")
    gv.add_argument("--gamma", type=float, default=1.0, help="discount (1: every estimator targets the same gradient)")
    gv.add_argument("--seed", type=int, default=0)
    gv.add_argument("--out", default=".", help="directory for gradient_variance.{png,csv,json}")
    eq = dsub.add_parser("equilibria", help="Nash, correlated and Stackelberg equilibria of a two-player matrix game")
    eq.add_argument("game", help="prisoners_dilemma, chicken, matching_pennies, rock_paper_scissors, battle_of_the_sexes, "
                    "coordination, leader_follower, or a JSON file {\"row\": [[...]], \"column\": [[...]]}")
    eq.add_argument("--json", action="store_true", help="one JSON object (its `nash` lists per-player mixed strategies)")
    eq.add_argument("--out", default=None, help="also draw fictitious play, independent Q-learners and gradient ascent "
                    "with the equilibria marked: DIR/equilibria-GAME.png")
    eq.add_argument("--iterations", type=_positive_int, default=10_000, help="iterations of each learning dynamic")
    lq = dsub.add_parser("lqr-field", help="vanilla vs natural gradient fields and paths, 1-D linear-Gaussian problem")
    lq.add_argument("--out", default=".", help="directory for lqr_field.png")
    lq.add_argument("--horizon", type=_positive_int, default=20, help="steps per episode T")
    lq.add_argument("--action-cost", type=float, default=1.0, help="c in r = -s^2 - c a^2")
    lq.add_argument("--steps", "--iterations", dest="iterations", type=_positive_int, default=100,
                    help="gradient steps of each path")
    lq.add_argument("--lr", type=float, default=0.002, help="vanilla gradient step size")
    lq.add_argument("--kl-step", type=float, default=0.02, help="natural gradient step: 1/2 d^T F d = KL_STEP")
    lq.add_argument("--start-k", type=float, default=-0.2)
    lq.add_argument("--start-sigma", type=float, default=1.0)


def _add_tune_parser(sub) -> None:
    tu = sub.add_parser("tune", help="search hyperparameters with Optuna (TPE, median pruning); the study in "
                        "--out resumes, and writes best.toml for `train --preset`")
    tu.add_argument("algo", help="algorithm (`ascent list`)")
    tu.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    tu.add_argument("--trials", type=_positive_int, default=20, help="trials the study holds when done (finished "
                    "ones count: the same command continues an interrupted study)")
    tu.add_argument("--steps", type=_positive_int, default=None, help="env steps of each trial (default: the "
                    "preset's)")
    tu.add_argument("--jobs", type=_positive_int, default=1, help="worker processes on the study at once (with "
                    "--ray-address: trials at once on the cluster)")
    tu.add_argument("--out", default=None, help="the study's directory: study.db, best.toml, history.png, "
                    "importances.png, final/ (default tune/ALGO-ENV)")
    tu.add_argument("--timeout", type=float, default=None, help="seconds after which no trial starts")
    tu.add_argument("--space", default=None, metavar="FILE.toml", help="search space of `name = {type = \"float\", "
                    "low = 1e-5, high = 1e-2, log = true}` / `{type = \"int\", low, high}` / `{type = \"categorical\", "
                    "choices = [...]}` / `value` (fixed) lines (default: the algorithm's SEARCH_SPACE, which "
                    "`ascent list ALGO` prints)")
    tu.add_argument("--seed", type=int, default=0, help="every trial trains from it; the sampler's seed derives from it")
    tu.add_argument("--eval-every", type=_positive_int, default=None, help="env steps between a trial's evaluations, "
                    "reported to the median pruner (default: a quarter of --steps)")
    tu.add_argument("--eval-episodes", type=_positive_int, default=5, help="episodes of each evaluation")
    tu.add_argument("--final-seeds", type=int, default=3, help="fresh seeds the finalists are trained again on")
    tu.add_argument("--finalists", type=_positive_int, default=3, help="the best trials by value that are trained "
                    "on the fresh seeds; best.toml is the one with the best mean there (a trial's value is one seed's)")
    tu.add_argument("--final-episodes", type=_positive_int, default=20, help="episodes of each fresh-seed run's "
                    "evaluation")
    tu.add_argument("--compare-preset", action="store_true", help="also train the env's preset (the defaults "
                    "without one) on those fresh seeds, beside the finalists")
    tu.add_argument("--startup-trials", type=int, default=5, help="trials sampled at random and never pruned before "
                    "TPE and the pruner act")
    tu.add_argument("--ray-address", default=None, help="run the trials as Ray tasks, a CPU each, on this cluster "
                    "('auto', HOST:PORT, ray://HOST:PORT, 'local' a local Ray, '' RAY_ADDRESS's); the study stays in "
                    "--out here (default: --jobs processes here, no Ray)")


def cmd_train(args: argparse.Namespace) -> int:
    from ascent.core.config import NO_PRESET, parse_set, resolve_preset
    from ascent.core.run import RunDirectory
    from ascent.envs.board_games import is_board_game_id
    from ascent.envs.multiagent import is_multiagent_id
    from ascent.envs.vector import check_env_id
    from ascent.registry import class_path, get_algorithm

    # The checks that need no algorithm module first: a mistake there is reported before torch loads.
    class_path(args.algo)
    algo = args.algo.lower()
    if not is_board_game_id(args.env) and not is_multiagent_id(args.env):  # (checked when loaded)
        check_env_id(args.env)
    overrides = parse_set(args.set)
    if args.ray_address is not None:
        overrides["ray_address"] = args.ray_address
    preset_name, preset_values = resolve_preset(algo, args.env, args.preset)
    steps = args.steps
    if steps is None:
        steps = int(preset_values.get("n_timesteps", 0))
        if steps <= 0:
            raise ConfigError("--steps is required (no preset gives a default number of steps for this env)")
    run = RunDirectory(args.run_dir or f"runs/{algo}-{args.env}-s{args.seed}")
    run_dir = run.path
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(f"--run-dir {run.path} is a file, not a directory; pick another --run-dir")
    if run.holds_a_run():
        if not args.overwrite:
            resumable = f"`ascent resume {run.path}` continues it, " if run.checkpoint.exists() else ""
            raise ConfigError(f"{run.path} already holds a run; {resumable}--overwrite starts over, or pick another --run-dir")
        run.clear()
    cls = get_algorithm(algo)
    agent = cls(args.env, seed=args.seed, run_dir=run_dir, preset=preset_name or NO_PRESET, **overrides)
    print(f"training {cls.algo} on {args.env} for {steps} steps (seed {args.seed}, preset {agent.preset or 'none'}) -> {run_dir}")
    agent.learn(steps, progress_bar=not args.no_progress, track=args.track)
    result = agent.evaluate(args.eval_episodes)
    _write_eval(run_dir, result)
    print(f"evaluation over {result['episodes']} episodes: {result['mean_return']:.2f} +- {result['std_return']:.2f}")
    print(f"run directory: {run_dir} (metrics.csv, tb/, model.pt, learning_curve.png)")
    return 0


def _write_eval(run_dir: Path, result: dict) -> None:
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")


def _load_run(run_dir: str, device: str | None = None):
    from ascent.core.run import RunDirectory
    from ascent.registry import load

    run = RunDirectory(run_dir)
    info = run.read_config()
    return load(run.trained_model(), verbose=0, device=device), info


def cmd_eval(args: argparse.Namespace) -> int:
    agent, _ = _load_run(args.run_dir, args.device)
    video_dir = Path(args.run_dir) / "videos" / "eval" if args.video else None
    result = agent.evaluate(args.episodes, deterministic=not args.stochastic, seed=args.seed, video_dir=video_dir)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{agent.algo} {agent.env_id}: mean return {result['mean_return']:.2f} +- {result['std_return']:.2f} "
              f"over {result['episodes']} episodes (mean length {result['mean_length']:.1f})"
              + (f" against {result['opponent']} (+1 a win, 0 a draw, -1 a loss)" if "opponent" in result else ""))
        if video_dir is not None:
            print(f"videos: {video_dir}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from ascent.core.run import read_run_config
    from ascent.registry import get_algorithm

    info = read_run_config(args.run_dir)
    cls = get_algorithm(info.get("algo", "?"))
    agent = cls.resume(args.run_dir, progress_bar=not args.no_progress, device=args.device, ray_address=args.ray_address,
                       track=args.track)
    result = agent.evaluate(10)
    _write_eval(Path(args.run_dir), result)
    print(f"resumed run finished at {agent.num_steps} steps; evaluation: {result['mean_return']:.2f} +- {result['std_return']:.2f}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from ascent.core.config import resolve_preset
    from ascent.envs.vector import check_env_id
    from ascent.registry import class_path

    class_path(args.algo)  # (the mistakes that need neither torch nor Optuna first)
    algo = args.algo.lower()
    check_env_id(args.env)
    steps = args.steps or int(resolve_preset(algo, args.env, None)[1].get("n_timesteps", 0))
    if steps <= 0:
        raise ConfigError("--steps is required (no preset gives a default number of steps for this env)")
    from ascent.tuning.study import TuneSettings, tune

    out = args.out or f"tune/{algo}-{args.env}"
    tune(TuneSettings(algo, args.env, args.trials, steps, out, jobs=args.jobs, timeout=args.timeout,
                      space_file=args.space, seed=args.seed, eval_every=args.eval_every,
                      eval_episodes=args.eval_episodes, final_seeds=args.final_seeds, finalists=args.finalists,
                      final_episodes=args.final_episodes,
                      compare_preset=args.compare_preset,
                      startup_trials=args.startup_trials, ray_address=args.ray_address))
    print(f"train with it: ascent train {algo} --env {args.env} --preset {Path(out) / 'best.toml'}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from ascent.imitation.datasets import collect

    r = collect(args.run_dir, args.episodes, args.out, args.deterministic, args.seed, args.policy, args.env, args.dataset_id)
    print(f"recorded {r['episodes']} episodes ({r['steps']} steps) of {args.policy if args.policy == 'random' else args.run_dir}: "
          f"mean return {r['mean_return']:.2f} +- {r['std_return']:.2f}")
    print(f"dataset {r['dataset_id']}: {r['path']} (use it with --set dataset={r['path']})")
    return 0


def _arena_game(spec: str | None, players: list[str]):
    from ascent.search.games import arena_game

    if spec is None:  # the game a run was trained on
        from ascent.search.players import run_game

        spec = next((g for g in (run_game(p) for p in players) if g), None)
        if spec is None:
            raise ConfigError("which game? add --game GAME (e.g. --game tic_tac_toe), or name a run directory")
    return arena_game(spec)


def cmd_arena(args: argparse.Namespace) -> int:
    from ascent.search.arena import arena, format_result
    from ascent.search.players import make_player

    game = _arena_game(args.game, [args.player_a, args.player_b])
    a, b = make_player(args.player_a, game, args.seed), make_player(args.player_b, game, args.seed + 1)
    tty = sys.stderr.isatty() and not args.json
    result = arena(game, a, b, args.games, on_game=(lambda i, c: print(
        f"\r  game {i + 1}/{args.games}: {c['wins']}/{c['draws']}/{c['losses']} (W/D/L of {a.name})", end="",
        file=sys.stderr, flush=True)) if tty else None)
    if tty:
        print(file=sys.stderr)
    print(json.dumps(result) if args.json else format_result(result))
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from ascent.search.arena import play_game
    from ascent.search.players import make_player

    game = _arena_game(args.game, [args.opponent])
    opponent, human = make_player(args.opponent, game, args.seed), make_player("human", game)
    players = [opponent, human] if args.second else [human, opponent]
    final = []
    returns = play_game(game, players, on_end=final.append)
    mine = returns[1 if args.second else 0]
    print(f"\n{final[0]}\n\n{'you win' if mine > 0 else 'you lose' if mine < 0 else 'a draw'} against {opponent.name}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ascent.core.plotting import check_column, plot_runs

    check_column(args.run_dirs, args.metric)
    out = args.out or (Path(args.run_dirs[0]) / "learning_curve.png" if len(args.run_dirs) == 1 else "curves.png")
    path = plot_runs(args.run_dirs, out, column=args.metric, smoothing=args.smoothing)
    print(f"wrote {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ascent.registry import ALGORITHMS, get_algorithm
    from ascent.core.config import config_help, declarations, load_presets
    from ascent.core.zoo import zoo_mapping

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
    if args.algo:
        from ascent.tuning.spaces import algorithm_space, space_lines

        if cls.search_space:
            print(f"search space of `ascent tune {cls.algo}` (the format of a --space FILE.toml):")
            print("\n".join(f"  {line}" for line in space_lines(algorithm_space(cls))))
        else:
            print(f"search space: none declared; `ascent tune {cls.algo}` takes one with --space FILE.toml")
        print("\n".join(zoo_mapping(cls.algo, declarations(cls.Config))))
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    if args.diagnostic == "equilibria":
        from ascent.multiagent.normal_form import equilibria, format_equilibria, load_normal_form

        game = load_normal_form(args.game)
        report = equilibria(game)
        if args.out is not None:
            from ascent.multiagent.dynamics import draw

            figure = Path(args.out) / f"equilibria-{game.name}.png"
            report["dynamics"] = {"iterations": args.iterations, "final": draw(game, figure, args.iterations),
                                  "figure": str(figure)}
        print(json.dumps(report) if args.json else format_equilibria(report))
        return 0
    if args.diagnostic == "lqr-field":
        from ascent.theory.lqr import SIGMA_FLOOR, lqr_field

        s = lqr_field(args.out, args.horizon, args.action_cost, args.iterations, args.lr, args.kl_step,
                      args.start_k, args.start_sigma)
        print(f"k* = {s['k_star']:.4f} (best stationary gain for T = {s['horizon']}, sigma -> 0; "
              f"infinite-horizon Riccati gain {s['riccati_gain']:.4f})")
        for method, step in (("vanilla", f"lr {s['lr']:g}"), ("natural", f"KL step {s['kl_step']:g}")):
            p, at = s[method], s[method]["sigma_quarter_at"]
            quarter = f"sigma < start/4 from step {at}" if at is not None else "sigma stays above start/4"
            if p["steps_at_sigma_floor"]:
                quarter += f", at the floor sigma = {SIGMA_FLOOR:g} for {p['steps_at_sigma_floor']} steps"
            print(f"{method:8s} ({step}, {s['iterations']} steps): ends at k = {p['final'][0]:.4f}, "
                  f"sigma = {p['final'][1]:.4f}, |k - k*| = {p['distance_to_k_star']:.4f}, J = {p['J']:.4f}; {quarter}")
        print(f"wrote {s['png']}")
        return 0
    from ascent.theory.gradient_variance import format_table, gradient_variance, write_report

    report = gradient_variance(args.env, args.estimators, args.episodes, args.batches, args.reference_episodes,
                               args.seed, args.run_dir, args.gamma)
    print(format_table(report))
    paths = write_report(report, args.out)
    print(f"wrote {paths['png']} ({paths['csv'].name}, {paths['json'].name})")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from ascent.theory.tabular_planning import plot_q_table, table_report

    agent, _ = _load_run(args.run_dir)
    if not hasattr(agent, "q_table"):
        raise ConfigError(f"{args.run_dir} is a {agent.algo} run; `ascent table` shows the tables of qlearning and sarsa runs")
    print(table_report(agent.q_table(), agent.env_id, agent.config.gamma))
    out = plot_q_table(agent.q_table(), agent.env_id, args.out or Path(args.run_dir) / "q_table.png",
                       title=f"{agent.algo} {agent.env_id}")
    print(f"wrote {out}")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "resume": cmd_resume, "collect": cmd_collect, "plot": cmd_plot, "list": cmd_list,
            "tune": cmd_tune, "diagnose": cmd_diagnose, "table": cmd_table, "arena": cmd_arena, "play": cmd_play}


def os_error_line(err: OSError) -> str:
    """One line for an error of the operating system, naming the path and the fix."""
    where = f" {err.filename}" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return f"disk full while writing{where or ' the run directory'}: free some space or write the run elsewhere (--run-dir)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where} ({err.strerror}): pick a location you can write to (--run-dir; --out for plot)"
    if err.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return f"{where.strip() or 'a path'}: {err.strerror} (a file where a directory is wanted, or the reverse)"
    return f"{err.strerror or err}{':' + where if where else ''}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.getcwd() not in sys.path and "" not in sys.path:  # `--env mymodule:MyEnv-v0` finds ./mymodule.py, as
        sys.path.append(os.getcwd())                        # `python -m` would (an installed script does not)
    try:
        return COMMANDS[args.command](args)
    except TrainingInterrupted as err:  # SIGINT/SIGTERM: the checkpoint is written, the message says where
        print(f"ascent: {err}", file=sys.stderr)
        return 128 + err.signal_number
    except AscentError as err:
        print(f"ascent: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"ascent: error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second signal: stopped at once, nothing more written
        print("ascent: stopped at once; checkpoints written before stay as they are", file=sys.stderr)
        return 130
    finally:
        if "ray" in sys.modules:  # a distributed run's Ray session ends with the command (no ray:: process stays)
            from ascent.cluster.session import shutdown_ray
            shutdown_ray()


if __name__ == "__main__":
    sys.exit(main())

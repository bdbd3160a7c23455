"""Search and self-play benchmarks (issue 16): each section prints a markdown table.

  python benchmarks/search_bench.py speed        # MCTS simulations/s: ascent vs OpenSpiel's Python and C++ MCTSBot
  python benchmarks/search_bench.py parity       # mcts:1000 vs openspiel-mcts:1000 on Connect Four, 400 games
  python benchmarks/search_bench.py ttt          # AlphaZero tic-tac-toe (preset): vs minimax, network alone vs random
  python benchmarks/search_bench.py throughput   # self-play positions/s, batched leaf evaluation on and off, 0-2 actors
  python benchmarks/search_bench.py c4 --minutes 120 --actors 2    # AlphaZero Connect Four: training, snapshots
  python benchmarks/search_bench.py c4 --minutes 120 --resume      # ... the interrupted training continued
  python benchmarks/search_bench.py c4-eval [--az-sims 200]       # ... its snapshots vs mcts:1000, curve figure

Same settings on every side: UCT c = 2, one uniformly random rollout per leaf; `speed` with the
solver on (as OpenSpiel's bots are usually run), `parity` without (the arena's `mcts:N` and
`openspiel-mcts:N`). One process, one thread each.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "search-bench"


def positions(game, n: int, seed: int) -> list:
    """The initial position and positions after a few random plies (searches from mid-game too)."""
    rng, out = random.Random(seed), [game.new_initial_state()]
    while len(out) < n:
        state = game.new_initial_state()
        for _ in range(rng.randint(1, 6)):
            if state.is_terminal():
                break
            state.apply_action(rng.choice(state.legal_actions()))
        if not state.is_terminal():
            out.append(state)
    return out


def rate(search, states: list, seconds: float) -> float:
    """Simulations per second of `search(state) -> simulations done`, cycling over `states`."""
    done, t0, i = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        done += search(states[i % len(states)])
        i += 1
    return done / (time.perf_counter() - t0)


def cmd_speed(args) -> None:
    import pyspiel
    from open_spiel.python.algorithms import mcts as os_mcts

    from ascent.search.mcts import MCTS

    rows = []
    for name in ("tic_tac_toe", "connect_four"):
        game = pyspiel.load_game(name)
        states = positions(game, 8, 0)
        ours = MCTS(game, simulations=1000, uct_c=2.0, solve=True, seed=0)
        py_bot = os_mcts.MCTSBot(game, 2.0, 1000, os_mcts.RandomRolloutEvaluator(1, np.random.RandomState(0)),
                                 solve=True, random_state=np.random.RandomState(0))
        cpp_bot = pyspiel.MCTSBot(game, pyspiel.RandomRolloutEvaluator(1, 0), 2.0, 1000, 1000, True, 0, False)
        engines = {"ascent": lambda s: ours.search(s).visits[0],
                   "OpenSpiel Python": lambda s: py_bot.mcts_search(s).explore_count,
                   "OpenSpiel C++": lambda s: cpp_bot.mcts_search(s).explore_count}
        measured = {k: [] for k in engines}
        for _ in range(args.repeats):  # interleaved, so that a slow spell of the machine hits all alike
            for k, fn in engines.items():
                measured[k].append(rate(fn, states, args.seconds))
        med = {k: statistics.median(v) for k, v in measured.items()}
        rows.append([name, f"{med['ascent']:,.0f}", f"{med['OpenSpiel Python']:,.0f}", f"{med['OpenSpiel C++']:,.0f}",
                     f"{med['ascent'] / med['OpenSpiel Python']:.1f}x", f"{med['ascent'] / med['OpenSpiel C++']:.2f}x"])
    table(f"MCTS simulations/s (UCT c=2, one random rollout, solver on; 1,000-simulation searches from 8 positions; "
          f"median of {args.repeats} interleaved {args.seconds:g}-s runs)",
          ["game", "ascent", "OpenSpiel Python MCTSBot", "OpenSpiel C++ MCTSBot", "ascent / Python", "ascent / C++"], rows)


def cmd_parity(args) -> None:
    import pyspiel

    from ascent.search.arena import arena
    from ascent.search.players import make_player

    game = pyspiel.load_game("connect_four")
    a, b = make_player(f"mcts:{args.sims}", game, 0), make_player(f"openspiel-mcts:{args.sims}", game, 1)
    t0 = time.perf_counter()
    r = arena(game, a, b, args.games, on_game=lambda i, c: (i + 1) % 50 == 0 and print(f"  {i + 1} games: {c}",
                                                                                         flush=True))
    lo, hi = r["win_rate_ci95"]
    slo, shi = r["score_ci95"]
    table(f"Strength at equal simulations: Connect Four, {args.games} games alternating the first move",
          ["ascent", "peer", "W / D / L (ascent)", "score (95% CI)", "win rate (95% CI)", "s per move ascent / peer",
           "wall s"],
          [[a.name, b.name, f"{r['wins']} / {r['draws']} / {r['losses']}", f"{r['score']:.3f} ({slo:.3f}-{shi:.3f})",
            f"{r['win_rate']:.3f} ({lo:.3f}-{hi:.3f})",
            f"{r['seconds_a'] / r['moves_a']:.3f} / {r['seconds_b'] / r['moves_b']:.3f}",
            f"{time.perf_counter() - t0:.0f}"]])


def cmd_ttt(args) -> None:
    import shutil

    from ascent.search.alphazero import AlphaZero
    from ascent.search.arena import arena
    from ascent.search.players import make_player

    rows = []
    for seed in range(args.seeds):
        run = CACHE / f"alphazero-ttt-s{seed}"
        shutil.rmtree(run, ignore_errors=True)  # (measured again)
        agent = AlphaZero("tic_tac_toe", seed=seed, verbose=0, run_dir=run)  # (its preset: 100k self-play moves)
        agent.learn(agent_steps(agent), progress_bar=False)
        game = agent.game
        vs_minimax = arena(game, agent.player(seed=100), make_player("minimax", game, 101), 100)
        alone = arena(game, agent.player(0, seed=100), make_player("random", game, 102), 100)
        vs_mcts = arena(game, agent.player(seed=100), make_player("mcts:1000", game, 103), 100)
        rows.append([seed, f"{agent.train_seconds:.0f}", f"{agent.num_steps:,}", f"{agent.counters.games:,}",
                     f"{vs_minimax['wins']} / {vs_minimax['draws']} / {vs_minimax['losses']}",
                     f"{alone['wins']} / {alone['draws']} / {alone['losses']}",
                     f"{(alone['wins'] + alone['draws']) / alone['games']:.2f}",
                     f"{vs_mcts['wins']} / {vs_mcts['draws']} / {vs_mcts['losses']}"])
    table("AlphaZero tic-tac-toe (preset: 50 simulations, 32 lockstep games, 100k self-play moves; one core); 100 games "
          "each, alternating the first move",
          ["seed", "train s", "self-play moves", "games", "vs minimax W/D/L (50 sims)", "network alone vs random W/D/L",
           "non-losses", "vs mcts:1000 W/D/L (50 sims)"], rows)


def cmd_c4(args) -> None:
    """AlphaZero on Connect Four (its preset) for --minutes of training, with no evaluation inside the
    run (the clock is the training's alone): a network snapshot every --snapshot-minutes, for
    `c4-eval` to play against mcts:1000 afterwards."""
    import shutil

    from ascent.core.run import RunDirectory
    from ascent.search.alphazero import AlphaZero

    run = CACHE / "alphazero-c4"
    checkpoint = RunDirectory(run).checkpoint
    snapshots = run / "snapshots"
    every = args.snapshot_minutes * 60.0
    if args.resume:  # an interrupted training goes on from its last checkpoint, its clock with it
        if not checkpoint.exists():
            raise SystemExit(f"--resume: no checkpoint at {checkpoint}; run `c4` without it")
        agent = AlphaZero.load(checkpoint, run_dir=run, verbose=0)
        for later in snapshots.glob("*.pt"):  # snapshots taken after the checkpoint: training redoes them
            # (names hold the minutes to 0.1: 6 s of slack)
            if float(later.stem.removesuffix("min")) * 60.0 > agent.train_seconds + 6.0:
                later.unlink()
        print(f"resumed at {agent.train_seconds / 60:.1f} min, {agent.num_steps:,} moves", flush=True)
    else:
        shutil.rmtree(run, ignore_errors=True)
        snapshots.mkdir(parents=True)
        agent = AlphaZero("connect_four", seed=0, verbose=0, run_dir=run, n_actors=args.actors, eval_every=0)
    limit, due = args.minutes * 60.0, [(math.floor(agent.train_seconds / every + 1e-9) + 1) * every]

    def snapshot(agent, metrics) -> bool:
        if agent.train_seconds >= due[0] or agent.train_seconds >= limit:
            agent.save(snapshots / f"{agent.train_seconds / 60:06.1f}min.pt", replay=False)
            due[0] += every
            print(f"{agent.train_seconds / 60:5.1f} min  {agent.num_steps:>9,} moves  {agent.counters.games:>7,} games  "
                  f"{metrics['actor_steps_per_s']:6.0f} moves/s while playing", flush=True)
        return agent.train_seconds < limit

    agent.learn(10**9, progress_bar=False, callbacks=snapshot)
    table(f"AlphaZero Connect Four: {args.minutes:g} min of training ({args.actors or 'no'} Ray actors; preset)",
          ["train min", "self-play moves", "games", "moves/s", "snapshots"],
          [[f"{agent.train_seconds / 60:.0f}", f"{agent.num_steps:,}", f"{agent.counters.games:,}",
            f"{agent.num_steps / agent.train_seconds:.0f}", len(list(snapshots.glob("*.pt")))]])


def cmd_c4_eval(args) -> None:
    """The snapshots of `c4` against mcts:1000: --curve-games each (the learning curve, a figure), and
    the last over --final-games; AlphaZero searches with --az-sims, its games played all at once."""
    from ascent.search.alphazero import AlphaZero
    from ascent.search.arena import arena
    from ascent.search.players import make_player

    snapshots = sorted((CACHE / "alphazero-c4" / "snapshots").glob("*.pt"))
    if not snapshots:
        raise SystemExit("no snapshots: run `python benchmarks/search_bench.py c4` first")
    curve = []
    if args.last_only:  # (the last snapshot alone: another --az-sims, no curve)
        snapshots = snapshots[-1:]
    for i, path in enumerate(snapshots):
        agent = AlphaZero.load(path, verbose=0)
        last = i == len(snapshots) - 1
        games = args.final_games if last else args.curve_games
        t0 = time.perf_counter()
        r = arena(agent.game, agent.player(args.az_sims, seed=100 + i), make_player("mcts:1000", agent.game, 200 + i), games)
        elo = r["elo"] if r["elo"] is not None else math.copysign(800.0, r["score"] - 0.5)
        curve.append((agent.train_seconds / 60, r["win_rate"], elo, agent.num_steps))
        print(f"{path.name}: {agent.num_steps:,} moves, {r['wins']}/{r['draws']}/{r['losses']} in {games} games "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if not args.last_only:
        figure(curve, ROOT / "benchmarks" / "figures" / "alphazero-connect4.png")
    table(f"AlphaZero Connect Four, the last snapshot ({agent.train_seconds / 60:.0f} min of training, "
          f"{agent.num_steps:,} self-play moves, {agent.counters.games:,} games): alphazero:{args.az_sims} against "
          f"mcts:1000, {args.final_games} games alternating the first move",
          ["W / D / L", "win rate (95% CI)", "score (95% CI)", "Elo (95% CI)", "as first / as second (W/D/L)",
           "s per move alphazero / mcts:1000"],
          [[f"{r['wins']} / {r['draws']} / {r['losses']}",
            f"{r['win_rate']:.2f} ({r['win_rate_ci95'][0]:.2f}-{r['win_rate_ci95'][1]:.2f})",
            f"{r['score']:.3f} ({r['score_ci95'][0]:.3f}-{r['score_ci95'][1]:.3f})",
            f"{format_elo(r['elo'])} ({format_elo(r['elo_ci95'][0], True)} to {format_elo(r['elo_ci95'][1])})",
            "{wins}/{draws}/{losses}".format(**r["as_first"]) + " , " + "{wins}/{draws}/{losses}".format(**r["as_second"]),
            f"{r['seconds_a'] / r['moves_a']:.3f} / {r['seconds_b'] / r['moves_b']:.3f}"]])
    table(f"its learning curve ({args.curve_games} games per snapshot, the last {args.final_games})",
          ["train min", "self-play moves", "win rate vs mcts:1000", "Elo vs mcts:1000 (+-800: all won/lost)"],
          [[f"{m:.0f}", f"{steps:,}", f"{w:.2f}", f"{e:+.0f}"] for m, w, e, steps in curve])


def format_elo(x, low: bool = False) -> str:
    return f"{x:+.0f}" if x is not None else ("-inf" if low else "+inf")


def figure(curve, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    minutes = [c[0] for c in curve]
    left.plot(minutes, [c[1] for c in curve], marker="o")
    left.set(xlabel="training minutes", ylabel="win rate against mcts:1000", ylim=(0, 1))
    right.plot(minutes, [c[2] for c in curve], marker="o", color="tab:orange")
    right.set(xlabel="training minutes", ylabel="Elo against mcts:1000 (+-800: all won/lost)")
    fig.suptitle("AlphaZero, Connect Four")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def agent_steps(agent) -> int:
    from ascent.core.config import load_presets

    preset = load_presets("alphazero").get(agent.preset or "", {})
    return int(preset.get("n_timesteps", 100_000))


def cmd_throughput(args) -> None:
    from ascent.search.alphazero import AlphaZero

    rows = []
    for game, sims, games in (("tic_tac_toe", 50, 32), ("connect_four", 50, 16)):
        for actors, batched in ((0, True), (0, False), (1, True), (2, True)):
            agent = AlphaZero(game, seed=0, verbose=0, simulations=sims, parallel_games=games, batched=batched,
                              n_actors=actors)
            try:
                agent.play_games()  # (a first round: Ray's actors start, torch warms up)
                t0 = time.perf_counter()
                batches = [b for _ in range(args.rounds) for b in agent.play_games()]
                dt = time.perf_counter() - t0
            finally:
                agent.release()
            moves, evals = sum(b["moves"] for b in batches), sum(b["evaluations"] for b in batches)
            rows.append([game, agent.net.kind, sims, games, actors or "— (in process)", "on" if batched else "off",
                         f"{moves / dt:,.0f}", f"{evals / dt:,.0f}"])
    table(f"Self-play throughput ({args.rounds} rounds after a first: each actor (or the process) plays its lockstep "
          "games to the end; one thread each)",
          ["game", "network", "simulations", "lockstep games per actor", "Ray actors", "batched leaf evaluation",
           "positions/s", "network evaluations/s"], rows)


SECTIONS = {"speed": cmd_speed, "parity": cmd_parity, "ttt": cmd_ttt, "throughput": cmd_throughput, "c4": cmd_c4,
            "c4-eval": cmd_c4_eval}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=sorted(SECTIONS))
    p.add_argument("--repeats", type=int, default=5, help="speed: interleaved runs per engine")
    p.add_argument("--seconds", type=float, default=2.0, help="speed: seconds per run")
    p.add_argument("--games", type=int, default=400, help="parity: games")
    p.add_argument("--sims", type=int, default=1000, help="parity: simulations per move")
    p.add_argument("--seeds", type=int, default=3, help="ttt: training seeds")
    p.add_argument("--rounds", type=int, default=3, help="throughput: measured rounds of self-play")
    p.add_argument("--minutes", type=float, default=120.0, help="c4: training minutes")
    p.add_argument("--actors", type=int, default=0, help="c4: Ray actors for self-play (0: in process)")
    p.add_argument("--resume", action="store_true",
                   help="c4: continue the interrupted training from its last checkpoint (its --actors kept)")
    p.add_argument("--final-games", type=int, default=100, help="c4-eval: games of the last snapshot against mcts:1000")
    p.add_argument("--curve-games", type=int, default=20, help="c4-eval: games of each earlier snapshot")
    p.add_argument("--last-only", action="store_true", help="c4-eval: the last snapshot only (no curve)")
    p.add_argument("--az-sims", type=int, default=200, help="c4-eval: AlphaZero's simulations per move")
    p.add_argument("--snapshot-minutes", type=float, default=10.0, help="c4: minutes of training between snapshots")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()

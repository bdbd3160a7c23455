"""Multi-agent benchmarks (issue 17): each section prints a markdown table.

  python benchmarks/multiagent_bench.py spread [--seeds 3 --steps 2000000 --only mappo,ippo,benchmarl]  # vs BenchMARL
  python benchmarks/multiagent_bench.py soccer [--seeds 3 --steps 300000 --learners MR,QR]   # Littman's experiment
  python benchmarks/multiagent_bench.py grid [--seeds 3 --steps 10000]      # Nash-Q vs IQL on Grid Game 1
  python benchmarks/multiagent_bench.py twostep [--seeds 3 --steps 4000]    # VDN vs QMIX on the two-step game
  python benchmarks/multiagent_bench.py adversary [--seeds 3 --steps 100000]  # MADDPG vs independent DDPG, simple_adversary
  python benchmarks/multiagent_bench.py selfplay [--game tictactoe_v3 --minutes 5 --seeds 3]  # self-play vs random, MCTS

soccer: Littman (1994), section 6. Four learners on grid soccer, seat 0: Minimax-Q against a random
player (MR) and against itself (MM), independent Q-learning the same two ways (QR, QQ). Each learnt
policy is then frozen and (1) plays --games games against a uniformly random player, (2) meets a
challenger: a Q-learner (ascent's `qlearning`) trained for --challenger-steps against the frozen
policy from the other seat, a best response, then --games games against it. Wins of the frozen
policy (a game cut at 100 steps is a draw). Policies are played as learnt: a minimax policy draws
from its mixed strategy, a Q-learner's greedy one breaks ties at random.

grid: Nash-Q against independent Q-learners on Hu & Wellman's Grid Game 1 (general-sum): the values
at the start and what the learnt strategies do when played (steps, both home, collisions).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import table  # noqa: E402


def play(policies, games: int, seed: int, game_name: str = "soccer") -> dict:
    """`games` games of the two policies (functions of the state); seat 0's wins, draws, losses."""
    from ascent.envs.markov_games import make_markov_game

    game, counts = make_markov_game(game_name), {"wins": 0, "draws": 0, "losses": 0}
    for g in range(games):
        game.reset(seed=seed + g)
        total = 0.0
        while game.agents:
            s = game.state()
            _, rew, _, _, _ = game.step({a: policies[i](s) for i, a in enumerate(game.possible_agents)})
            total += rew["player_0"]
        counts["wins" if total > 0 else "losses" if total < 0 else "draws"] += 1
    return counts


def random_policy(n_actions: int, seed: int):
    rng = np.random.default_rng(seed)
    return lambda s: int(rng.integers(n_actions))


def challenger(frozen, steps: int, seed: int):
    """A best response to the frozen seat-0 policy: Q-learning in seat 1 against it."""
    from ascent.algorithms.tabular import QLearning
    from ascent.envs.multiagent import OneSeatEnv

    agent = QLearning(OneSeatEnv("soccer", seat=1, opponent=frozen), seed=seed, verbose=0, gamma=0.9,
                      learning_rate=0.5, exploration_initial_eps=0.2, exploration_final_eps=0.05,
                      exploration_fraction=1.0)
    agent.learn(steps, progress_bar=False)
    q, rng = agent.q_table(), np.random.default_rng(seed)

    def greedy(s: int) -> int:
        best = np.flatnonzero(q[s] == q[s].max())
        return int(rng.choice(best))

    return greedy


def cmd_soccer(args) -> None:
    from ascent.multiagent.markov_q import IndependentQ, MinimaxQ

    learners = {"MR (minimax-Q vs random)": (MinimaxQ, "random"), "MM (minimax-Q vs itself)": (MinimaxQ, "self"),
                "QR (Q-learning vs random)": (IndependentQ, "random"), "QQ (Q-learning vs itself)": (IndependentQ, "self")}
    chosen = [k for k in learners if k.split()[0] in args.learners.split(",")]
    if not chosen:
        raise SystemExit(f"--learners: choose among {','.join(k.split()[0] for k in learners)}")
    rows = []
    for name in chosen:
        cls, opponent = learners[name]
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t0 = time.perf_counter()
            agent = cls("soccer", seed=seed, verbose=0, opponent=opponent)
            agent.learn(args.steps, progress_bar=False)
            train_s = time.perf_counter() - t0
            frozen = agent.policy(0, seed=1000 + seed)
            vs_random = play([frozen, random_policy(5, 2000 + seed)], args.games, 3000 + seed * args.games)
            best_response = challenger(agent.policy(0, seed=4000 + seed), args.challenger_steps, seed)
            vs_challenger = play([frozen, best_response], args.games, 5000 + seed * args.games)
            rows.append([name, seed, f"{args.steps:,}", f"{train_s:.0f}",
                         f"{100 * vs_random['wins'] / args.games:.1f}",
                         "{wins} / {draws} / {losses}".format(**vs_challenger),
                         f"{100 * vs_challenger['wins'] / args.games:.1f}"])
            print(" | ".join(map(str, rows[-1])), flush=True)
    table(f"Littman's soccer experiment: seat 0's learnt policy, frozen, against a random player and against its "
          f"challenger (Q-learning, {args.challenger_steps:,} steps against it), {args.games} games each",
          ["learner", "seed", "training steps", "train s", "% won vs random", "W / D / L vs challenger",
           "% won vs challenger"], rows)


def cmd_grid(args) -> None:
    from ascent.envs.markov_games import GridGame
    from ascent.multiagent.markov_q import IndependentQ, NashQ

    rows = []
    for name, cls in (("Nash-Q", NashQ), ("independent Q", IndependentQ)):
        for seed in range(args.seeds):
            agent = cls("grid_game", seed=seed, verbose=0, gamma=0.99, exploration=0.5)
            agent.learn(args.steps, progress_bar=False)
            start = GridGame()
            start.reset(seed=0)
            value = agent.tables.v.numpy()[:, start.state()] if cls is NashQ else agent.q[:, start.state()].max(axis=1)
            rng, lengths, home, collisions = np.random.default_rng(seed), [], 0, 0
            for g in range(args.games):
                rewards = agent.play(seed=g, rng=rng)
                lengths.append(len(rewards))
                home += int(rewards.sum(axis=0).min() > 90)
                collisions += int((rewards[:, 0] < 0).sum())
            rows.append([name, seed, f"{args.steps:,}", f"{value[0]:.1f} / {value[1]:.1f}", f"{np.mean(lengths):.2f}",
                         f"{100 * home / args.games:.0f}", f"{collisions / args.games:.2f}"])
    table(f"Grid Game 1 (Hu & Wellman 2003): the learnt strategies played {args.games} times (drawn from); "
          f"a Nash equilibrium has both home at step 4, values 100 * 0.99^3 = 97.0",
          ["learner", "seed", "steps", "value at the start (player 0 / 1)", "mean steps", "% games both home",
           "collisions per game"], rows)


def cmd_twostep(args) -> None:
    """The QMIX paper's two-step game: VDN and QMIX under uniform exploration, then the greedy team;
    the learnt Q_tot of state 2B's joint actions and the value each puts on the first step's choice."""
    import torch

    from ascent.multiagent.value_decomposition import QMIX, VDN

    rows = []
    for cls in (VDN, QMIX):
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            agent = cls("two_step", seed=seed, verbose=0, exploration_initial_eps=1.0, exploration_final_eps=1.0,
                        learning_starts=100, target_update_interval=100, buffer_size=5000)
            agent.learn(args.steps, progress_bar=False)
            seconds = time.perf_counter() - t0

            def q_tot(s: int, joint: tuple[int, int]) -> float:
                obs = np.zeros((1, 2, 3), np.float32)
                obs[0, :, s] = 1.0
                state = torch.zeros(1, 3)
                state[0, s] = 1.0
                q = agent.q_values(obs)[0]
                with torch.no_grad():
                    return agent.mixer(torch.as_tensor([[q[0, joint[0]], q[1, joint[1]]]], dtype=torch.float32), state).item()

            first = [max(q_tot(0, (a, b)) for b in (0, 1)) for a in (0, 1)]
            table_2b = " ".join(f"{q_tot(2, (a, b)):.1f}" for a in (0, 1) for b in (0, 1))
            rows.append([cls.algo, seed, f"{args.steps:,}", f"{first[0]:.2f} / {first[1]:.2f}", table_2b,
                         f"{agent.evaluate(5)['mean_return']:.0f}", f"{seconds:.0f}"])
    table("Two-step game (QMIX paper): uniform exploration for the whole run, then the greedy team; "
          "optimum 8 (2B, then B B), 2A pays 7",
          ["algo", "seed", "steps", "max Q_tot at state 1: A (to 2A) / B (to 2B)",
           "Q_tot at 2B: AA AB BA BB (true 0 1 1 8)", "greedy team return", "train s"], rows)


def cmd_adversary(args) -> None:
    """MADDPG against independent DDPG (its centralized_critic=false) on MPE's physical deception,
    mpe2:simple_adversary_v3: each algorithm trains both teams (its preset: the paper's hyperparameters,
    ascent/presets/maddpg.toml), then 50 greedy episodes of every pairing of good agents and adversary
    (the paper's cross-play): the good agents' return (agent_0's and agent_1's: one shared reward, the
    adversary's distance to the goal minus the nearest good agent's) and the adversary's (minus its
    distance). Against the same adversary, the good agents' returns compare the good agents alone."""
    from ascent.envs.multiagent import evaluate_team
    from ascent.multiagent.maddpg import MADDPG

    spec = "mpe2:simple_adversary_v3"

    def play(good, adversary, seed: int) -> tuple[float, float]:
        def actions_of(obs, state):
            actions, seat = good.team_actions(obs, explore=False)[0], good.team.agents.index("adversary_0")
            actions[:, seat] = adversary.team_actions(obs, explore=False)[0][:, seat]
            return actions

        ev = evaluate_team(spec, 50, seed, actions_of)["metrics"]
        return (ev["eval_return_agent_0"] + ev["eval_return_agent_1"]) / 2, ev["eval_return_adversary_0"]

    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        agents, seconds = {}, {}
        for name, centralized in (("maddpg", True), ("ddpg", False)):
            t0 = time.perf_counter()
            agents[name] = MADDPG(spec, seed=seed, verbose=0, centralized_critic=centralized)
            agents[name].learn(args.steps, progress_bar=False)
            seconds[name] = time.perf_counter() - t0
        for good, adversary in (("maddpg", "maddpg"), ("ddpg", "ddpg"), ("maddpg", "ddpg"), ("ddpg", "maddpg")):
            returns = play(agents[good], agents[adversary], 10_000 + seed)
            rows.append([good, adversary, seed, f"{args.steps:,}", f"{returns[0]:.1f}", f"{returns[1]:.1f}",
                         f"{seconds[good]:.0f}" if good == adversary else ""])
            print(" | ".join(map(str, rows[-1])), flush=True)
    table("simple_adversary_v3 (physical deception): both teams trained by MADDPG, or by independent DDPG, then 50 "
          "greedy episodes (25 steps) of every pairing; the good agents' and the adversary's return per episode",
          ["good agents", "adversary", "seed", "env steps", "good agents' return", "adversary's return", "train s"], rows)


def cmd_spread(args) -> None:
    """Cooperative navigation, mpe2:simple_spread_v3 (3 agents, 25-step episodes): ascent's MAPPO, ascent's
    IPPO (the same hyperparameters, the critic on the agent's own view) and BenchMARL's MAPPO (its own
    venv: benchmarks/setup_benchmarl.sh, then benchmarks/benchmarl_peer.py; PettingZoo's simple_spread),
    one after the other, at equal env steps. Every --eval-every steps: 10 deterministic episodes, the team
    return per agent (EPyMARL's convention: the agents' rewards summed over the episode, over the
    agents). Train s: the training's wall clock without the evaluations, set-up apart."""
    import json
    import subprocess
    import tempfile

    from ascent.multiagent.independent import IPPO
    from ascent.multiagent.mappo import MAPPO

    spec, here = "mpe2:simple_spread_v3", Path(__file__).resolve().parent
    rows, curves = [], {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name in args.only.split(","):
            if name == "benchmarl":
                peer = here.parent / ".venv-benchmarl" / "bin" / "python"
                if not peer.exists():
                    subprocess.run(["bash", str(here / "setup_benchmarl.sh")], check=True)
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "peer.json"
                    subprocess.run([str(peer), str(here / "benchmarl_peer.py"), "--frames", str(args.steps), "--seed",
                                    str(seed), "--eval-every", str(args.eval_every), "--out", str(out)], check=True)
                    peer_result = json.loads(out.read_text())
                curve, train_s, setup_s = peer_result["curve"], peer_result["train_s"], peer_result["setup_s"]
                steps = peer_result["frames"]
            else:
                cls = {"mappo": MAPPO, "ippo": IPPO}[name]
                curve, eval_s = [], [0.0]

                def evaluate(agent, metrics, curve=curve, eval_s=eval_s):
                    if agent.num_steps >= (len(curve) + 1) * args.eval_every or agent.num_steps >= args.steps:
                        t = time.perf_counter()
                        curve.append([agent.num_steps, agent.evaluate(10, seed=10_000 + seed)["mean_return"]])
                        eval_s[0] += time.perf_counter() - t

                t0 = time.perf_counter()
                agent = cls(spec, seed=seed, verbose=0)
                setup_s = time.perf_counter() - t0
                agent.learn(args.steps, callbacks=evaluate, progress_bar=False)
                train_s, steps = time.perf_counter() - t0 - setup_s - eval_s[0], agent.num_steps
            curves.setdefault(name, []).append(curve)
            rows.append([name, seed, f"{steps:,}", f"{curve[-1][1]:.2f}", f"{max(r for _, r in curve):.2f}",
                         f"{train_s:.0f}", f"{setup_s:.1f}", f"{steps / train_s:,.0f}"])
            print(" | ".join(map(str, rows[-1])), flush=True)
    table(f"simple_spread_v3, 3 agents: team return per agent (10 deterministic episodes) after {args.steps:,} env steps",
          ["library / algorithm", "seed", "env steps", "final return", "best evaluation", "train s", "set-up s",
           "env steps/s"], rows)
    marks = sorted({int(s) for runs in curves.values() for run in runs for s, _ in run})
    curve_rows = []
    for mark in marks:
        row = [f"{mark:,}"]
        for name in curves:
            values = [r for run in curves[name] for s, r in run if abs(s - mark) < args.eval_every / 2]
            row.append(f"{np.mean(values):.2f}" if values else "")
        curve_rows.append(row)
    table("Learning curves (mean over seeds; evaluation within half an interval of the mark)",
          ["env steps", *curves], curve_rows)


def cmd_selfplay(args) -> None:
    """Self-play with a population (ascent/multiagent/selfplay.py, with its preset for the game) on a
    PettingZoo turn-based game, for the preset's steps (--steps) or --minutes of wall clock per seed,
    whichever comes first (the step size decays to 0 over the steps); then the greedy policy in the arena:
    100 games against random from each seat (non-losses and wins) and, on tic-tac-toe, 100 games against
    mcts:1000, half from each seat (draws). The issue's targets: tictactoe_v3 within 5 minutes, >= 98%
    non-losses against random from either seat and >= 90% draws against mcts:1000; connect_four_v3 within
    20 minutes, >= 95% wins against random."""
    from ascent.core.config import resolve_preset
    from ascent.multiagent.selfplay import SelfPlay
    from ascent.search.arena import arena
    from ascent.search.games import arena_game
    from ascent.search.players import TurnBasedRunPlayer, make_player

    spec = args.game if args.game.startswith("pettingzoo:") else f"pettingzoo:{args.game}"
    minutes = args.minutes if args.minutes is not None else (20.0 if "connect_four" in spec else 5.0)
    steps = args.steps or int(resolve_preset("selfplay", spec, None)[1]["n_timesteps"])
    game = arena_game(spec)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        agent = SelfPlay(spec, seed=seed, verbose=0)
        deadline = time.perf_counter() + 60 * minutes
        agent.learn(steps, callbacks=lambda a, m: time.perf_counter() < deadline, progress_bar=False)
        me = TurnBasedRunPlayer(agent, f"selfplay-s{seed}")
        r = arena(game, me, make_player("random", game, seed=seed + 1), 200)  # (100 from each seat)
        first, second = r["as_first"], r["as_second"]
        row = [seed, f"{agent.num_steps:,}", f"{agent.train_seconds:.0f}", f"{agent.pool.learner_rating:.0f}",
               f"{first['wins'] + first['draws']}%", f"{second['wins'] + second['draws']}%",
               f"{first['wins']}%", f"{second['wins']}%"]
        if game.twin is not None and game.twin[0] == "tic_tac_toe":
            m = arena(game, me, make_player("mcts:1000", game, seed=seed + 2), 100)
            row += [f"{m['wins']}/{m['draws']}/{m['losses']}", f"{m['draws']}%"]
        rows.append(row)
        print(" | ".join(map(str, row)), flush=True)
    header = ["seed", "learner moves", "train s", "Elo (random = 0)", "non-losses vs random as first",
              "as second", "wins vs random as first", "as second"]
    if rows and len(rows[0]) > len(header):
        header += ["W/D/L vs mcts:1000", "draws vs mcts:1000"]
    table(f"Self-play PPO on {spec}, {minutes:g} minutes of training per seed; the greedy policy in the arena "
          "(100 games vs random from each seat; 100 vs mcts:1000 alternating seats)", header, rows)


SECTIONS = {"spread": cmd_spread, "soccer": cmd_soccer, "grid": cmd_grid, "twostep": cmd_twostep, "adversary": cmd_adversary,
            "selfplay": cmd_selfplay}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=sorted(SECTIONS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="training steps (soccer 300,000; grid 10,000)")
    p.add_argument("--games", type=int, default=1000, help="games per evaluation (grid: 100)")
    p.add_argument("--challenger-steps", type=int, default=200_000)
    p.add_argument("--learners", default="MR,MM,QR,QQ", help="soccer: which of Littman's four learners")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--only", default="mappo,ippo,benchmarl", help="spread: which of mappo, ippo, benchmarl")
    p.add_argument("--eval-every", type=int, default=120_000, help="spread: env steps between evaluations (BenchMARL: "
                   "a multiple of its 6,000 frames per batch)")
    p.add_argument("--game", default="tictactoe_v3", help="selfplay: tictactoe_v3 or connect_four_v3 (PettingZoo's)")
    p.add_argument("--minutes", type=float, default=None, help="selfplay: training minutes per seed (tictactoe 5, "
                   "connect four 20)")
    args = p.parse_args()
    if args.steps is None:
        args.steps = {"spread": 2_000_000, "soccer": 300_000, "grid": 10_000, "twostep": 4_000, "adversary": 100_000,
                      "selfplay": 0}[args.section]
    if args.section == "grid" and args.games == 1000:
        args.games = 100
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()

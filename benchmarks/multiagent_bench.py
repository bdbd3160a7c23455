"""Multi-agent benchmarks (issue 17): each section prints a markdown table.

  python benchmarks/multiagent_bench.py soccer [--seeds 3 --steps 300000 --learners MR,QR]   # Littman's experiment
  python benchmarks/multiagent_bench.py grid [--seeds 3 --steps 10000]      # Nash-Q vs IQL on Grid Game 1
  python benchmarks/multiagent_bench.py twostep [--seeds 3 --steps 4000]    # VDN vs QMIX on the two-step game

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


SECTIONS = {"soccer": cmd_soccer, "grid": cmd_grid, "twostep": cmd_twostep}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=sorted(SECTIONS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="training steps (soccer 300,000; grid 10,000)")
    p.add_argument("--games", type=int, default=1000, help="games per evaluation (grid: 100)")
    p.add_argument("--challenger-steps", type=int, default=200_000)
    p.add_argument("--learners", default="MR,MM,QR,QQ", help="soccer: which of Littman's four learners")
    p.add_argument("--first-seed", type=int, default=0)
    args = p.parse_args()
    if args.steps is None:
        args.steps = {"soccer": 300_000, "grid": 10_000, "twostep": 4_000}[args.section]
    if args.section == "grid" and args.games == 1000:
        args.games = 100
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()

"""Self-play with a population: PPO against a pool of its own past snapshots, with action masking and
Elo ratings, on turn-based two-player games (`--env pettingzoo:tictactoe_v3`, `pettingzoo:connect_four_v3`;
ascent/envs/turn_based.py).

The learner is PPO, unchanged (ascent.algorithms.ppo: clipped surrogate, GAE): one policy plays both
seats, its seat alternating between the games of each copy of the game, and its illegal moves are
masked out of the categorical distribution when it acts and in the loss (ascent.nets.policies: the
`action_mask` of the observation). Only the learner's own moves are its transitions; the reward is
the outcome at the end (+1 / 0 / -1).

Opponents, drawn for every game (fictitious self-play's sampling, Heinrich et al. 2015; the scheme of
Bansal et al. 2018 and Unity ML-Agents' self-play trainer, whose option names the config borrows):
  - a uniformly random player with probability `random_opponent_ratio`: it shows the learner positions
    good play never reaches (tic-tac-toe at 200k moves, 0.1 -> 0.3: losses to random 24 -> 6 in 400
    games, to minimax 52 -> 15 in 100; 0.5 was worse again, 67 to minimax at 400k);
  - otherwise the current policy itself with probability `play_against_latest_model_ratio`,
  - else a snapshot drawn uniformly from the pool: a frozen copy of the policy is added every
    `save_steps` env steps, the oldest leaving past `window` snapshots.
Opponents sample their moves from their policies (masked), from the env's numpy stream. A game starts
after 0..`random_opening` uniformly random moves (drawn per game), as AlphaZero's early temperature
varies its openings: self-play otherwise settles on one line, and the policy never learns to answer
the others (tic-tac-toe at 200k moves: as second player it lost 33 of 50 games against minimax
without them). The step size decays to 0 by default (`lin_5e-4`): with a constant one the policy kept
swinging (tic-tac-toe, losses as second player in 500 games against random: 7, 2, 11 at 300k, 400k,
500k moves; decayed over 600k, 0 and 3 at the end for two seeds, and 95-97 draws in 100 against minimax).

Elo ratings of the population (Elo 1978): every `elo_every` env steps the current policy plays
`elo_games` games (half from each seat, both sides sampling their moves) against the random player and
the newest `elo_opponents` snapshots; after each game both players' ratings move by
K (score - expected score), expected = 1 / (1 + 10^((R_other - R) / 400)). The random player is the
anchor at 0, never moved; a snapshot enters with the rating the policy had. Logged: `elo` (the
policy's), `elo_pool_max`, `score_vs_pool`, and the greedy policy's win / draw / loss rates against
random over `elo_games` games (`random_win`, ...: how the arena plays a run). The pool, with the
ratings, is in the checkpoint: a resumed run continues with its opponents.

Env steps (`--steps`) are the learner's moves in all copies; the opponents' are not counted.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ascent.algorithms.ppo import PPO, PPOConfig
from ascent.core.config import param
from ascent.envs.multiagent import is_multiagent_id
from ascent.envs.turn_based import Mover, TurnBasedGame, TurnBasedVecEnv, play_games, random_mover
from ascent.errors import EnvError
from ascent.nets.policies import ActorCritic


@dataclass
class SelfPlayConfig(PPOConfig):
    n_envs: int = param(16, "copies of the game played side by side (the learner's seat alternates between a "
                        "copy's games)")
    n_steps: int = param(64, "learner moves per copy per rollout (batch = n_steps * n_envs)", positive=True)
    batch_size: int = param(256, "minibatch size", positive=True)
    learning_rate: float | str = param("lin_5e-4", "Adam step size; 'lin_X' decays linearly from X to 0 (the end "
                                       "of the run settles the policy: measured, a constant one left it swinging)",
                                       schedule=True)
    ent_coef: float = param(0.01, "entropy bonus coefficient (keeps the self-play games varied)")
    save_steps: int = param(16_384, "env steps between snapshots of the policy joining the opponent pool "
                            "(ML-Agents' save_steps)", positive=True)
    window: int = param(10, "snapshots kept in the pool, the oldest leaving first (ML-Agents' window)", positive=True)
    play_against_latest_model_ratio: float = param(0.5, "of the games not against random, the share against the "
                                                   "current policy itself; the others against a snapshot drawn "
                                                   "uniformly from the pool (ML-Agents' name)", range=(0.0, 1.0))
    random_opponent_ratio: float = param(0.3, "probability that a game's opponent is a uniformly random player "
                                         "instead", range=(0.0, 1.0))
    random_opening: int = param(4, "a game starts after 0..random_opening uniformly random moves (drawn per game): "
                                "varied openings that both players then play on from", nonnegative=True)
    elo_every: int = param(65_536, "env steps between Elo rounds (0: never)", nonnegative=True)
    elo_games: int = param(100, "games of each pairing in an Elo round, half from each seat; also the greedy "
                           "policy's games against random", positive=True)
    elo_opponents: int = param(3, "the newest snapshots of the pool the policy meets in an Elo round, besides "
                               "random", nonnegative=True)
    elo_k: float = param(16.0, "Elo K-factor: rating points per game of surprise", range=(0.0, math.inf),
                         low_open=True)


def policy_mover(policy: ActorCritic, greedy: bool = False) -> Mover:
    """A policy as a mover of turn-based games: batched observation dicts -> moves drawn from its masked
    distribution with the caller's numpy Generator (its most probable ones where `greedy`). In numpy
    where the policy allows (ActorCritic.numpy_logits: ~20 against ~150 us a call, and opponents are
    called several times a step), else through torch."""
    numpy_logits = policy.numpy_logits()

    @torch.inference_mode()
    def torch_logits(obs: dict) -> np.ndarray:
        return policy.dist_params(policy.encoder.preprocess(obs)).float().cpu().numpy()

    logits_of = numpy_logits or torch_logits

    def move(obs: dict, rng: np.random.Generator) -> np.ndarray:
        logits = logits_of(obs)  # (B, n), masked
        if greedy:
            return logits.argmax(1)
        p = np.exp(logits - logits.max(1, keepdims=True))
        cdf = p.cumsum(1)
        u = rng.random(len(cdf)) * cdf[:, -1]
        return np.minimum((cdf <= u[:, None]).sum(1), cdf.shape[1] - 1)  # (inverse CDF: never a masked move)

    return move


def elo_expected(rating: float, other: float) -> float:
    """The expected score of a player rated `rating` against one rated `other`."""
    return 1.0 / (1.0 + 10.0 ** ((other - rating) / 400.0))


class OpponentPool:
    """The past snapshots of the learner's policy (frozen copies) with the env step each was taken at,
    the population's Elo ratings and the learner's, checkpointed like a module."""

    def __init__(self, policy: ActorCritic, window: int):
        self.policy, self.window = policy, window
        self.snapshots: list[ActorCritic] = []
        self.born: list[int] = []  # env step of each snapshot
        self.ratings: list[float] = []
        self.learner_rating = 0.0

    def __len__(self) -> int:
        return len(self.snapshots)

    def _copy(self) -> ActorCritic:
        snapshot = copy.deepcopy(self.policy)
        snapshot.requires_grad_(False)
        return snapshot

    def add(self, step: int) -> None:
        self.snapshots.append(self._copy())
        self.born.append(int(step))
        self.ratings.append(self.learner_rating)
        if len(self.snapshots) > self.window:
            del self.snapshots[0], self.born[0], self.ratings[0]

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": [s.state_dict() for s in self.snapshots], "born": list(self.born),
                "ratings": list(self.ratings), "learner_rating": self.learner_rating}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots = []
        for weights in state["snapshots"]:
            snapshot = self._copy()
            snapshot.load_state_dict(weights)
            self.snapshots.append(snapshot)
        self.born, self.ratings = [int(b) for b in state["born"]], [float(r) for r in state["ratings"]]
        self.learner_rating = float(state["learner_rating"])


class SelfPlay(PPO):
    """PPO against a pool of its own snapshots, with Elo ratings (module docstring)."""

    algo = "selfplay"
    Config = SelfPlayConfig
    curve_metric = "elo"

    def setup(self) -> None:
        if not isinstance(self.envs.env, TurnBasedVecEnv):
            kind = ("a parallel (simultaneous-move) multi-agent env, which ippo, mappo and the Markov-game learners "
                    "train on" if is_multiagent_id(self.env_id) else "a single-agent env")
            raise EnvError(f"{self.algo} plays turn-based two-player games (PettingZoo's classic AEC games: "
                           f"pettingzoo:tictactoe_v3, pettingzoo:connect_four_v3); {self.env_id or 'this env'} "
                           f"(observations {self.envs.observation_space}, actions {self.envs.action_space}) is {kind}")
        super().setup()
        self.pool = OpponentPool(self.policy, self.config.window)
        self.pool.add(0)  # (the initial policy: the pool is never empty)
        self.envs.env.random_opening = self.config.random_opening
        self.set_opponents()

    @property
    def game(self) -> TurnBasedGame:
        return self.envs.env.game

    def modules(self) -> dict:
        return {**super().modules(), "pool": self.pool}

    def set_opponents(self) -> None:
        """The env's opponent table: random, the live policy and every snapshot, with the sampling
        probabilities of the module docstring (set again every iteration: new snapshots, a loaded agent)."""
        c = self.config
        snapshots = {f"snapshot@{step}": policy_mover(s) for s, step in zip(self.pool.snapshots, self.pool.born)}
        rest = 1.0 - c.random_opponent_ratio
        latest = rest * (c.play_against_latest_model_ratio if snapshots else 1.0)
        table = {"random": random_mover, "latest": policy_mover(self.policy), **snapshots}
        probs = [c.random_opponent_ratio, latest] + [(rest - latest) / max(len(snapshots), 1)] * len(snapshots)
        self.envs.env.set_opponents(table, probs)

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        self.set_opponents()
        before = self.num_steps
        metrics = super().train_iteration()
        if self.num_steps // c.save_steps > before // c.save_steps:
            self.pool.add(self.num_steps)
            self.set_opponents()
        if c.elo_every and self.num_steps // c.elo_every > before // c.elo_every:
            metrics.update(self.elo_round())
        metrics["pool_size"] = float(len(self.pool))
        return metrics

    def elo_round(self) -> dict[str, float]:
        """Matches of the current policy against random and the newest snapshots; the ratings updated
        (module docstring). Seeded by the run's seed and step: the agent's own streams are not drawn from."""
        c, pool = self.config, self.pool
        seed = int(np.random.SeedSequence([self.seed, self.num_steps, 0xE10]).generate_state(1)[0] % (2**31))
        learner = policy_mover(self.policy)
        newest = list(range(len(pool)))[-c.elo_opponents:] if c.elo_opponents else []
        pairings = [(None, random_mover)] + [(i, policy_mover(pool.snapshots[i])) for i in newest]
        scores = []
        for i, opponent in pairings:
            r = play_games(self.game, learner, opponent, c.elo_games, seed)
            for outcome in r["outcomes"]:  # (game by game, as a tournament's ratings are kept)
                other = 0.0 if i is None else pool.ratings[i]
                delta = c.elo_k * ((outcome + 1.0) / 2.0 - elo_expected(pool.learner_rating, other))
                pool.learner_rating += delta
                if i is not None:
                    pool.ratings[i] -= delta
            if i is not None:
                scores.append((r["wins"] + 0.5 * r["draws"]) / c.elo_games)
        greedy = play_games(self.game, policy_mover(self.policy, greedy=True), random_mover, c.elo_games, seed + 1)
        metrics = {"elo": pool.learner_rating, "elo_pool_max": max(pool.ratings),
                   "random_win": greedy["wins"] / c.elo_games, "random_draw": greedy["draws"] / c.elo_games,
                   "random_loss": greedy["losses"] / c.elo_games}
        if scores:
            metrics["score_vs_pool"] = float(np.mean(scores))
        return metrics

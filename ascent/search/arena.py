"""The arena: players meet over N games of a board game, alternating who moves first, and the
result is A's wins, draws and losses with 95% confidence intervals and an Elo difference.

Intervals: Wilson's score interval for the win rate; for the score (win 1, draw 1/2, loss 0) the
normal interval with the per-game scores' sample variance. The Elo difference is
400 log10(s / (1 - s)) of the score s, with the interval mapped through the same function.
"""

from __future__ import annotations

import math
import time
from typing import Callable


def play_game(game, players: list, clocks: list[float] | None = None, moves: list[int] | None = None,
              on_end: Callable | None = None) -> list[float]:
    """One game, players[i] moving as player i; returns each player's outcome. `clocks` and `moves`
    (optional) accumulate each player's thinking time and number of moves; `on_end` gets the final state."""
    state = game.new_initial_state()
    while not state.is_terminal():
        player = state.current_player()
        t0 = time.perf_counter()
        action = players[player].step(state)
        if clocks is not None:
            clocks[player] += time.perf_counter() - t0
        if moves is not None:
            moves[player] += 1
        if action not in state.legal_actions():
            raise RuntimeError(f"{players[player].name} played the illegal move {action} in\n{state}")
        state.apply_action(action)
    if on_end is not None:
        on_end(state)
    return list(state.returns())


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def score_interval(wins: int, draws: int, losses: int, z: float = 1.96) -> tuple[float, float, float]:
    """The mean score and its normal 95% interval (clipped to [0, 1])."""
    n = wins + draws + losses
    s = (wins + 0.5 * draws) / n
    var = (wins * (1 - s) ** 2 + draws * (0.5 - s) ** 2 + losses * s ** 2) / max(n - 1, 1)
    half = z * math.sqrt(var / n)
    return s, max(0.0, s - half), min(1.0, s + half)


def elo_difference(score: float) -> float:
    """A's Elo advantage implied by its score (infinite at a score of 0 or 1)."""
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return 400.0 * math.log10(score / (1.0 - score))


def play_lockstep(game, seatings: list[list], clocks: list[dict], moves: list[dict]):
    """The games of `seatings` (each a [first, second] pair of players) played all at once: each round,
    each player in turn moves in every game where it is to move, with one call where it has
    `step_batch(states)` (AlphaZero's searches batch their network evaluations across games), game by
    game otherwise. Yields
    (index, returns) as each game ends; clocks/moves are accumulated per game and seat."""
    states = [game.new_initial_state() for _ in seatings]
    live = [g for g, s in enumerate(states) if not s.is_terminal()]
    for g in range(len(seatings)):
        if g not in live:
            yield g, list(states[g].returns())
    players = list({id(p): p for seating in seatings for p in seating}.values())
    while live:
        for player in players:  # (in turn, each in every game where it is now to move: B answers A's moves at once)
            where = [(g, states[g].current_player()) for g in live if not states[g].is_terminal()]
            where = [(g, seat) for g, seat in where if seatings[g][seat] is player]
            if not where:
                continue
            t0 = time.perf_counter()
            if hasattr(player, "step_batch"):
                actions = player.step_batch([states[g] for g, _ in where])
            else:
                actions = [player.step(states[g]) for g, _ in where]
            share = (time.perf_counter() - t0) / len(where)
            for (g, seat), action in zip(where, actions):
                clocks[g][seat] += share
                moves[g][seat] += 1
                if action not in states[g].legal_actions():
                    raise RuntimeError(f"{player.name} played the illegal move {action} in\n{states[g]}")
                states[g].apply_action(action)
        still = []
        for g in live:
            if states[g].is_terminal():
                yield g, list(states[g].returns())
            else:
                still.append(g)
        live = still


def arena(game, player_a, player_b, games: int, on_game: Callable[[int, dict], None] | None = None) -> dict:
    """A against B over `games` games, A first in the even-numbered ones. Returns wins, draws and
    losses of A (also as first and as second player), intervals, Elo and the seconds per move.
    Where a player has `step_batch` (and neither is a person at the terminal) the games are played
    all at once (play_lockstep); otherwise one after another."""
    counts = {"wins": 0, "draws": 0, "losses": 0}
    by_seat = {seat: {"wins": 0, "draws": 0, "losses": 0} for seat in ("first", "second")}
    seatings = [[player_a, player_b] if i % 2 == 0 else [player_b, player_a] for i in range(games)]
    game_clocks, game_moves = [[0.0, 0.0] for _ in seatings], [[0, 0] for _ in seatings]
    players = (player_a, player_b)
    if any(hasattr(p, "step_batch") for p in players) and not any(getattr(p, "interactive", False) for p in players):
        results = play_lockstep(game, seatings, game_clocks, game_moves)
    else:
        results = ((i, play_game(game, seatings[i], game_clocks[i], game_moves[i])) for i in range(games))
    for done, (i, returns) in enumerate(results):
        a_first = i % 2 == 0
        outcome = returns[0 if a_first else 1]
        result = "wins" if outcome > 0 else "losses" if outcome < 0 else "draws"
        counts[result] += 1
        by_seat["first" if a_first else "second"][result] += 1
        if on_game is not None:
            on_game(done, dict(counts))
    a_seat = [0 if i % 2 == 0 else 1 for i in range(games)]
    clocks = {"a": sum(c[s] for c, s in zip(game_clocks, a_seat)), "b": sum(c[1 - s] for c, s in zip(game_clocks, a_seat))}
    moves = {"a": sum(m[s] for m, s in zip(game_moves, a_seat)), "b": sum(m[1 - s] for m, s in zip(game_moves, a_seat))}
    s, lo, hi = score_interval(counts["wins"], counts["draws"], counts["losses"])
    return {
        "game": str(game), "a": player_a.name, "b": player_b.name, "games": games, **counts,
        "win_rate": counts["wins"] / games, "win_rate_ci95": list(wilson_interval(counts["wins"], games)),
        "score": s, "score_ci95": [lo, hi],  # (Elo: None where infinite, at a score of 0 or 1: JSON has no inf)
        "elo": _finite(elo_difference(s)), "elo_ci95": [_finite(elo_difference(lo)), _finite(elo_difference(hi))],
        "as_first": by_seat["first"], "as_second": by_seat["second"],
        "seconds_a": clocks["a"], "seconds_b": clocks["b"], "moves_a": moves["a"], "moves_b": moves["b"],
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _elo(x: float | None, low: bool) -> str:
    return f"{x:+.0f}" if x is not None else ("-inf" if low else "+inf")


def format_result(r: dict) -> str:
    lo, hi = r["win_rate_ci95"]
    slo, shi = r["score_ci95"]
    f, s = r["as_first"], r["as_second"]
    return (f"{r['a']} vs {r['b']} on {r['game']}, {r['games']} games (alternating first move):\n"
            f"  {r['a']}: {r['wins']} wins, {r['draws']} draws, {r['losses']} losses; win rate {r['win_rate']:.3f} "
            f"(95% CI {lo:.3f}-{hi:.3f}); score {r['score']:.3f} (95% CI {slo:.3f}-{shi:.3f}); "
            f"Elo {_elo(r['elo'], r['score'] < 0.5)} (95% CI {_elo(r['elo_ci95'][0], True)} to "
            f"{_elo(r['elo_ci95'][1], False)})\n"
            f"  as first player {f['wins']}/{f['draws']}/{f['losses']}, as second {s['wins']}/{s['draws']}/{s['losses']} "
            f"(W/D/L); thinking time {r['seconds_a']:.1f} s vs {r['seconds_b']:.1f} s")

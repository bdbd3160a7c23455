"""Two-player normal-form games as data, and their equilibria.

A game is two payoff matrices, A for the row player and B for the column player (m x n), with
action names. Equilibria:
- Nash, all of them for nondegenerate games, by support enumeration: for supports I, J of equal
  size, the strategies that make the other player indifferent on its support,
      A[I, J] y = u 1,  x^T B[I, J] = v 1,  sum x = sum y = 1,  x, y >= 0,
  kept when no action outside a support pays more (as nashpy's `support_enumeration`);
- zero-sum games also by the LP  max_x v  s.t.  (A^T x)_j >= v for every j, x in the simplex;
- the correlated equilibrium maximizing total payoff: the LP over joint distributions p(i, j)
      max sum p (A + B)  s.t.  sum_j p(i, j) (A[i, j] - A[i', j]) >= 0  for all i, i'  (and for the column player),
  p >= 0, sum p = 1 (Aumann 1974; Papadimitriou & Roughgarden 2008);
- the Stackelberg equilibrium with commitment (Conitzer & Sandholm 2006): for each follower
  response j, the LP  max_x x^T A[:, j]  s.t.  x^T B[:, j] >= x^T B[:, j'] for all j', x in the
  simplex; the best of them (ties in the follower's responses go the leader's way).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ascent.errors import ConfigError, did_you_mean

TOL = 1e-9


@dataclass(frozen=True)
class NormalFormGame:
    name: str
    row: np.ndarray  # A: the row player's payoffs (m, n)
    column: np.ndarray  # B: the column player's payoffs (m, n)
    actions: tuple[tuple[str, ...], tuple[str, ...]]

    @property
    def zero_sum(self) -> bool:
        return bool(np.allclose(self.row + self.column, 0.0))


def _game(name, row, column, row_actions, column_actions) -> NormalFormGame:
    return NormalFormGame(name, np.array(row, float), np.array(column, float), (tuple(row_actions), tuple(column_actions)))


BUILT_IN = {
    "prisoners_dilemma": lambda: _game("prisoners_dilemma", [[-1, -3], [0, -2]], [[-1, 0], [-3, -2]],
                                       ("cooperate", "defect"), ("cooperate", "defect")),
    "chicken": lambda: _game("chicken", [[0, -1], [1, -10]], [[0, 1], [-1, -10]], ("swerve", "straight"),
                             ("swerve", "straight")),
    "matching_pennies": lambda: _game("matching_pennies", [[1, -1], [-1, 1]], [[-1, 1], [1, -1]], ("heads", "tails"),
                                      ("heads", "tails")),
    "rock_paper_scissors": lambda: _game("rock_paper_scissors", [[0, -1, 1], [1, 0, -1], [-1, 1, 0]],
                                         [[0, 1, -1], [-1, 0, 1], [1, -1, 0]], ("rock", "paper", "scissors"),
                                         ("rock", "paper", "scissors")),
    "battle_of_the_sexes": lambda: _game("battle_of_the_sexes", [[3, 0], [0, 2]], [[2, 0], [0, 3]], ("opera", "football"),
                                         ("opera", "football")),
    "coordination": lambda: _game("coordination", [[2, 0], [0, 1]], [[2, 0], [0, 1]], ("a", "b"), ("a", "b")),
    # commitment pays: Nash gives the leader 2 (up, left); committing to up/down 1/2 each makes the
    # follower answer right, and the leader gets 3.5 (Conitzer & Sandholm 2006's example)
    "leader_follower": lambda: _game("leader_follower", [[2, 4], [1, 3]], [[1, 0], [0, 1]], ("up", "down"),
                                     ("left", "right")),
}


def load_normal_form(spec: str) -> NormalFormGame:
    """A built-in game by name, or a JSON file {"row": [[...]], "column": [[...]], "actions": [[...], [...]]}
    ("column" may be left out for a zero-sum game: -row)."""
    if spec in BUILT_IN:
        return BUILT_IN[spec]()
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"unknown game {spec!r}{did_you_mean(spec, BUILT_IN)}; built in: {', '.join(sorted(BUILT_IN))}, "
                          "or a JSON file with \"row\" and \"column\" payoff matrices")
    try:
        data = json.loads(path.read_text())
        row = np.array(data["row"], float)
        column = np.array(data["column"], float) if "column" in data else -row
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a payoff file ({err}); write {{\"row\": [[...]], \"column\": [[...]]}}") from None
    if row.ndim != 2 or row.shape != column.shape or row.size == 0:
        raise ConfigError(f"{path}: row {row.shape} and column {column.shape} payoffs must be matrices of one shape")
    m, n = row.shape
    names = data.get("actions") or [[f"r{i}" for i in range(m)], [f"c{j}" for j in range(n)]]
    if len(names) != 2 or len(names[0]) != m or len(names[1]) != n:
        raise ConfigError(f"{path}: \"actions\" must name the {m} row and {n} column actions")
    return NormalFormGame(path.stem, row, column, (tuple(names[0]), tuple(names[1])))


# ---- Nash equilibria ------------------------------------------------------------------------------------
def _indifferent(payoff: np.ndarray) -> np.ndarray | None:
    """The distribution z over the columns of `payoff` (k x k) making every row's payoff equal, or None."""
    k = payoff.shape[0]
    if k == 1:  # (one action each: a pure strategy, nothing to make indifferent)
        return np.ones(1)
    system = np.zeros((k + 1, k + 1))  # [[payoff, -1], [1^T, 0]] (assembled by hand: np.block costs 10x the solve)
    system[:k, :k], system[:k, k], system[k, :k] = payoff, -1.0, 1.0
    try:
        solution = np.linalg.solve(system, np.append(np.zeros(k), 1.0))
    except np.linalg.LinAlgError:
        return None
    z = solution[:k]
    return z if (z >= -TOL).all() else None


def support_enumeration(game: NormalFormGame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every Nash equilibrium found on supports of equal size (all of them in a nondegenerate game)."""
    A, B = game.row, game.column
    m, n = A.shape
    found = []
    for k in range(1, min(m, n) + 1):
        for I in itertools.combinations(range(m), k):
            for J in itertools.combinations(range(n), k):
                y_j = _indifferent(A[np.ix_(I, J)])  # the column player's mix makes the rows of I indifferent
                x_i = _indifferent(B[np.ix_(I, J)].T)  # and the row player's the columns of J
                if y_j is None or x_i is None:
                    continue
                x, y = np.zeros(m), np.zeros(n)
                x[list(I)], y[list(J)] = x_i, y_j
                row_values, column_values = A @ y, x @ B
                # best responses: no action outside the supports pays more
                if row_values.max() <= row_values[list(I)].min() + 1e-7 and \
                        column_values.max() <= column_values[list(J)].min() + 1e-7:
                    found.append((np.clip(x, 0, None), np.clip(y, 0, None)))
    return found


def maximin(payoff: np.ndarray) -> tuple[np.ndarray, float]:
    """The row player's maximin strategy x and the value v of the zero-sum game `payoff` (m x n),
    max v s.t. (payoff^T x)_j >= v, x in the simplex, by the simplex method on the game's tableau
    (Minimax-Q solves one per step, where scipy's linprog costs ~1 ms of set-up for a 5 x 5 game).

    With the payoffs shifted positive, M = payoff - min + 1, the column player's LP
        max sum_j w_j  s.t.  M w <= 1, w >= 0
    starts feasible at w = 0 (the slacks the basis), so one phase of pivoting solves it (Bland's rule:
    no cycling in degenerate games). Its optimum is 1 / V with V the value of M, and the row
    player's strategy is the dual: x_i = V * (the reduced cost of slack i)."""
    m, n = payoff.shape
    shift = float(payoff.min()) - 1.0
    tableau = np.zeros((m + 1, n + m + 1))
    tableau[:m, :n] = payoff - shift
    tableau[:m, n:n + m] = np.eye(m)
    tableau[:m, -1] = 1.0
    tableau[m, :n] = -1.0
    basis = list(range(n, n + m))
    eps = 1e-12
    for _ in range(50 * (m + n)):
        entering = np.flatnonzero(tableau[m, :-1] < -1e-9)  # (a reduced cost of rounding error is optimal)
        if not len(entering):
            break
        j = int(entering[0])  # (Bland: the lowest index enters...)
        column = tableau[:m, j]
        rows = np.flatnonzero(column > eps)
        if not len(rows):  # (M > 0 bounds the LP: no row to leave means the reduced cost was rounding error)
            break
        ratios = tableau[rows, -1] / column[rows]
        ties = rows[ratios <= ratios.min() + eps]
        i = int(min(ties, key=lambda r: basis[r]))  # (... and the lowest basic index leaves)
        tableau[i] /= tableau[i, j]
        for r in range(m + 1):
            if r != i and tableau[r, j] != 0.0:
                tableau[r] -= tableau[r, j] * tableau[i]
        basis[i] = j
    value = 1.0 / tableau[m, -1]
    x = np.clip(tableau[m, n:n + m] * value, 0.0, None)
    return x / x.sum(), float(value + shift)


def zero_sum_equilibrium(game: NormalFormGame) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximin strategies of both players and the row player's value, by linear programming."""
    if not game.zero_sum:
        raise ConfigError(f"{game.name} is not zero-sum (row + column payoffs are not 0): use support enumeration")

    x, value = maximin(game.row)
    y, _ = maximin(game.column.T)
    return x, y, value


# ---- correlated and Stackelberg equilibria ---------------------------------------------------------------
def correlated_equilibrium(game: NormalFormGame) -> np.ndarray:
    """The joint distribution p (m, n) of the correlated equilibrium with the largest total payoff."""
    from scipy.optimize import linprog

    A, B = game.row, game.column
    m, n = A.shape
    rows = []
    for i, i2 in itertools.permutations(range(m), 2):  # told i, the row player does not gain by i2
        g = np.zeros((m, n))
        g[i] = A[i2] - A[i]
        rows.append(g.ravel())
    for j, j2 in itertools.permutations(range(n), 2):  # told j, the column player does not gain by j2
        g = np.zeros((m, n))
        g[:, j] = B[:, j2] - B[:, j]
        rows.append(g.ravel())
    res = linprog(-(A + B).ravel(), A_ub=np.array(rows) if rows else None, b_ub=np.zeros(len(rows)) if rows else None,
                  A_eq=np.ones((1, m * n)), b_eq=[1.0], bounds=[(0, None)] * (m * n), method="highs")
    return np.clip(res.x.reshape(m, n), 0, None)


def stackelberg(game: NormalFormGame) -> tuple[np.ndarray, int, float, float]:
    """The row player (leader) commits to a mix x; the follower best-responds. Returns (x, the
    follower's response, the leader's payoff, the follower's payoff)."""
    from scipy.optimize import linprog

    A, B = game.row, game.column
    m, n = A.shape
    best = None
    for j in range(n):
        # x^T B[:, j'] - x^T B[:, j] <= 0 for every j': j is a best response to x
        a_ub = np.array([B[:, j2] - B[:, j] for j2 in range(n) if j2 != j]) if n > 1 else None
        res = linprog(-A[:, j], A_ub=a_ub, b_ub=np.zeros(n - 1) if n > 1 else None, A_eq=np.ones((1, m)), b_eq=[1.0],
                      bounds=[(0, None)] * m, method="highs")
        if res.status == 0 and (best is None or -res.fun > best[2] + 1e-12):
            x = np.clip(res.x, 0, None)
            best = (x, j, float(-res.fun), float(x @ B[:, j]))
    return best


# ---- the report `ascent diagnose equilibria` prints ----------------------------------------------------
def equilibria(game: NormalFormGame) -> dict:
    """Every equilibrium concept above for `game`, as plain data (strategies as lists of probabilities)."""
    A, B = game.row, game.column
    nash = [{"row": x.round(6).tolist(), "column": y.round(6).tolist(), "payoffs": [float(x @ A @ y), float(x @ B @ y)]}
            for x, y in support_enumeration(game)]
    p = correlated_equilibrium(game)
    x, j, lead, follow = stackelberg(game)
    report = {"game": game.name, "actions": [list(a) for a in game.actions], "row": A.tolist(), "column": B.tolist(),
              "zero_sum": game.zero_sum, "nash": nash,
              "correlated": {"joint": p.round(6).tolist(), "payoffs": [float((p * A).sum()), float((p * B).sum())]},
              "stackelberg": {"leader": x.round(6).tolist(), "follower_action": game.actions[1][j],
                              "payoffs": [lead, follow]}}
    if game.zero_sum:
        zx, zy, value = zero_sum_equilibrium(game)
        report["minimax"] = {"row": zx.round(6).tolist(), "column": zy.round(6).tolist(), "value": value}
    return report


def format_equilibria(r: dict) -> str:
    rows, cols = r["actions"]
    r = json.loads(json.dumps(r), parse_float=lambda text: round(float(text), 9) + 0.0)  # (no "-0.000")

    def mix(p, names):
        return ", ".join(f"{n} {v:.3f}" for n, v in zip(names, p) if v > 1e-9)

    out = [f"{r['game']}: row actions {', '.join(rows)}; column actions {', '.join(cols)}",
           "payoffs (row, column):"]
    for i, name in enumerate(rows):
        out.append(f"  {name:>12s}  " + "  ".join(f"({r['row'][i][j]:g}, {r['column'][i][j]:g})" for j in range(len(cols))))
    out.append(f"Nash equilibria ({len(r['nash'])}, support enumeration):")
    for e in r["nash"]:
        out.append(f"  row [{mix(e['row'], rows)}]  column [{mix(e['column'], cols)}]  payoffs "
                   f"({e['payoffs'][0]:.3f}, {e['payoffs'][1]:.3f})")
    if "minimax" in r:
        m = r["minimax"]
        out.append(f"zero-sum (LP): value {m['value']:.3f} for the row player; row [{mix(m['row'], rows)}], "
                   f"column [{mix(m['column'], cols)}]")
    c = r["correlated"]
    joint = ", ".join(f"({rows[i]}, {cols[j]}) {v:.3f}" for i, line in enumerate(c["joint"]) for j, v in enumerate(line)
                      if v > 1e-9)
    out.append(f"correlated equilibrium with the largest total payoff (LP): {joint}; payoffs "
               f"({c['payoffs'][0]:.3f}, {c['payoffs'][1]:.3f})")
    s = r["stackelberg"]
    out.append(f"Stackelberg, the row player committing (one LP per follower response): row [{mix(s['leader'], rows)}], "
               f"the column player answers {s['follower_action']}; payoffs ({s['payoffs'][0]:.3f}, {s['payoffs'][1]:.3f})")
    if r.get("dynamics", {}).get("final"):
        d = r["dynamics"]
        out.append(f"after {d['iterations']:,} iterations (row | column):")
        for name, (x, y) in d["final"].items():
            out.append(f"  {name:24s} row [{mix(x, rows)}]  column [{mix(y, cols)}]")
        out.append(f"wrote {d['figure']}")
    return "\n".join(out)

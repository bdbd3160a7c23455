"""Monte Carlo tree search: UCT (Kocsis & Szepesvari 2006) with random-playout evaluation and
optional solver back-ups, and the book's naive Monte Carlo search (section 9.4.1).

One simulation walks down from the root choosing, at each expanded node s, the child
  a* = argmax_a  Q(s, a) + c sqrt(ln N(s) / N(s, a))          (UCB1 applied to trees; untried first)
with Q from the side of the player to move at s; the first node not visited before is evaluated by
one uniformly random playout to the end of the game, and the outcome is added to every node on the
path. A node is expanded (all its legal moves, in random order) when it is visited a second time.
The move played is the root's most visited child.

Solver back-ups (Winands et al. 2008; OpenSpiel's solve=True): a terminal node's value is exact; a
node is exact too when one child is a win for the player to move there, or when all its children
are exact (then the best of them). Exact children are scored by their value, with no exploration
term, and the search stops once the root is exact.

The tree lives in arrays allocated once per search, indexed by node (visit counts, value sums in
player 0's terms, the move into the node, its first child and number of children, the player to
move, the exact value where known), not in Python objects; states are pyspiel's, cloned in C++.
"""

from __future__ import annotations

import math
import random

from ascent.envs.board_games import check_two_player_zero_sum


def random_playout(state, rng: random.Random) -> float:
    """Play uniformly random legal moves from `state` (modified) to the end; player 0's return."""
    is_terminal, legal_actions, apply_action, uniform = state.is_terminal, state.legal_actions, state.apply_action, rng.random
    while not is_terminal():  # (bound methods: this loop is half of a simulation's time)
        legal = legal_actions()
        apply_action(legal[int(uniform() * len(legal))])
    return state.returns()[0]


class SearchTree:
    """The arrays of one search: node 0 is the root; the children of node n are the nodes
    first_child[n] .. first_child[n] + num_children[n] - 1, tried in random order. Allocated for
    `capacity` nodes, extended when an expansion needs more.
    (Flat Python lists, allocated once: for a handful of children a loop over list items is several
    times faster than numpy's per-call overhead.)"""

    def __init__(self, capacity: int, priors: bool = False):
        self.visits = [0] * capacity  # N(node)
        self.prior = [0.0] * capacity if priors else None  # P(parent, move into the node): AlphaZero's PUCT
        self.value_sum = [0.0] * capacity  # sum of player 0's outcomes through the node
        # what UCT reads, kept up to date by the back-up (one division and one root per node on the path,
        # instead of one per child at every selection): Q, the mean outcome for the player who moved into
        # the node (the one choosing it), and 1/sqrt(N); an exact node holds its value and 0, so that its
        # score is its value with no exploration term
        self.q = [0.0] * capacity
        self.inv_sqrt_visits = [0.0] * capacity
        self.action = [-1] * capacity  # the move that leads into the node
        self.first_child = [0] * capacity
        self.num_children = [0] * capacity  # 0: not expanded
        self.tried = [0] * capacity  # children visited at least once (they are tried in order)
        self.sign = [1.0] * capacity  # +1 where player 0 is to move, -1 where player 1 is
        self.exact = [False] * capacity  # the node's value is proven
        self.exact_value = [0.0] * capacity  # (player 0's terms)
        self.size = 1

    DEFAULTS = {"visits": 0, "value_sum": 0.0, "q": 0.0, "inv_sqrt_visits": 0.0, "action": -1, "first_child": 0,
                "num_children": 0, "tried": 0, "sign": 1.0, "exact": False, "exact_value": 0.0, "prior": 0.0}

    def grow(self, needed: int) -> None:
        """At least `needed` nodes' room, every list extended in place (bound copies stay valid)."""
        extra = max(needed, 2 * len(self.visits)) - len(self.visits)
        for name, default in self.DEFAULTS.items():
            values = getattr(self, name)
            if values is not None:
                values.extend([default] * extra)

    def expand(self, node: int, state) -> None:
        legal = state.legal_actions()
        first, k = self.size, len(legal)
        if first + k > len(self.visits):
            self.grow(first + k)
        self.action[first:first + k] = legal
        self.first_child[node], self.num_children[node] = first, k
        self.sign[node] = 1.0 if state.current_player() == 0 else -1.0
        self.size += k

    def set_exact(self, node: int, value: float, parent: int) -> None:
        self.exact[node], self.exact_value[node] = True, value
        self.q[node], self.inv_sqrt_visits[node] = self.sign[parent] * value, 0.0

    def back_up(self, path: list[int], outcome: float) -> None:
        """Count the visit and add player 0's `outcome` at every node on the root-to-leaf path."""
        visits, value_sum, q, inv_sqrt, exact, sign = (self.visits, self.value_sum, self.q, self.inv_sqrt_visits,
                                                       self.exact, self.sign)
        mover = 1.0  # (the root's "mover": player 0's side; the root's Q is never read)
        for n in path:
            visits[n] += 1
            value_sum[n] += outcome
            if not exact[n]:
                q[n] = mover * value_sum[n] / visits[n]
                inv_sqrt[n] = visits[n] ** -0.5
            mover = sign[n]

    def children(self, node: int) -> range:
        first = self.first_child[node]
        return range(first, first + self.num_children[node])


class MCTS:
    """UCT search on pyspiel states. `simulations` per move, exploration constant `uct_c`, one random
    playout per leaf, `solve` for the solver back-ups; `seed` fixes the playouts and tie-breaks."""

    def __init__(self, game, simulations: int = 1000, uct_c: float = 2.0, solve: bool = True, seed: int | None = None):
        check_two_player_zero_sum(game, "MCTS")
        if simulations < 1:
            raise ValueError(f"simulations must be at least 1, got {simulations}")
        self.game, self.simulations, self.uct_c, self.solve = game, int(simulations), float(uct_c), bool(solve)
        self.max_utility = game.max_utility()
        # (room for the nodes of a typical search; a tree grows when it needs more)
        self.capacity = min(1 + self.simulations * game.num_distinct_actions(), 1024)
        self.rng = random.Random(seed)

    # ---- one search ---------------------------------------------------------------------------------
    def search(self, state) -> SearchTree:
        if state.is_terminal():
            raise ValueError("the game is over: there is no move to search for")
        tree = SearchTree(self.capacity)
        for _ in range(self.simulations):
            self.simulate(tree, state)
            if self.solve and tree.exact[0]:
                break
        return tree

    def simulate(self, tree: SearchTree, root_state) -> None:
        """One simulation: down by UCT to a node not seen before, its playout, the back-up.

        At each node seen before: the next untried move, drawn uniformly (OpenSpiel's bot shuffles
        them), else the child maximizing Q(s, a) + c sqrt(ln N(s)) / sqrt(N(s, a)) (exact children
        score their value). (The selection is written out here rather than called: it is most of a
        simulation's Python time, and the lists bound once below are its fast path.)"""
        state, node, path = root_state.clone(), 0, [0]
        visits, exact, num_children, action = tree.visits, tree.exact, tree.num_children, tree.action
        tried, first_child, q, inv_sqrt = tree.tried, tree.first_child, tree.q, tree.inv_sqrt_visits
        uniform, c, log, sqrt = self.rng.random, self.uct_c, math.log, math.sqrt
        while visits[node] > 0 and not exact[node]:  # (a node seen before: go on down)
            k = num_children[node]
            if k == 0:
                tree.expand(node, state)
                k = num_children[node]
            first, t = first_child[node], tried[node]
            if t < k:
                child, other = first + t, first + t + int(uniform() * (k - t))
                action[child], action[other] = action[other], action[child]  # (untried: no subtrees to move)
                tried[node] = t + 1
            else:
                bonus, best, child = c * sqrt(log(visits[node])), -math.inf, first
                for i in range(first, first + k):
                    score = q[i] + bonus * inv_sqrt[i]
                    if score > best:
                        best, child = score, i
            node = child
            state.apply_action(action[node])
            path.append(node)
        if exact[node]:
            outcome = tree.exact_value[node]
        elif state.is_terminal():
            outcome = state.returns()[0]
            tree.set_exact(node, outcome, path[-2])
        else:
            outcome = random_playout(state, self.rng)
        tree.back_up(path, outcome)
        if self.solve and exact[node]:
            self.back_up_proof(tree, path)

    def back_up_proof(self, tree: SearchTree, path: list[int]) -> None:
        """From the exact leaf upwards: a parent is proven by a winning child, or by all children proven."""
        exact, exact_value = tree.exact, tree.exact_value
        for i in range(len(path) - 2, -1, -1):
            parent = path[i]
            sign, best, all_exact = tree.sign[parent], None, True
            for child in tree.children(parent):
                if not exact[child]:
                    all_exact = False
                    continue
                if best is None or sign * exact_value[child] > sign * exact_value[best]:
                    best = child
            if best is None or not (all_exact or sign * exact_value[best] >= self.max_utility):
                return
            tree.set_exact(parent, exact_value[best], path[i - 1] if i else 0)

    # ---- the move -----------------------------------------------------------------------------------
    def best_child(self, tree: SearchTree) -> int:
        """The root child to play: a proven result first, then visits, then value (OpenSpiel's order)."""
        sign = tree.sign[0]
        return max(tree.children(0), key=lambda c: (sign * tree.exact_value[c] if tree.exact[c] else 0.0,
                                                     tree.visits[c], sign * tree.value_sum[c]))

    def step(self, state) -> int:
        """Search from `state` and return the move to play."""
        tree = self.search(state)
        if tree.num_children[0] == 0:  # (one simulation: the root was only evaluated)
            return self.rng.choice(state.legal_actions())
        return tree.action[self.best_child(tree)]


def naive_monte_carlo(state, rollouts_per_move: int, rng: random.Random) -> tuple[int, dict[int, float]]:
    """The book's 9.4.1: for each legal move, the mean outcome of `rollouts_per_move` random playouts
    after it, for the player to move; returns the best move and every move's mean."""
    player = state.current_player()
    means = {}
    for action in state.legal_actions():
        total = 0.0
        for _ in range(rollouts_per_move):
            child = state.child(action)
            total += random_playout(child, rng)
        means[action] = (total if player == 0 else -total) / rollouts_per_move
    return max(means, key=means.get), means

"""AlphaZero (Silver et al. 2018): self-play with a policy-value network guiding the tree search,
the network trained on the search's own results.

Search (PUCT): at node s, descend to
  a* = argmax_a  Q(s, a) + c(s) P(s, a) sqrt(N(s)) / (1 + N(s, a)),   c(s) = c_init + ln((1 + N(s) + c_base) / c_base)
with Q from the mover's side (0 for an unvisited move) and P the network's prior; a new leaf is
expanded and evaluated by one network call (p, v) = f_theta(s) instead of a random playout, and v
is backed up. At the root of every self-play move P is mixed with Dirichlet noise,
  P(s, a) <- (1 - eps) P(s, a) + eps eta_a,   eta ~ Dir(alpha);
the move is drawn in proportion to the visit counts N(s, a) for the first `temperature_moves` plies
(temperature 1), the most visited afterwards (temperature -> 0). The simultaneous games of one
iteration search in lockstep, so that the leaves of all of them are evaluated in one batch.

Training, on (s, pi, z) from a replay of recent positions (pi the root's visit distribution, z the
game's outcome for the player to move at s):
  l = (z - v)^2 - pi^T log p + c ||theta||^2.
Two options that need fewer games (off by default, as in the paper): `value_target` "q" or "mix"
puts the root's search value q (the mean backed-up value for the player to move) in z's place, or
(z + q) / 2: z is one game's noisy outcome, q an estimate from the search at s (the averaging the
"Lessons from AlphaZero" Connect Four series found best); `augment` trains on a random symmetry of
each position where the game's rules have some (ascent.envs.board_games.board_symmetries: Connect
Four's mirror image, tic-tac-toe's 8), as AlphaGo Zero did with Go's.
`--steps` counts self-play moves. Periodic evaluation plays the network with search
(`eval_simulations`, no noise, most visited move) against `eval_opponent` (an arena player) and
logs the win/draw/loss rates and the Elo difference they imply.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ascent.core.agent import Agent, Counters
from ascent.core.config import NetworkConfig, param
from ascent.envs.board_games import (board_symmetries, check_two_player_zero_sum, encode, input_shape,
                                     is_board_game_id, load_game, transform_planes)
from ascent.errors import ConfigError, EnvError
from ascent.nets.optim import OptimizerStep
from ascent.search.mcts import SearchTree
from ascent.search.network import PolicyValueNet


@dataclass
class AlphaZeroConfig(NetworkConfig):
    simulations: int = param(100, "PUCT simulations per self-play move", positive=True)
    c_init: float = param(1.25, "PUCT exploration c(s) at N(s) = 0", range=(0.0, math.inf), low_open=True)
    c_base: float = param(19652.0, "PUCT c(s)'s growth scale (the paper's)", range=(0.0, math.inf), low_open=True)
    dirichlet_alpha: float = param(1.0, "root noise Dir(alpha) (the paper: about 10 / typical number of legal moves)",
                                   range=(0.0, math.inf), low_open=True)
    dirichlet_fraction: float = param(0.25, "root noise weight eps", range=(0.0, 1.0))
    temperature_moves: int = param(4, "plies whose move is drawn by visit count (then the most visited)",
                                   nonnegative=True)
    parallel_games: int = param(32, "self-play games searched in lockstep (their leaves evaluated in one batch); "
                                "one iteration plays them to the end", positive=True)
    batched: bool = param(True, "evaluate the lockstep games' leaves in one network call (False: one call per leaf)")
    network: str = param("auto", "mlp | resnet | auto (resnet for board planes, else mlp)",
                         choices=("auto", "mlp", "resnet"))
    net_arch: tuple = param((128, 128), "hidden widths of the MLP network")
    activation: str = param("relu")
    ortho_init: bool = param(False, "orthogonal initialization of the network (False: torch's defaults)")
    channels: int = param(64, "resnet: convolution channels", positive=True)
    blocks: int = param(5, "resnet: residual blocks", positive=True)
    replay_size: int = param(50_000, "positions kept (the most recent)", positive=True)
    batch_size: int = param(256, "positions per gradient step", positive=True)
    sample_reuse: float = param(4.0, "gradient steps per iteration = new positions * sample_reuse / batch_size",
                                range=(0.0, math.inf), low_open=True)
    learning_rate: float = param(1e-3, "Adam step size", range=(0.0, math.inf), low_open=True)
    value_target: str = param("z", "what v learns: z (the game's outcome, the paper's), q (the root's search value) "
                              "or mix ((z + q) / 2)", choices=("z", "q", "mix"))
    augment: bool = param(False, "train on a random symmetry of each position (Connect Four's mirror image, "
                          "tic-tac-toe's 8; other games have none here)")
    l2_weight: float = param(1e-4, "c in c ||theta||^2", range=(0.0, math.inf))
    eval_simulations: int = param(100, "simulations per move of the evaluated player (0: the network alone)",
                                  nonnegative=True)
    eval_opponent: str = param("mcts:100", "the arena player evaluations play against (ascent arena's names)")
    n_actors: int = param(0, "Ray actors playing self-play games, parallel_games each per iteration (0: in this "
                          "process)", nonnegative=True)
    ray_address: str = param("", "Ray to run on with n_actors: '' a local Ray (or the cluster RAY_ADDRESS names), "
                             "'auto' the cluster started on this machine, HOST:PORT a cluster's head")
    eval_every: int = param(20_000, "evaluate every this many self-play moves (0: never)", nonnegative=True)
    eval_episodes: int = param(20, "games per evaluation (alternating the first move)", positive=True)
    checkpoint_every: int = param(20_000, "write a checkpoint every this many self-play moves (0: only at the end)",
                                  nonnegative=True)

    def validate(self) -> None:
        super().validate()
        if self.normalize_obs:
            raise ConfigError("normalize_obs is not for AlphaZero: board planes are 0/1 already; leave it false")


class PUCT:
    """The network-guided search of one or many games at once (the tree arrays of ascent.search.mcts
    with a prior per node)."""

    def __init__(self, game, net, c: AlphaZeroConfig, simulations: int, rng: np.random.Generator, device="cpu"):
        self.game, self.net, self.c, self.simulations, self.rng = game, net, c, simulations, rng
        self.shape, self.n_actions = input_shape(game), game.num_distinct_actions()
        self.capacity = min(1 + (simulations + 1) * self.n_actions, 1024)  # (trees grow past it when needed)
        self.device = device
        self.evaluations = 0  # leaves evaluated by the network (for throughput figures)

    @torch.no_grad()
    def evaluate(self, states: list) -> tuple[np.ndarray, np.ndarray]:
        """Priors (B, n_actions), zero off the legal moves, and values (B,) for the player to move
        (the network in eval mode: batch norm with its running statistics, whatever the batch)."""
        self.net.eval()
        x = torch.as_tensor(np.stack([encode(s, self.shape) for s in states]), device=self.device)
        logits, value = self.net(x)
        mask = np.full((len(states), self.n_actions), -np.inf, dtype=np.float32)  # (built in numpy: one transfer,
        for i, s in enumerate(states):                                           # not one tensor write per leaf)
            mask[i, s.legal_actions()] = 0.0
        mask = torch.as_tensor(mask, device=self.device)
        self.evaluations += len(states)
        return torch.softmax(logits + mask, dim=-1).cpu().numpy(), value.cpu().numpy()

    def expand(self, tree: SearchTree, node: int, state, prior: np.ndarray) -> None:
        tree.expand(node, state)
        kids = tree.children(node)
        tree.prior[kids.start:kids.stop] = prior[tree.action[kids.start:kids.stop]].tolist()

    def select(self, tree: SearchTree, node: int) -> int:
        """argmax_a Q(s, a) + c(s) P(s, a) sqrt(N(s)) / (1 + N(s, a)), Q := 0 for a move not yet visited."""
        visits, q, prior = tree.visits, tree.q, tree.prior
        n = visits[node]
        c = (self.c.c_init + math.log((1 + n + self.c.c_base) / self.c.c_base)) * math.sqrt(n)
        best, choice = -math.inf, -1
        for child in tree.children(node):
            score = (q[child] if visits[child] else 0.0) + c * prior[child] / (1 + visits[child])
            if score > best:
                best, choice = score, child
        return choice

    def run(self, states: list, noise: bool) -> list[SearchTree]:
        """Search every state (none terminal) with `simulations` each; the leaves of all trees are
        evaluated together (one network call per simulation round when `batched`)."""
        trees = [SearchTree(self.capacity, priors=True) for _ in states]
        prior, value = self.evaluate(states)
        for i, (tree, state) in enumerate(zip(trees, states)):
            p = prior[i]
            if noise and self.c.dirichlet_fraction > 0:
                p = add_root_noise(p, state.legal_actions(), self.c.dirichlet_alpha, self.c.dirichlet_fraction, self.rng)
            self.expand(tree, 0, state, p)
            tree.back_up([0], value[i] * (1.0 if state.current_player() == 0 else -1.0))
        for _ in range(self.simulations):
            pending = []  # (tree, leaf, path, state) awaiting the network
            for tree, root in zip(trees, states):
                state, node, path = root.clone(), 0, [0]
                while tree.num_children[node] > 0:
                    node = self.select(tree, node)
                    state.apply_action(tree.action[node])
                    path.append(node)
                if tree.exact[node] or state.is_terminal():  # the game's end: its outcome, no network call
                    if not tree.exact[node]:
                        tree.set_exact(node, state.returns()[0], path[-2])
                    tree.back_up(path, tree.exact_value[node])
                else:
                    pending.append((tree, node, path, state))
            groups = [pending] if self.c.batched else [[p] for p in pending]
            for group in groups:
                if not group:
                    continue
                prior, value = self.evaluate([s for *_, s in group])
                for (tree, node, path, state), p, v in zip(group, prior, value):
                    self.expand(tree, node, state, p)
                    tree.back_up(path, float(v) if state.current_player() == 0 else -float(v))
        return trees

    def visit_distribution(self, tree: SearchTree) -> np.ndarray:
        pi = np.zeros(self.n_actions, dtype=np.float32)
        for child in tree.children(0):
            pi[tree.action[child]] = tree.visits[child]
        return pi / pi.sum()


def make_network(game, c: AlphaZeroConfig) -> PolicyValueNet:
    shape = input_shape(game)
    kind = c.network if c.network != "auto" else ("resnet" if len(shape) == 3 and shape[1] * shape[2] > 9 else "mlp")
    return PolicyValueNet(shape, game.num_distinct_actions(), kind, c.net_arch, c.channels, c.blocks, c.activation,
                          c.ortho_init)


def self_play(game, search: PUCT, n_games: int, temperature_moves: int, rng: np.random.Generator) -> dict:
    """`n_games` games played to the end in lockstep (their searches batched together). Returns the
    positions (obs, pi, z) as arrays, the number of moves and player 0's outcomes."""
    search.net.eval()
    games = [game.new_initial_state() for _ in range(n_games)]
    records: list[list[tuple[np.ndarray, np.ndarray, int, float]]] = [[] for _ in games]
    moves, ply, live = 0, 0, list(range(n_games))
    while live:
        trees = search.run([games[g] for g in live], noise=True)
        for g, tree in zip(live, trees):
            pi = search.visit_distribution(tree)
            records[g].append((encode(games[g], search.shape), pi, games[g].current_player(), root_value(tree)))
            games[g].apply_action(choose_move(pi, ply, temperature_moves, rng))
            moves += 1
        live = [g for g in live if not games[g].is_terminal()]
        ply += 1
    rows = [(obs, pi, state.returns()[player], q) for state, record in zip(games, records)
            for obs, pi, player, q in record]
    return {"obs": np.stack([r[0] for r in rows]), "pi": np.stack([r[1] for r in rows]),
            "z": np.array([r[2] for r in rows], np.float32), "q": np.array([r[3] for r in rows], np.float32),
            "moves": moves,
            "outcomes": [s.returns()[0] for s in games], "evaluations": search.evaluations}


class SelfPlayWorker:
    """The body of a Ray actor: its own copy of the network and its own search; `play` runs
    parallel_games lockstep games with the newest weights it has been sent."""

    def __init__(self, game_spec: str, c: AlphaZeroConfig, seed: int, index: int, incarnation: int):
        from ascent.cluster.weights import WeightReceiver
        from ascent.core.process import configure_torch

        configure_torch(1)
        streams = np.random.SeedSequence([seed, index, incarnation])
        torch.manual_seed(int(streams.generate_state(1)[0] % (2**31)))
        self.game, self.c = load_game(game_spec), c
        self.rng = np.random.default_rng(streams)
        self.net = make_network(self.game, c)
        self.receiver = WeightReceiver(self.net)
        self.search = PUCT(self.game, self.net, c, c.simulations, self.rng)

    def pid(self) -> int:
        import os

        return os.getpid()

    @torch.no_grad()
    def play(self, version: int, boxed_weights: list) -> dict:
        import time

        self.receiver.update(version, boxed_weights)
        t0 = time.perf_counter()
        self.search.evaluations = 0
        out = self_play(self.game, self.search, self.c.parallel_games, self.c.temperature_moves, self.rng)
        out["seconds"] = time.perf_counter() - t0
        return out


def root_value(tree: SearchTree) -> float:
    """The search's value of the root for the player to move there: the mean of the values backed up
    through it (player 0's terms, turned to the mover's)."""
    return tree.sign[0] * tree.value_sum[0] / tree.visits[0]


def value_targets(batch: dict, target: str) -> np.ndarray:
    """What v learns for each position of a self-play batch: z, q or (z + q) / 2."""
    return {"z": batch["z"], "q": batch["q"], "mix": 0.5 * (batch["z"] + batch["q"])}[target]


def choose_move(pi: np.ndarray, ply: int, temperature_moves: int, rng: np.random.Generator) -> int:
    """The self-play move from the root's visit distribution: drawn from it (temperature 1) for the
    first `temperature_moves` plies, then the most visited (temperature -> 0; ties at random)."""
    if ply < temperature_moves:
        return int(rng.choice(len(pi), p=pi))
    return int(rng.choice(np.flatnonzero(pi == pi.max())))


def add_root_noise(prior: np.ndarray, legal: list[int], alpha: float, fraction: float,
                   rng: np.random.Generator) -> np.ndarray:
    """P(s, a) <- (1 - eps) P(s, a) + eps eta_a on the legal moves, eta ~ Dir(alpha)."""
    noisy = prior.copy()
    noisy[legal] = (1 - fraction) * prior[legal] + fraction * rng.dirichlet([alpha] * len(legal))
    return noisy


class AlphaZero(Agent):
    """AlphaZero on a two-player OpenSpiel game (`--env tic_tac_toe`, `--env connect_four`)."""

    algo = "alphazero"
    Config = AlphaZeroConfig
    curve_metric = "eval_score"

    def setup(self) -> None:
        c = self.config
        if self.env_id is None or not is_board_game_id(self.env_id):
            raise EnvError(f"AlphaZero plays two-player OpenSpiel board games (--env tic_tac_toe, --env connect_four); "
                           f"{self.env_id or 'this env'} (observations {self.envs.observation_space}, actions "
                           f"{self.envs.action_space}) is a Gymnasium env")
        self.game = load_game(self.env_id)
        check_two_player_zero_sum(self.game, "AlphaZero")
        shape = input_shape(self.game)
        self.net = make_network(self.game, c).to(self.device)
        self.step = OptimizerStep(self.net, c.learning_rate, flat=False)
        self.search = PUCT(self.game, self.net, c, c.simulations, self.rng, self.device)
        n = min(c.replay_size, 1 << 30)
        self.replay = None  # (the base's optional replay buffer: AlphaZero's positions are in `positions`)
        # (observations in float16: board planes are 0/1, and the replay rides in every checkpoint)
        self.positions = Counters(obs=np.zeros((n, *shape), np.float16), pi=np.zeros((n, self.game.num_distinct_actions()),
                                  np.float32), z=np.zeros(n, np.float32), size=0, next=0)
        self.counters = Counters(games=0, updates=0)
        self.symmetries = board_symmetries(self.game) if c.augment else []
        self.workers = None  # (n_actors: the Ray pool, started by the first iteration, let go by release())

    def modules(self) -> dict:
        return {"network": self.net, "optimizer": self.step.optimizer, "positions": self.positions,
                "counters": self.counters}

    # ---- self-play -------------------------------------------------------------------------------
    def play_games(self) -> list[dict]:
        """One iteration's self-play: parallel_games lockstep games here, or on each of n_actors Ray
        actors with the current weights (an actor that dies is replaced and asked again)."""
        c = self.config
        if not c.n_actors:
            self.search.evaluations = 0
            return [self_play(self.game, self.search, c.parallel_games, c.temperature_moves, self.rng)]
        if self.workers is None:
            self.workers = self.start_workers()
        self.broadcast.publish(self.net)
        return self.workers.call_all("play", *self.broadcast.handle())

    def start_workers(self):
        import ray

        from ascent.cluster.pool import ActorPool, actor_cpus
        from ascent.cluster.session import ensure_ray
        from ascent.cluster.weights import WeightBroadcast

        c = self.config
        ensure_ray(c.ray_address)
        remote, cpus = ray.remote(SelfPlayWorker), actor_cpus(c.n_actors)
        seed = int(np.random.SeedSequence([self.seed, self.iteration]).generate_state(1)[0] % (2**31))
        self.broadcast = WeightBroadcast()
        pool = ActorPool(lambda i, inc: remote.options(num_cpus=cpus, max_restarts=0).remote(
            str(self.game), c, seed, i, inc), c.n_actors)
        pool.ready()
        return pool

    def release(self) -> None:
        if self.workers is not None:
            self.workers.shutdown()
            self.workers = None

    def store(self, obs: np.ndarray, pi: np.ndarray, z: np.ndarray) -> None:
        """Positions into the replay of the most recent replay_size (a ring)."""
        p = self.positions
        idx = (p.next + np.arange(len(z))) % len(p.z)
        p.obs[idx], p.pi[idx], p.z[idx] = obs, pi, z
        p.next, p.size = int((p.next + len(z)) % len(p.z)), min(p.size + len(z), len(p.z))

    # ---- training ----------------------------------------------------------------------------------
    def loss(self, obs: torch.Tensor, pi: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """l = (z - v)^2 - pi^T log p + c ||theta||^2."""
        logits, v = self.net(obs)
        value_loss = F.mse_loss(v, z)
        policy_loss = -(pi * F.log_softmax(logits, dim=-1)).sum(-1).mean()
        l2 = sum(w.square().sum() for w in self.net.weights())
        loss = value_loss + policy_loss + self.config.l2_weight * l2
        return loss, {"value_loss": value_loss.item(), "policy_loss": policy_loss.item(), "l2": l2.item()}

    def train_iteration(self) -> dict[str, float]:
        c = self.config
        start = time.perf_counter()
        batches = self.play_games()
        play_seconds = time.perf_counter() - start
        for b in batches:
            self.store(b["obs"], b["pi"], value_targets(b, c.value_target))
        moves = sum(b["moves"] for b in batches)
        outcomes = [o for b in batches for o in b["outcomes"]]
        self.num_steps += moves
        self.counters.games += len(outcomes)
        self.record_episodes([(float(o), 0) for o in outcomes])
        self.net.train()
        updates = max(1, round(moves * c.sample_reuse / c.batch_size))
        terms = []
        p = self.positions
        for _ in range(updates):
            idx = self.rng.integers(0, p.size, size=min(c.batch_size, p.size))
            obs, pi = self.augmented(p.obs[idx], p.pi[idx])
            obs, pi, z = (torch.as_tensor(a, dtype=torch.float32, device=self.device) for a in (obs, pi, p.z[idx]))
            loss, mb = self.loss(obs, pi, z)
            self.step(loss)
            terms.append(mb)
        self.counters.updates += updates
        metrics = {k: float(np.mean([t[k] for t in terms])) for k in terms[0]}
        metrics.update({"games": float(self.counters.games), "updates": float(updates), "positions": float(p.size),
                        "actor_steps_per_s": moves / max(play_seconds, 1e-9),  # (self-play moves per second of playing)
                        "actor_restarts": float(self.workers.restarts if self.workers is not None else 0),
                        "first_player_score": float(np.mean(outcomes)),
                        "mean_game_length": moves / len(outcomes)})
        return metrics

    def augmented(self, obs: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each position of a minibatch under a symmetry of the game drawn at random (with `augment`)."""
        if len(self.symmetries) < 2:
            return obs, pi
        which = self.rng.integers(0, len(self.symmetries), size=len(obs))  # (obs, pi: copies, from fancy indexing)
        for k, (symmetry, perm) in enumerate(self.symmetries[1:], 1):  # (the first is the identity)
            rows = np.flatnonzero(which == k)
            obs[rows] = transform_planes(obs[rows], symmetry)
            pi[rows] = pi[rows][:, perm]
        return obs, pi

    # ---- playing and evaluation -----------------------------------------------------------------------
    def player(self, simulations: int | None = None, seed: int | None = None) -> "AlphaZeroPlayer":
        sims = self.config.eval_simulations if simulations is None else simulations
        return AlphaZeroPlayer(self, sims, seed)

    def act_batch(self, obs, deterministic: bool) -> np.ndarray:
        """The network alone on BoardGameEnv observations (a Dict with the action mask)."""
        x = torch.as_tensor(np.asarray(obs["observation"]), device=self.device)
        with torch.no_grad():
            self.net.eval()
            logits, _ = self.net(x)
        logits = logits.masked_fill(torch.as_tensor(np.asarray(obs["action_mask"]) == 0, device=self.device), -math.inf)
        if deterministic:
            return logits.argmax(-1).cpu().numpy()
        return torch.distributions.Categorical(logits=logits).sample().cpu().numpy()

    def evaluate(self, episodes: int = 10, deterministic: bool = True, env=None, seed: int | None = None,
                 video_dir=None, opponent: str | None = None) -> dict:
        """`episodes` arena games against `opponent` (default: eval_opponent), alternating the first
        move. mean_return is the mean outcome (+1 win, 0 draw, -1 loss); `metrics` holds the rates and Elo."""
        if video_dir is not None:
            raise EnvError(f"{self.algo} plays board games, which are not filmed; evaluate without --video "
                           "(`ascent play RUN_DIR` shows a game at the terminal)")
        from ascent.search.arena import arena
        from ascent.search.players import make_player

        seed = self.seed + 10_000 if seed is None else seed
        other = make_player(opponent or self.config.eval_opponent, self.game, seed + 1)
        r = arena(self.game, self.player(seed=seed), other, episodes)
        outcomes = [1.0] * r["wins"] + [0.0] * r["draws"] + [-1.0] * r["losses"]
        return {"mean_return": float(np.mean(outcomes)), "std_return": float(np.std(outcomes)), "episodes": episodes,
                "mean_length": (r["moves_a"] + r["moves_b"]) / episodes, "returns": outcomes, "opponent": other.name,
                "arena": r, "metrics": {"eval_win_rate": r["win_rate"], "eval_draw_rate": r["draws"] / episodes,
                                        "eval_loss_rate": r["losses"] / episodes, "eval_score": r["score"],
                                        "eval_elo": r["elo"] if r["elo"] is not None else math.copysign(800.0, r["score"] - 0.5)}}


class AlphaZeroPlayer:
    """A trained network as an arena player: PUCT with `simulations` (no noise; the most visited move),
    or with 0 the network alone (its most probable legal move)."""

    def __init__(self, agent: AlphaZero, simulations: int, seed: int | None = None):
        self.agent, self.simulations = agent, simulations
        self.name = f"alphazero:{simulations}" if simulations else "alphazero-network"
        self.search = PUCT(agent.game, agent.net, agent.config, simulations, np.random.default_rng(seed), agent.device)

    def step(self, state) -> int:
        return self.step_batch([state])[0]

    def step_batch(self, states: list) -> list[int]:
        """The moves in many games at once: their searches evaluate their leaves together."""
        if self.simulations == 0:
            prior, _ = self.search.evaluate(states)
            return [int(a) for a in np.argmax(prior, axis=1)]
        return [int(np.argmax(self.search.visit_distribution(tree))) for tree in self.search.run(states, noise=False)]

"""Multi-agent envs: PettingZoo's parallel API, by name, and the views the algorithms use.

Names (`--env`): ascent's Markov games (`soccer`, `grid_game`, `two_step`; markov_games.py), the
particle envs of mpe2 (`mpe2:simple_spread_v3`), PettingZoo's parallel envs (`pettingzoo:pistonball_v6`,
family looked up), each with keyword arguments as `mpe2:simple_spread_v3(N=3,max_cycles=25)`.

- `OneSeatEnv`: one agent's seat as a Gymnasium env, the others following fixed policies (uniformly
  random by default): what `--env NAME` gives every single-agent algorithm, and evaluation against random.
- `MultiAgentVecEnv`: copies of a parallel env stepped together, as arrays: obs (n_envs, n_agents, obs_dim)
  (Discrete observations one-hot; shorter observations zero-padded to the longest where `pad`),
  the global state (n_envs, state_dim) (the env's `state()`, else the agents' observations
  concatenated; none with global_state=False), actions (Box: (n_envs, n_agents, action_dim)) and
  rewards (n_envs, n_agents), one done per env; an ended copy restarts.
  Every agent acts every step until the episode ends for all (as in MPE and ascent's games).
- `AgentRowsVecEnv`: the same copies as a Gymnasium vector env of one row per agent of every copy, each
  row the agent's observation with its one-hot id (and, with `global_state`, the state after it): any
  single-agent algorithm trains one policy shared by the agents on it (IPPO, MAPPO's rows, IDQN).
  One step of it is one env step of every copy (`env_steps_per_step`: the copies, not the rows).
- `evaluate_team`: episodes of a team acting on the copies' arrays, the team's and each agent's return.
"""

from __future__ import annotations

import ast
import copy
import importlib
import re
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from ascent.envs.markov_games import MarkovGame, is_markov_game_id, make_markov_game, markov_game_names
from ascent.errors import ConfigError, EnvError

PREFIXES = ("mpe2:", "pettingzoo:")
PETTINGZOO_FAMILIES = ("classic", "butterfly", "sisl", "atari")  # (mpe: now mpe2, `mpe2:NAME`)


def is_multiagent_id(env: Any) -> bool:
    return isinstance(env, str) and (is_markov_game_id(env) or env.startswith(PREFIXES))


def env_kwargs(text: str | None, spec: str) -> dict[str, Any]:
    """`name=value, ...` of an env spec's parentheses as keyword arguments (values as Python literals)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, eq, value = part.partition("=")
        try:
            if not eq:
                raise ValueError
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise EnvError(f"{spec}: cannot read the argument {part!r}; write them as name=value, e.g. "
                           "mpe2:simple_spread_v3(N=3,max_cycles=25)") from None
    return out


def make_parallel_env(spec: str, render_mode: str | None = None):
    """A PettingZoo parallel env from its name (see the module docstring)."""
    if is_markov_game_id(spec):
        return make_markov_game(spec, render_mode)
    m = re.fullmatch(r"\s*(mpe2|pettingzoo):(\w+)\s*(?:\((.*)\))?\s*", spec)
    if not m:
        raise EnvError(f"unknown multi-agent env {spec!r}: ascent's Markov games ({', '.join(markov_game_names())}), "
                       "mpe2:NAME (e.g. mpe2:simple_spread_v3) or pettingzoo:NAME")
    package, name, kwargs = m.group(1), m.group(2), env_kwargs(m.group(3), spec)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    candidates = [f"mpe2.{name}"] if package == "mpe2" else [f"pettingzoo.{f}.{name}" for f in PETTINGZOO_FAMILIES]
    errors = []
    for module_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:  # (not in this family, or a dependency missing: said below if none has it)
            errors.append(f"{module_name}: {err}")
            continue
        if not hasattr(module, "parallel_env"):
            raise EnvError(f"{spec} is turn-based (PettingZoo's AEC API, no parallel_env): the self-play algorithm "
                           "plays those; the multi-agent learners here need a parallel env")
        try:
            return module.parallel_env(**kwargs)
        except TypeError as err:
            raise EnvError(f"{spec}: {err}") from None
    if package == "mpe2":
        import mpe2
        import pkgutil

        names = [i.name for i in pkgutil.iter_modules(mpe2.__path__) if i.name.endswith(tuple(f"_v{k}" for k in range(10)))]
        raise EnvError(f"unknown mpe2 env {name!r}; mpe2 has: {', '.join(sorted(names))}")
    raise EnvError(f"no PettingZoo env {name!r} could be imported ({'; '.join(errors)}); mpe's envs are mpe2:NAME")


def _flat_size(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise EnvError(f"multi-agent observations must be Box or Discrete; got {space}")


def flatten_observation(space: gym.Space, obs: Any) -> np.ndarray:
    """A Box observation as a flat float32 vector, a Discrete one one-hot."""
    if isinstance(space, gym.spaces.Discrete):
        out = np.zeros(space.n, np.float32)
        out[int(obs) - int(space.start)] = 1.0
        return out
    return np.asarray(obs, np.float32).reshape(-1)


def _state_is_observations(env: Any) -> bool:
    """Whether the env's state() is its agents' observations concatenated, which a step has just made:
    mpe2's (mpe2/_mpe_utils/simple_env.py), where calling it observes every agent again (a quarter
    of a simple_spread step's time)."""
    try:
        from mpe2._mpe_utils.simple_env import SimpleEnv
    except ImportError:
        return False
    return isinstance(getattr(env, "unwrapped", None), SimpleEnv)


class MultiAgentVecEnv:
    """n copies of a parallel env as arrays (see the module docstring)."""

    def __init__(self, make: Callable[[], Any], n_envs: int = 1, pad: bool = True, global_state: bool = True):
        self.envs = [make() for _ in range(n_envs)]
        env = self.envs[0]
        self.agents = list(env.possible_agents)
        self.n_envs, self.n_agents = n_envs, len(self.agents)
        self.observation_spaces = [env.observation_space(a) for a in self.agents]
        self.action_spaces = [env.action_space(a) for a in self.agents]
        sizes = [_flat_size(s) for s in self.observation_spaces]
        if not pad and len(set(sizes)) > 1:
            raise EnvError(f"the agents' observations differ in size ({dict(zip(self.agents, sizes))}); "
                           "this needs per-agent networks, or pad=True")
        self.obs_dim = max(sizes)
        self.returns = np.zeros((n_envs, self.n_agents))
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.has_state = callable(getattr(env, "state", None)) and not _state_is_observations(env)
        # global_state=False: no state at all ((n, 0) arrays), for learners that do not read it (MADDPG):
        # an MPE env's state() observes every agent again
        self.global_state = global_state
        self.last_obs: list[dict] = [{} for _ in self.envs]

    def same_discrete_actions(self, algo: str) -> int:
        """The one Discrete action count every agent has, or a clear error."""
        spaces = {a: s for a, s in zip(self.agents, self.action_spaces)}
        if not all(isinstance(s, gym.spaces.Discrete) for s in spaces.values()):
            raise EnvError(f"{algo} needs Discrete actions for every agent; the agents have {spaces}")
        if len({int(s.n) for s in spaces.values()}) > 1:
            raise EnvError(f"{algo} shares one network among the agents, which needs the same actions for all; "
                           f"the agents have {spaces} (mismatched agent spaces)")
        return int(self.action_spaces[0].n)

    def _obs_array(self, obs: dict) -> np.ndarray:
        out = np.zeros((self.n_agents, self.obs_dim), np.float32)
        for i, (a, space) in enumerate(zip(self.agents, self.observation_spaces)):
            flat = flatten_observation(space, obs[a])
            out[i, :len(flat)] = flat
        return out

    def _state(self, k: int, obs: dict) -> np.ndarray:
        if not self.global_state:
            return np.zeros(0, np.float32)
        if self.has_state:
            state = self.envs[k].state()
            if isinstance(self.envs[k], MarkovGame):  # (one integer: one-hot)
                return flatten_observation(self.envs[k].state_space, state)
            return np.asarray(state, np.float32).reshape(-1)
        return np.concatenate([flatten_observation(s, obs[a]) for a, s in zip(self.agents, self.observation_spaces)])

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        obs, states = [], []
        for k, env in enumerate(self.envs):
            o, _ = env.reset(seed=None if seed is None else seed + k)
            self.last_obs[k] = o
            obs.append(self._obs_array(o))
            states.append(self._state(k, o))
        self.returns[:], self.lengths[:] = 0.0, 0
        return np.stack(obs), np.stack(states)

    def _env_action(self, i: int, action: Any) -> Any:
        """Agent i's action as its env takes it: a Discrete's integer; a Box's array of its shape (given
        flat, and padded to the longest agent's where the agents' sizes differ: cut back to its own)."""
        space = self.action_spaces[i]
        if isinstance(space, gym.spaces.Box):
            return np.asarray(action, space.dtype).reshape(-1)[:int(np.prod(space.shape))].reshape(space.shape)
        return np.asarray(action).item()

    def step(self, actions: np.ndarray) -> dict[str, Any]:
        """actions (n_envs, n_agents), or (n_envs, n_agents, action_dim) for Box actions. Returns obs and
        state after the step (a new episode's where one ended), rewards (n_envs, n_agents), terminated and
        truncated (n_envs,), the next obs/state of the ended episodes (`final_obs`, `final_state`), and
        the episodes that ended (returns per agent, length)."""
        n, A = self.n_envs, self.n_agents
        obs, states = np.zeros((n, A, self.obs_dim), np.float32), []
        rewards, terminated, truncated = np.zeros((n, A), np.float32), np.zeros(n, bool), np.zeros(n, bool)
        final_obs, final_state, episodes = obs.copy(), [], []
        for k, env in enumerate(self.envs):
            o, r, term, trunc, _ = env.step({a: self._env_action(i, actions[k, i]) for i, a in enumerate(self.agents)})
            rewards[k] = [r.get(a, 0.0) for a in self.agents]
            ended_agents = [a for a in self.agents if term.get(a, False) or trunc.get(a, False)]
            if ended_agents and len(ended_agents) < A:
                raise EnvError(f"{env.metadata.get('name', 'this env')}: agents {ended_agents} ended before the others; "
                               "the multi-agent learners here need every agent to act until the episode ends")
            terminated[k] = any(term.get(a, False) for a in self.agents)
            truncated[k] = not terminated[k] and bool(ended_agents)
            self.returns[k] += rewards[k]
            self.lengths[k] += 1
            full = {a: o.get(a, self.last_obs[k].get(a)) for a in self.agents}
            final_obs[k] = self._obs_array(full)
            final_state.append(self._state(k, full))
            if ended_agents:
                episodes.append((self.returns[k].copy(), int(self.lengths[k])))
                self.returns[k], self.lengths[k] = 0.0, 0
                full, _ = env.reset()
                obs[k] = self._obs_array(full)
                states.append(self._state(k, full))
            else:  # (the next observation is the one just made: the state is not computed twice)
                obs[k] = final_obs[k]
                states.append(final_state[-1])
            self.last_obs[k] = full
        return {"obs": obs, "state": np.stack(states), "rewards": rewards, "terminated": terminated,
                "truncated": truncated, "final_obs": final_obs, "final_state": np.stack(final_state),
                "episodes": episodes}


class OneSeatEnv(gym.Env):
    """One agent's seat in a parallel multi-agent env as a Gymnasium env: the other agents follow
    `opponent` (a function of their own observation returning the action; uniformly random by
    default). The seat's reward is the env's reward for it (in a cooperative env, the team's)."""

    metadata = {"render_modes": ["ansi", "rgb_array"]}

    def __init__(self, game: Any = "soccer", seat: int = 0, opponent: Callable[[Any], Any] | None = None,
                 render_mode: str | None = None):
        # (a game object is copied: the caller may be stepping it, as a learner steps its own)
        self.game = make_parallel_env(game, render_mode) if isinstance(game, str) else copy.deepcopy(game)
        agents = list(self.game.possible_agents)
        if not isinstance(seat, int) or not 0 <= seat < len(agents):
            raise EnvError(f"seat must be 0..{len(agents) - 1} ({', '.join(agents)}), got {seat!r}")
        self.seat, self.opponent, self.render_mode = seat, opponent, render_mode
        self.me, self.others = agents[seat], [a for a in agents if a != agents[seat]]
        self.observation_space = self.game.observation_space(self.me)
        self.action_space = self.game.action_space(self.me)
        self.last: dict = {}

    def reset(self, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.last, _ = self.game.reset(seed=None if seed is None else int(self.np_random.integers(2**31)))
        for a in self.others:
            self.game.action_space(a).seed(int(self.np_random.integers(2**31)))
        return self.last[self.me], {}

    def step(self, action):
        joint = {self.me: action}
        for a in self.others:
            joint[a] = self.opponent(self.last[a]) if self.opponent is not None else self.game.action_space(a).sample()
        obs, rew, term, trunc, _ = self.game.step(joint)
        self.last = obs
        return obs[self.me], float(rew[self.me]), bool(term[self.me]), bool(trunc[self.me]), {}

    def render(self):
        return self.game.render()


def team_rows(obs: np.ndarray, state: np.ndarray | None) -> np.ndarray:
    """Team arrays -> one row per agent of every copy: obs (n, A, d) with the one-hot agent id after each
    agent's observation, and where `state` (n, S) is given the copy's state after that (the agent-
    specific global state of MAPPO: the agent's own view, who it is, and the whole) -> (n * A, d + A [+ S])."""
    n, A, _ = obs.shape
    parts = [obs, np.broadcast_to(np.eye(A, dtype=np.float32), (n, A, A))]
    if state is not None:
        parts.append(np.broadcast_to(state[:, None, :].astype(np.float32), (n, A, state.shape[1])))
    return np.concatenate(parts, axis=2).reshape(n * A, -1)


class AgentRowsVecEnv(gym.vector.VectorEnv):
    """n_copies copies of a parallel env as a vector env of n_copies * n_agents rows (module docstring).

    The agents must have the same action space (one policy acts for all); their observations are
    flattened and padded to the longest. A row's reward is its agent's; an episode ends for every row
    of its copy at once, and the copy restarts in the same step (`final_obs` in the info, as Gymnasium's
    same-step autoreset). `ended` collects the finished episodes' per-agent returns and lengths."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, spec: str, n_copies: int = 1, global_state: bool = False, algo: str = "this algorithm"):
        team = self.team = MultiAgentVecEnv(lambda: make_parallel_env(spec), n_copies)
        spaces = dict(zip(team.agents, team.action_spaces))
        first = team.action_spaces[0]
        if not all(space == first for space in team.action_spaces):
            raise EnvError(f"{algo} shares one policy among the agents, which needs the same action space for all; "
                           f"{spec}'s agents have {spaces} (mismatched agent spaces)")
        self.spec_id, self.global_state = spec, global_state
        self.n_copies, self.n_agents, self.agents = n_copies, team.n_agents, team.agents
        self.num_envs = n_copies * team.n_agents
        self.env_steps_per_step = n_copies
        self._obs, state = team.reset()
        self.state_dim = state.shape[1]
        self.local_dim = team.obs_dim + team.n_agents  # what an agent sees: its observation and its id
        width = self.local_dim + (self.state_dim if global_state else 0)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (width,), np.float32)
        self.single_action_space = first
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(first, self.num_envs)
        self.ended: list[tuple[np.ndarray, int]] = []

    def rows(self, obs: np.ndarray, state: np.ndarray) -> np.ndarray:
        return team_rows(obs, state if self.global_state else None)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, state = self.team.reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        self.ended = []
        return self.rows(obs, state), {}

    def step(self, actions):
        A = self.n_agents
        actions = np.asarray(actions)
        out = self.team.step(actions.reshape(self.n_copies, A, *actions.shape[1:]))
        done = out["terminated"] | out["truncated"]
        info: dict[str, Any] = {}
        if done.any():
            rows_done = np.repeat(done, A)
            final = self.rows(out["final_obs"], out["final_state"])
            final_obs = np.empty(self.num_envs, dtype=object)  # (one array a row: np.array would make a 2-D one)
            for i in np.flatnonzero(rows_done):
                final_obs[i] = final[i]
            info = {"final_obs": final_obs, "_final_obs": rows_done}
            self.ended.extend(out["episodes"])
        return (self.rows(out["obs"], out["state"]), out["rewards"].reshape(-1), np.repeat(out["terminated"], A),
                np.repeat(out["truncated"], A), info)

    def pop_ended(self) -> list[tuple[np.ndarray, int]]:
        ended, self.ended = self.ended, []
        return ended

    def close(self, **kwargs) -> None:
        for env in self.team.envs:
            env.close()


def team_metrics(agents: list[str], episodes: list[tuple[np.ndarray, int]], prefix: str = "") -> dict[str, float]:
    """The team return per agent (the agents' mean: EPyMARL's convention) and each agent's return, over
    `episodes` [(per-agent returns, length)]."""
    if not episodes:
        return {}
    per_agent = np.mean([r for r, _ in episodes], axis=0)
    return {f"{prefix}team_return": float(per_agent.mean()),
            **{f"{prefix}return_{a}": float(v) for a, v in zip(agents, per_agent)}}


def team_env(algo: str, env_id: Any, spaces: str, make: Callable[[str], Any]) -> Any:
    """`make(env_id)` (a MultiAgentVecEnv or AgentRowsVecEnv of the env a multi-agent algorithm was
    given), or the clear error: a single-agent env (`spaces` describes its spaces), or the env's own."""
    if not is_multiagent_id(env_id):
        raise EnvError(f"{algo} trains the agents of a multi-agent env named by id (two_step, soccer, "
                       f"mpe2:simple_spread_v3); {env_id or 'this env'} ({spaces}) is a single-agent one")
    try:
        return make(env_id)
    except EnvError as err:
        raise EnvError(f"{algo}: {err}") from None


def evaluate_team(spec: Any, episodes: int, seed: int, actions_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  algo: str = "this algorithm", video_dir: Any = None) -> dict[str, Any]:
    """`episodes` episodes of a team in one copy of `spec`, from a reset seeded `seed`: actions_of(obs
    (1, A, d), state (1, S)) -> actions (1, A). mean_return is the team return per agent; `metrics`
    has every agent's (eval_return_AGENT). (An agent's evaluate(): no video of a multi-agent env.)"""
    if video_dir is not None:
        raise EnvError(f"{algo}: recording video of a multi-agent env is not supported; evaluate without --video")
    if not isinstance(spec, str):
        raise EnvError(f"{algo} evaluates on a multi-agent env named by id; got {type(spec).__name__}")
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes <= 0:
        raise ConfigError(f"episodes must be a positive integer, got {episodes!r}")
    team = MultiAgentVecEnv(lambda: make_parallel_env(spec), 1)
    obs, state = team.reset(seed=seed)
    ended: list[tuple[np.ndarray, int]] = []
    while len(ended) < episodes:
        out = team.step(actions_of(obs, state))
        obs, state = out["obs"], out["state"]
        ended.extend(out["episodes"])
    returns = [float(r.mean()) for r, _ in ended]
    lengths = [n for _, n in ended]
    metrics = {k: v for k, v in team_metrics(team.agents, ended, "eval_").items() if k != "eval_team_return"}
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "episodes": episodes,
            "mean_length": float(np.mean(lengths)), "returns": returns, "lengths": lengths, "metrics": metrics}

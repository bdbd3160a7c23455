"""RL-Zoo hyperparameter files as presets: `--preset zoo:PATH.yml`.

An RL-Zoo file (rl_zoo3's hyperparams/ALGO.yml) maps env ids, and "atari" for every Atari game, to
one algorithm's Stable-Baselines3 keyword arguments plus the keys RL-Zoo's ExperimentManager reads
itself (n_timesteps, n_envs, normalize, frame_stack, env_wrapper, callback, noise_type/noise_std,
and policy_kwargs as the text of a Python expression). ascent's configs carry SB3's names, so most
keys pass through as they are; the others are converted by the rules below (MAPPING lists them for
`ascent list ALGO`), and every key that has no ascent equivalent is named once, with why, on stderr.
Keys an entry leaves out take SB3's default where ascent's differs (SB3_DEFAULTS): RL-Zoo's runs
had SB3's; and a batch_size larger than the rollout, which SB3 takes as one minibatch, becomes the
rollout (ascent refuses the larger one).

The Python expressions (policy_kwargs, a normalize string) are read with `ast`, never evaluated:
dict(...) calls, {...}, lists, numbers, strings, and dotted names such as nn.ReLU, kept as text.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from ascent.envs.atari import FRAME_STACK, is_atari_id
from ascent.errors import ConfigError, did_you_mean

ZOO_PREFIX = "zoo:"  # --preset zoo:PATH.yml

# SB3's defaults that differ from ascent's, for the keys an RL-Zoo entry leaves out. RL-Zoo runs
# one env unless n_envs says otherwise; SB3's PPO collects 2048 steps per env; SB3's TD3 and DDPG
# add no exploration noise unless noise_type asks for it.
SB3_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"n_envs": 1, "n_steps": 2048},
    "a2c": {"n_envs": 1},
    "td3": {"action_noise": "none"},
    "ddpg": {"action_noise": "none"},
}

# The SB3 constructor arguments that RL-Zoo files set and ascent's configs share by name.
SB3_NAMES = (
    "n_envs", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate", "clip_range",
    "clip_range_vf", "normalize_advantage", "ent_coef", "vf_coef", "max_grad_norm", "target_kl", "use_rms_prop",
    "rms_prop_eps", "buffer_size", "learning_starts", "tau", "gradient_steps", "optimize_memory_usage",
    "target_update_interval", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
    "policy_delay", "target_policy_noise", "target_noise_clip", "target_entropy", "n_critic_updates",
    "cg_max_steps", "cg_damping", "line_search_shrinking_factor", "line_search_max_iter", "device",
)

ACTIVATION_FNS = {"Tanh": "tanh", "ReLU": "relu", "ELU": "elu", "GELU": "gelu", "SiLU": "silu"}  # nn class -> ascent
NOISE_TYPES = {"normal": "normal", "ornstein-uhlenbeck": "ornstein_uhlenbeck"}  # RL-Zoo's noise_type -> action_noise
PLAIN_POLICIES = ("MlpPolicy", "CnnPolicy")  # what ascent builds by itself from the observation space

UNMAPPED: dict[str, str] = {  # top-level keys with no ascent equivalent, and why
    "callback": "RL-Zoo's callbacks are SB3 code that ascent does not run; ignored",
    "vec_env_wrapper": "ascent makes its vector envs itself; ignored",
    "monitor_kwargs": "ascent records episode statistics itself; ignored",
    "env_kwargs": "ascent makes the env from its id alone (register a variant with gymnasium.register and pass its "
                  "id); ignored",
    "replay_buffer_class": "ascent's replay buffer is set by its own fields (prioritized_replay...); ignored",
    "replay_buffer_kwargs": "ascent's replay buffer is set by its own fields (it always bootstraps truncated "
                            "episodes); ignored",
}
NO_OP_VALUES = {"use_sde": False, "use_sde_at_warmup": False, "sde_sample_freq": -1}  # values that change nothing
POLICY_KWARGS_UNMAPPED = {
    "squash_output": "ascent's gSDE clips its actions to the bounds (SB3's default for PPO and A2C); ignored",
}
POLICY_KWARGS_NO_OP = {"squash_output": False}


# ---- the file and its entry --------------------------------------------------------------------------
def zoo_path(spec: str) -> str:
    """The file of a "zoo:PATH.yml" preset name."""
    path = spec[len(ZOO_PREFIX):]
    if not path:
        raise ConfigError("--preset zoo: needs a file: zoo:PATH.yml, e.g. zoo:hyperparams/ppo.yml")
    return path


def load_zoo_entry(path: str, env_id: str | None) -> tuple[str, dict[str, Any]]:
    """(entry name, entry) of an env in an RL-Zoo file: the env id's own entry, else "atari" for an
    Atari id (as RL-Zoo picks it), else a ConfigError listing the file's envs."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"RL-Zoo file {path} does not exist; --preset zoo:PATH.yml takes an RL-Zoo hyperparameter "
                          "file, such as rl_zoo3's hyperparams/ppo.yml")
    try:
        data = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"RL-Zoo file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"RL-Zoo file {path} holds no entries; its top level maps env ids to their hyperparameters "
                          "(CartPole-v1: {n_envs: 8, ...})")
    if env_id is None:
        raise ConfigError("a zoo: preset is chosen by the env's id; pass the env as an id such as 'CartPole-v1'")
    name = env_id if env_id in data else "atari" if is_atari_id(env_id) and "atari" in data else None
    if name is None:
        raise ConfigError(f"RL-Zoo file {path} has no entry for {env_id}{did_you_mean(env_id, map(str, data))}; "
                          f"its envs: {', '.join(map(str, data))}")
    entry = data[name]
    if not isinstance(entry, dict):
        raise ConfigError(f"the entry {name} of RL-Zoo file {path} is not a mapping of hyperparameters: {entry!r}")
    return name, entry


# ---- Python expressions, read and never run ------------------------------------------------------------
@dataclass(frozen=True)
class PyName:
    """A dotted name in an RL-Zoo expression (nn.ReLU, th.optim.Adam), kept as text: never imported."""

    dotted: str

    @property
    def last(self) -> str:
        return self.dotted.rsplit(".", 1)[-1]


def read_expression(text: Any, what: str) -> Any:
    """The value of an RL-Zoo Python expression such as "dict(net_arch=[64, 64], activation_fn=nn.ReLU)"
    (YAML that is already a mapping passes as it is). Literals only: a ConfigError names anything else."""
    if not isinstance(text, str):
        return text
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ConfigError(f"{what}: cannot read {text!r} ({err.msg}); write e.g. "
                          "\"dict(net_arch=[64, 64], activation_fn=nn.ReLU)\"") from None
    return literal(tree.body, what)


def literal(node: ast.AST, what: str) -> Any:
    """One node of an expression as a value: constants, signed numbers, lists, tuples, {...} with
    string keys, dict(key=...) calls, and dotted names (PyName)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and \
            isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e, what) for e in node.elts]
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        return {k.value: literal(v, what) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args \
            and all(kw.arg is not None for kw in node.keywords):
        return {kw.arg: literal(kw.value, what) for kw in node.keywords}
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return PyName(".".join([node.id, *reversed(parts)]))
    raise ConfigError(f"{what}: cannot read {ast.unparse(node)!r}: an RL-Zoo expression is read, never run, and may "
                      "hold only dict(...), {...}, lists, numbers, strings and names such as nn.ReLU")


# ---- converting an entry -------------------------------------------------------------------------------
@dataclass
class Conversion:
    """What an entry becomes for one algorithm: values of its config's fields (and n_timesteps), and
    a note on each key that did not map, or mapped with a loss. `fields` are the config's
    declarations (ascent.core.config.declarations); None takes every key for a field."""

    algo: str
    fields: dict[str, dict[str, Any]] | None
    env_id: str | None
    values: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return self.fields is None or name in self.fields

    def set(self, key: str, name: str, value: Any) -> None:
        """values[name] = value where the algorithm has the field `name`, else a note on `key`."""
        if self.has(name):
            self.values[name] = value
        else:
            self.note(key, f"ascent's {self.algo} has no {name}; ignored")

    def note(self, key: str, why: str) -> None:
        self.notes.setdefault(key, why)


def convert_same_name(key: str, value: Any, c: Conversion) -> None:
    """A key named as an ascent field: as it is, except a "lin_X" schedule for a field that takes a
    constant, which becomes X (noted)."""
    if not c.has(key):
        c.note(key, f"not a setting of ascent's {c.algo}; ignored")
        return
    takes_schedule = c.fields is None or c.fields[key].get("schedule", False)
    if isinstance(value, str) and value.startswith("lin_") and not takes_schedule:
        try:
            start = float(value[4:])
        except ValueError:
            raise ConfigError(f"{key}: cannot read the schedule {value!r}; write e.g. lin_0.001") from None
        c.note(key, f"ascent's {c.algo} takes a constant {key}; {value} becomes {start:g}, its start value")
        value = start
    c.values[key] = value


def convert_n_timesteps(key: str, value: Any, c: Conversion) -> None:
    try:
        c.values["n_timesteps"] = int(float(value))
    except (TypeError, ValueError):
        raise ConfigError(f"n_timesteps must be a number of env steps, got {value!r}") from None


def convert_policy(key: str, value: Any, c: Conversion) -> None:
    if value not in PLAIN_POLICIES:
        c.note(key, f"{value}: ascent picks an MLP or the Nature CNN from the observation space "
                    f"({' or '.join(PLAIN_POLICIES)}); ignored")


def convert_net_arch(value: Any, c: Conversion) -> None:
    """SB3's forms: [64, 64] (actor and critic each), dict(pi=P, vf=V) / dict(pi=P, qf=Q), and the
    older [dict(pi=P, vf=V)] or [shared..., dict(...)]. ascent's actor and critic torsos have one
    list of widths: P (noted where the critic's differs or layers were shared)."""
    key = "policy_kwargs.net_arch"
    shared: list[Any] = []
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        shared, value = value[:-1], value[-1]
        if shared:
            c.note(key, f"ascent shares no part of the torsos; the shared layers {shared} become the first "
                        "layers of each")
    if isinstance(value, dict):
        pi = value.get("pi", [])
        others = {k: v for k, v in value.items() if k != "pi"}
        if any(v != pi for v in others.values()):
            c.note(key, f"ascent's actor and critic have the same widths; {value} uses pi's {pi} for both")
        value = pi
    c.set(key, "net_arch", [*shared, *value] if isinstance(value, list) else value)


def convert_policy_kwargs(key: str, value: Any, c: Conversion) -> None:
    kwargs = read_expression(value, f"policy_kwargs of {c.env_id}")
    if not isinstance(kwargs, dict):
        raise ConfigError(f"policy_kwargs of {c.env_id} must be a dict(...), got {value!r}")
    for name, v in kwargs.items():
        sub = f"policy_kwargs.{name}"
        if name == "net_arch":
            convert_net_arch(v, c)
        elif name == "activation_fn":
            fn = v.last if isinstance(v, PyName) else str(v)
            if fn in ACTIVATION_FNS:
                c.set(sub, "activation", ACTIVATION_FNS[fn])
            else:
                c.note(sub, f"{fn}: ascent's activations are {', '.join(ACTIVATION_FNS)} (nn.*); ignored")
        elif name in ("log_std_init", "ortho_init", "n_critics", "full_std", "use_expln"):
            c.set(sub, name, v)
        elif name == "optimizer_class":
            convert_optimizer_class(sub, v, c)
        elif name == "optimizer_kwargs":
            convert_optimizer_kwargs(sub, v, c)
        elif name in POLICY_KWARGS_UNMAPPED:
            if POLICY_KWARGS_NO_OP.get(name, object()) != v:
                c.note(sub, POLICY_KWARGS_UNMAPPED[name])
        else:
            c.note(sub, f"not a setting of ascent's {c.algo}; ignored")


def convert_optimizer_class(key: str, value: Any, c: Conversion) -> None:
    """A2C's choice between RMSprop and Adam (use_rms_prop); Adam is every other algorithm's."""
    name = value.last if isinstance(value, PyName) else str(value)
    if name in ("RMSpropTFLike", "RMSprop") and c.has("use_rms_prop"):
        c.values["use_rms_prop"] = True
        if name == "RMSpropTFLike":
            c.note(key, "RMSpropTFLike (eps inside the square root, as TensorFlow) runs as torch's RMSprop")
    elif name == "Adam":
        if c.has("use_rms_prop"):
            c.values["use_rms_prop"] = False
    else:
        c.note(key, f"{name}: ascent's {c.algo} uses {'RMSprop or Adam' if c.has('use_rms_prop') else 'Adam'}; ignored")


def convert_optimizer_kwargs(key: str, value: Any, c: Conversion) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} of {c.env_id} must be a dict(...), got {value!r}")
    for name, v in value.items():
        if name == "eps":
            c.set(f"{key}.eps", "rms_prop_eps" if c.has("use_rms_prop") else "adam_eps", v)
        elif name == "alpha":
            c.set(f"{key}.alpha", "rms_prop_alpha", v)
        else:
            c.note(f"{key}.{name}", f"ascent's optimizers take no {name}; ignored")


def convert_normalize(key: str, value: Any, c: Conversion) -> None:
    """RL-Zoo's VecNormalize: true (observations and rewards), or its kwargs as a dict or the text of
    one. ascent clips normalized observations to +-10 as VecNormalize does by default."""
    kwargs = read_expression(value, f"normalize of {c.env_id}")
    if isinstance(kwargs, bool):
        kwargs = {"norm_obs": kwargs, "norm_reward": kwargs}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"normalize of {c.env_id} must be true, false or a dict(norm_obs=..., norm_reward=...), "
                          f"got {value!r}")
    c.set(key, "normalize_obs", bool(kwargs.get("norm_obs", True)))
    norm_reward = bool(kwargs.get("norm_reward", True))
    if norm_reward and c.has("buffer_size"):  # a replay buffer: OffPolicyConfig refuses normalize_reward
        c.note(f"{key}.norm_reward", "ascent's off-policy algorithms keep raw rewards in the replay buffer; ignored")
    else:
        c.set(key, "normalize_reward", norm_reward)
    for name, v in kwargs.items():
        if name in ("norm_obs", "norm_reward", "gamma"):  # (gamma: RL-Zoo sets the algorithm's, as ascent does)
            continue
        if name == "clip_obs" and v == 10.0:
            continue
        c.note(f"{key}.{name}", f"ascent's normalization takes no {name}={v!r}; ignored")


def convert_noise_type(key: str, value: Any, c: Conversion) -> None:
    name = str(value).strip()
    if name not in NOISE_TYPES:
        raise ConfigError(f"noise_type of {c.env_id} must be one of {', '.join(NOISE_TYPES)}, got {value!r}")
    c.set(key, "action_noise", NOISE_TYPES[name])


def convert_noise_std(key: str, value: Any, c: Conversion) -> None:
    # SB3 adds the noise to the action scaled to [-1, 1], as ascent does (unit-box scale).
    c.set(key, "action_noise_std", value)


def convert_train_freq(key: str, value: Any, c: Conversion) -> None:
    """An int or [n, "step"]: n env steps; [n, "episode"] has no ascent equivalent."""
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and value[1] == "step":
            value = value[0]
        else:
            c.note(key, f"{list(value)}: ascent counts train_freq in env steps, not episodes; ignored "
                        "(with gradient_steps=-1 ascent still takes one gradient step per env step)")
            return
    c.set(key, "train_freq", value)


def convert_sde(key: str, value: Any, c: Conversion) -> None:
    """use_sde, sde_sample_freq, use_sde_at_warmup: the same names where the algorithm has them (gSDE:
    PPO, A2C, TRPO and SAC; the warm-up's, SAC); elsewhere named, unless they ask for nothing."""
    if c.has(key):
        c.values[key] = value
    elif value != NO_OP_VALUES[key]:
        c.note(key, f"not a setting of ascent's {c.algo} (gSDE is PPO's, A2C's, TRPO's and SAC's; the gSDE "
                    "warm-up SAC's); ignored")


def is_atari_wrapper(wrapper: Any) -> bool:
    name = next(iter(wrapper)) if isinstance(wrapper, dict) and len(wrapper) == 1 else wrapper
    return isinstance(name, str) and name.rsplit(".", 1)[-1] == "AtariWrapper"


def convert_env_wrapper(key: str, value: Any, c: Conversion) -> None:
    """SB3's AtariWrapper on an Atari id is what ascent's Atari pipeline does; any other wrapper is
    SB3 code that ascent does not run."""
    wrappers = value if isinstance(value, list) else [value]
    for wrapper in wrappers:
        if is_atari_wrapper(wrapper) and is_atari_id(c.env_id):
            if isinstance(wrapper, dict) and next(iter(wrapper.values())):
                c.note(key, f"{wrapper}: ascent's Atari pipeline is fixed (ascent.envs.atari); its options ignored")
        else:
            c.note(key, f"{wrapper}: ascent makes the env from its id (wrap an env yourself and pass it to the "
                        "Python API); ignored")


def convert_frame_stack(key: str, value: Any, c: Conversion) -> None:
    if not (is_atari_id(c.env_id) and value == FRAME_STACK):
        c.note(key, f"{value}: ascent stacks frames only in its Atari pipeline ({FRAME_STACK} frames); ignored")


RULES: dict[str, Callable[[str, Any, Conversion], None]] = {
    "n_timesteps": convert_n_timesteps,
    "policy": convert_policy,
    "policy_kwargs": convert_policy_kwargs,
    "normalize": convert_normalize,
    "noise_type": convert_noise_type,
    "noise_std": convert_noise_std,
    "train_freq": convert_train_freq,
    "use_sde": convert_sde,
    "sde_sample_freq": convert_sde,
    "use_sde_at_warmup": convert_sde,
    "env_wrapper": convert_env_wrapper,
    "frame_stack": convert_frame_stack,
}


def convert_entry(entry: dict[str, Any], algo: str, env_id: str | None,
                  fields: dict[str, dict[str, Any]] | None) -> Conversion:
    """An RL-Zoo entry as ascent preset values for `algo`, whose config declares `fields` (None:
    every key is taken for a field), with a note on each key that did not map."""
    c = Conversion(algo, fields, env_id)
    for name, value in SB3_DEFAULTS.get(algo, {}).items():
        if c.has(name):
            c.values[name] = value
    # policy_kwargs last: its optimizer_class overrides use_rms_prop, as in SB3's A2C
    for key, value in sorted(entry.items(), key=lambda item: item[0] == "policy_kwargs"):
        key = str(key)
        if key in RULES:
            RULES[key](key, value, c)
        elif key in UNMAPPED:
            if key not in NO_OP_VALUES or value != NO_OP_VALUES[key]:
                c.note(key, UNMAPPED[key])
        else:
            convert_same_name(key, value, c)
    sizes = [c.values.get(name) for name in ("batch_size", "n_steps", "n_envs")]
    if all(isinstance(size, int) for size in sizes) and sizes[0] > sizes[1] * sizes[2]:
        # SB3 then takes the whole rollout as one minibatch; ascent asks for batch_size <= the rollout
        rollout = sizes[1] * sizes[2]
        c.note("batch_size", f"{sizes[0]} is larger than a rollout (n_steps * n_envs = {rollout}), which SB3 then "
                             f"takes as one minibatch; batch_size becomes {rollout}")
        c.values["batch_size"] = rollout
    return c


def zoo_preset(spec: str, algo: str, env_id: str | None, fields: dict[str, dict[str, Any]] | None,
               report: bool) -> dict[str, Any]:
    """The preset values of "zoo:PATH.yml" for `algo` on `env_id`; with `report`, one line on stderr
    for each key that did not map (or mapped with a loss)."""
    path = zoo_path(spec)
    name, entry = load_zoo_entry(path, env_id)
    conversion = convert_entry(entry, algo, env_id, fields)
    if report:
        for key, why in conversion.notes.items():
            print(f"ascent: {Path(path).name} [{name}]: {key}: {why}", file=sys.stderr)
    return conversion.values


# ---- the mapping, for `ascent list ALGO` ------------------------------------------------------------------
MAPPING: list[tuple[str, tuple[str, ...], str]] = [  # (RL-Zoo key, the ascent fields it sets, how)
    ("n_timesteps", (), "the run's number of steps (train's --steps default)"),
    ("policy", (), "MlpPolicy / CnnPolicy: nothing to set (ascent picks an MLP or the Nature CNN from the "
                   "observation space); others named, ignored"),
    ("policy_kwargs: net_arch", ("net_arch",), "[64, 64] as it is; dict(pi=P, vf=V) or dict(pi=P, qf=Q): P, "
                                               "ascent's actor and critic having one width list"),
    ("policy_kwargs: activation_fn", ("activation",), "nn.Tanh, nn.ReLU, nn.ELU, nn.GELU, nn.SiLU -> tanh, relu, "
                                                      "elu, gelu, silu"),
    ("policy_kwargs: log_std_init", ("log_std_init",), "as it is"),
    ("policy_kwargs: ortho_init", ("ortho_init",), "as it is"),
    ("policy_kwargs: n_critics", ("n_critics",), "as it is"),
    ("policy_kwargs: full_std, use_expln", ("full_std", "use_expln"), "as they are (gSDE)"),
    ("use_sde, sde_sample_freq, use_sde_at_warmup", ("use_sde", "sde_sample_freq", "use_sde_at_warmup"),
     "as they are (gSDE)"),
    ("policy_kwargs: optimizer_class", ("use_rms_prop",), "RMSpropTFLike or RMSprop: true; Adam: false"),
    ("policy_kwargs: optimizer_kwargs", ("rms_prop_eps", "adam_eps", "rms_prop_alpha"),
     "eps -> rms_prop_eps where the algorithm has RMSprop, else adam_eps; alpha -> rms_prop_alpha"),
    ("normalize", ("normalize_obs", "normalize_reward"), "true: both; dict(norm_obs=, norm_reward=) or its text: "
                                                         "each; off-policy: observations only"),
    ("noise_type", ("action_noise",), "normal -> normal; ornstein-uhlenbeck -> ornstein_uhlenbeck"),
    ("noise_std", ("action_noise_std",), "as it is: both add it to the action scaled to [-1, 1]"),
    ("train_freq", ("train_freq",), "n or [n, 'step']: n; [n, 'episode'] named, ignored"),
    ("env_wrapper, frame_stack", (), f"AtariWrapper and {FRAME_STACK} frames on an Atari id: ascent's Atari "
                                     "pipeline; others named, ignored"),
]


def zoo_mapping(algo: str, fields: dict[str, dict[str, Any]]) -> list[str]:
    """Lines of the RL-Zoo key -> ascent field table for `algo` (whose config declares `fields`)."""
    lines = [f"RL-Zoo files (--preset zoo:PATH.yml): RL-Zoo key -> {algo} field (conversion)"]
    for key, targets, how in MAPPING:
        present = [t for t in targets if t in fields]
        if targets and not present:
            continue
        lines.append(f"  {key} -> {', '.join(present)} ({how})" if present else f"  {key}: {how}")
    same = [n for n in SB3_NAMES if n in fields]
    schedules = [n for n in same if fields[n].get("schedule")]
    constants = [n for n in ("learning_rate", "clip_range", "clip_range_vf") if n in same and n not in schedules]
    if same:
        lines.append(f"  {', '.join(same)} -> the same names, as they are")
    if schedules:
        lines.append(f"    lin_X schedules kept: {', '.join(schedules)}")
    if constants:
        lines.append(f"    lin_X becomes X, a constant (named): {', '.join(constants)}")
    defaults = {k: v for k, v in SB3_DEFAULTS.get(algo, {}).items() if k in fields}
    if defaults:
        lines.append("  left out of an entry, SB3's default: " + ", ".join(f"{k}={v!r}" for k, v in defaults.items()))
    lines.append(f"  named on stderr and ignored: {', '.join(UNMAPPED)}, policy_kwargs: "
                 f"{', '.join(POLICY_KWARGS_UNMAPPED)}, and any key that is not a field of {algo}")
    return lines

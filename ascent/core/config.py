"""Hyperparameters: dataclass configs, presets (data files), `--set key=value` parsing, validation.

Each algorithm declares `XConfig(NetworkConfig)` (`CommonConfig` for the tabular methods, which
have no network) whose fields carry SB3's names, a one-line help and their bounds, each declared once
with `param`; one validation (`CommonConfig.validate`) checks them all. A config is built as:
dataclass defaults <- preset (by name, or the one made for the env) <- user overrides, then
validated; every unknown key or bad value is a ConfigError naming the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, Sequence

from ascent.core.zoo import ZOO_PREFIX, zoo_preset
from ascent.envs.vector import VECTORIZATIONS
from ascent.errors import ConfigError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def param(default: Any, help: str | None = None, *, range: tuple[float, float] | None = None, low_open: bool = False,
          positive: bool = False, nonnegative: bool = False, choices: Sequence[str] | None = None,
          schedule: bool = False) -> Any:
    """A config field: its default, its one-line help (shown by `ascent list ALGO`) and the bounds that
    `CommonConfig.validate` checks, kept in the field's metadata.

      range=(low, high)  low <= value <= high, and finite; low_open: low < value
      positive           an integer > 0                    nonnegative  an integer >= 0
      choices            one of these strings
      schedule           a number or "lin_X" (linear decay from X to 0), > 0; `range` then bounds X too
    None passes every check of a field whose type admits it (`float | None`). A subclass that
    redeclares a field to change its default keeps the help and the bounds declared above it
    (help=None: the same help), and may add bounds of its own.
    """
    if low_open and range is None:
        raise TypeError("param: low_open qualifies a range; give range=(low, high)")
    checks: dict[str, Any] = {}
    if help is not None:
        checks["help"] = help
    if range is not None:
        low, high = range
        checks["range"] = (low, high, low_open)
    if positive:
        checks["positive"] = True
    if nonnegative:
        checks["nonnegative"] = True
    if choices is not None:
        checks["choices"] = tuple(choices)
    if schedule:
        checks["schedule"] = True
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=checks)
    return field(default=default, metadata=checks)


@functools.cache
def declarations(cls: type) -> dict[str, dict[str, Any]]:
    """{field name: its help, bounds and whether its type admits None ("optional")} of a config
    class, each field's declarations merged down its base classes (a redeclaration overrides what
    it names, and keeps the rest)."""
    merged: dict[str, dict[str, Any]] = {f.name: {} for f in dataclasses.fields(cls)}
    for klass in reversed(cls.__mro__):
        declared_here = vars(klass).get("__dataclass_fields__", {})
        for name, decl in merged.items():
            if name in declared_here:
                decl.update(declared_here[name].metadata)
    for name, tp in field_types(cls).items():
        merged[name]["optional"] = type(None) in typing.get_args(tp)
    return merged


def check_declared(config: Any) -> None:
    """ConfigError at the first field of `config` outside the bounds its `param` declares."""
    for name, decl in declarations(type(config)).items():
        value = getattr(config, name)
        if value is None:
            if decl["optional"] or decl.keys() <= {"help", "optional"}:
                continue
            raise ConfigError(f"{name} must be set (only optional fields take None), got None")
        if decl.get("positive") and value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
        if decl.get("nonnegative") and value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
        if decl.get("schedule"):
            check_schedule(name, value)
        if "range" in decl:
            low, high, low_open = decl["range"]
            if isinstance(value, str) and decl.get("schedule"):  # "lin_X": X must be in the range
                try:
                    check_range(name, schedule(value, 0.0), low, high, low_open)  # the start value
                except ConfigError:
                    raise ConfigError(f"{name} must start in {'(' if low_open else '['}{low}, {high}], got {value!r}") from None
            else:
                check_range(name, value, low, high, low_open)
        if "choices" in decl and value not in decl["choices"]:
            raise ConfigError(f"{name} must be one of {', '.join(decl['choices'])}; got {value!r}")


@dataclass
class CommonConfig:
    """Settings every algorithm has: environment, normalization of rewards, bookkeeping.

    `validate()` checks every field against the bounds its `param` declares; a subclass adds to it
    only the checks that bounds cannot express (one field against another, a refused combination).
    """

    # Fields this algorithm's checkpoints of earlier versions hold but the config no longer has (they
    # had no effect); `Agent.load` drops exactly these keys.
    retired_fields: ClassVar[tuple[str, ...]] = ()

    n_envs: int = param(1, "number of parallel environments", positive=True)
    vectorization: str = param("auto", "sync | async | vector_entry_point | auto (env's numpy vector env if any, else sync)",
                               choices=VECTORIZATIONS)
    gamma: float = param(0.99, "discount factor", range=(0.0, 1.0))
    normalize_reward: bool = param(False, "scale rewards by the running std of the discounted return")
    torch_threads: int = param(1, "torch intra-op threads (small MLPs run fastest on one)", positive=True)
    checkpoint_every: int = param(50_000, "write a checkpoint every this many env steps (0: only at the end)",
                                  nonnegative=True)
    checkpoint_seconds: float = param(300.0, "also write a checkpoint after this many seconds of training since the "
                                      "last one, whichever comes first (0: by steps only)", range=(0.0, math.inf))
    log_interval: int = param(1, "iterations per row of metrics (CSV, TensorBoard)", positive=True)
    log_every_steps: int = param(2000, "a row of metrics at least every this many env steps, whatever log_interval "
                                 "says (0: by log_interval only)", nonnegative=True)
    eval_every: int = param(0, "evaluate every this many env steps during training (0: never)", nonnegative=True)
    eval_episodes: int = param(10, "episodes per periodic evaluation", positive=True)
    video_every: int = param(0, "film one evaluation episode every this many env steps into RUN_DIR/videos/step-N/ "
                             "(and send it to the tracker; 0: never)", nonnegative=True)

    def validate(self) -> None:
        check_declared(self)


ACTIVATION_NAMES = ("tanh", "relu", "elu", "gelu", "silu")  # ascent.nets.layers.ACTIVATIONS's keys


@dataclass
class NetworkConfig(CommonConfig):
    """CommonConfig and the networks' settings, for the algorithms that have networks."""

    net_arch: tuple = param((64, 64), "hidden layer widths of the actor and critic MLPs")
    activation: str = param("tanh", " | ".join(ACTIVATION_NAMES), choices=ACTIVATION_NAMES)
    ortho_init: bool = param(True, "orthogonal initialization of the networks")
    normalize_obs: bool = param(False, "running mean/std observation normalization (clipped to +-10)")
    device: str = param("auto", "auto | cpu | cuda | cuda:N: where the networks and updates run (auto: cuda for "
                        "image observations where a GPU is visible, else cpu)")

    def validate(self) -> None:
        super().validate()
        check_device_name(self.device)
        if not all(isinstance(w, int) and w > 0 for w in self.net_arch):
            raise ConfigError(f"net_arch must be a list of positive layer widths like 64,64; got {self.net_arch!r}")


@dataclass
class GaussianPolicyConfig(NetworkConfig):
    """NetworkConfig and the options of ActorCritic's Gaussian policy on Box actions (PPO, A2C, TRPO)."""

    log_std_init: float = param(0.0, "initial log std of the Gaussian policy (Box actions)")
    squash_actions: bool = param(False, "tanh-squash Gaussian actions into the bounds instead of clipping")
    use_sde: bool = param(False, "generalized state-dependent exploration (gSDE): noise z(s)^T Theta from the actor's "
                          "last features, Theta redrawn every sde_sample_freq steps (Box actions)")
    sde_sample_freq: int = param(-1, "with use_sde: env steps between new exploration matrices (-1: once per rollout)",
                                 range=(-1, math.inf))
    full_std: bool = param(True, "with use_sde: one sigma per (feature, action) pair (False: one per feature)")
    use_expln: bool = param(False, "with use_sde: sigma = expln(log_std) (exp below 0, log(1 + x) + 1 above) instead "
                            "of exp(log_std)")

    def validate(self) -> None:
        super().validate()
        if self.use_sde and self.squash_actions:
            raise ConfigError("use_sde=True and squash_actions=True cannot be combined: gSDE's actions are clipped to "
                              "the bounds, not squashed; drop one of them")


DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


def check_device_name(spec: Any) -> None:
    """ConfigError unless `spec` is one of DEVICE_FORMS (whether that device exists is checked when
    an agent is built: ascent.core.process.resolve_device)."""
    if not isinstance(spec, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", spec):
        raise ConfigError(f"device must be {DEVICE_FORMS}, got {spec!r}")


def check_batch_fits_rollout(config: Any) -> None:
    """ConfigError when a minibatch is larger than the rollout it is drawn from (n_steps * n_envs,
    times n_actors for a distributed algorithm whose actors each collect one)."""
    actors = getattr(config, "n_actors", 1)
    rollout = config.n_steps * config.n_envs * actors
    if config.batch_size > rollout:
        of = "n_steps * n_envs * n_actors" if actors != 1 else "n_steps * n_envs"
        raise ConfigError(f"batch_size ({config.batch_size}) is larger than a rollout ({of} = {rollout}): "
                          "every minibatch would be the whole rollout; lower batch_size or raise n_steps or n_envs")


def check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    """ConfigError unless low <= value <= high (low < value with low_open), and finite."""
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name} must be in {bracket}{low}, {high}], got {value}")


# ---- schedules ---------------------------------------------------------------------------------------
def schedule(spec: float | str, progress: float) -> float:
    """Value of a hyperparameter schedule at `progress` in [0, 1] of training.

    A number is constant; "lin_X" (RL-Zoo's notation) decays linearly from X to 0.
    """
    if isinstance(spec, str):
        return float(spec[4:]) * (1.0 - progress)
    return float(spec)


def check_schedule(name: str, spec: float | str, low_open: bool = True) -> None:
    """Validate a number or "lin_X" schedule whose values must be > 0."""
    if isinstance(spec, str):
        if not spec.startswith("lin_"):
            raise ConfigError(f"{name} must be a number or 'lin_X' (linear decay from X to 0); got {spec!r}")
        try:
            start = float(spec[4:])
        except ValueError:
            raise ConfigError(f"{name}: cannot read the start value of {spec!r}; write e.g. lin_0.001") from None
    else:
        start = spec
    if not math.isfinite(start) or (start <= 0 if low_open else start < 0):
        raise ConfigError(f"{name} must be {'> 0' if low_open else '>= 0'}, got {spec!r}")


# ---- building a config -------------------------------------------------------------------------------
def field_types(cls: type) -> dict[str, Any]:
    """{field name: declared type} of a config class (its ClassVars are no fields)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Convert a value from a preset file, the CLI or Python to the field's declared type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(name, value, arg)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{name}: cannot use {value!r} ({'; '.join(errors)})")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if not math.isfinite(as_float) or as_float != int(as_float):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return int(as_float)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    if tp is tuple or origin is tuple:
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            value = [v for v in text.replace(" ", "").split(",") if v] if text else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list like 64,64; got {value!r}")
        try:
            return tuple(coerce(name, v, int) for v in value)
        except ConfigError:
            raise ConfigError(f"{name} must be a list of integers like 64,64; got {value!r}") from None
    return value


def parse_set(pairs: list[str]) -> dict[str, str]:
    """['key=value', ...] from the CLI's --set into a dict (values stay strings; coerce types them)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set takes key=value, got {pair!r} (e.g. --set learning_rate=3e-4)")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


PRESET_META_KEYS = ("envs", "description", "n_timesteps")  # preset keys that are not hyperparameters


def load_presets(algo: str) -> dict[str, dict[str, Any]]:
    """All presets of an algorithm from `ascent/presets/{algo}.toml`: {name: {key: value, 'envs': [...]}}."""
    path = resources.files("ascent") / "presets" / f"{algo}.toml"
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text())


def load_preset_file(path: str) -> dict[str, Any]:
    """A preset from a TOML file of `key = value` lines at its top level (what `ascent tune` writes as
    best.toml), the PRESET_META_KEYS allowed; a file of named tables, like ascent/presets/*.toml, is
    refused with the fix."""
    import pathlib

    file = pathlib.Path(path)
    if not file.is_file():
        raise ConfigError(f"preset file {path} does not exist; pass an existing .toml file, or a preset name "
                          "(`ascent list ALGO` lists them)")
    try:
        values = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"preset file {path} is not valid TOML: {err}") from None
    tables = [k for k, v in values.items() if isinstance(v, dict)]
    if tables:
        raise ConfigError(f"preset file {path} holds tables ({', '.join(tables)}); a preset file has `key = value` "
                          "lines at its top level: copy one table's lines into a file of their own")
    return values


def preset_for_env(presets: dict[str, dict[str, Any]], env_id: str | None) -> str | None:
    """The preset made for an env (listed in its `envs`), if any."""
    for name, values in presets.items():
        if env_id is not None and env_id in values.get("envs", []):
            return name
    return None


NO_PRESET = "none"  # preset="none" / --preset none: the algorithm's defaults, even where the env has a preset


def resolve_preset(algo: str, env_id: str | None, preset: str | None,
                   config_class: type | None = None) -> tuple[str | None, dict[str, Any]]:
    """(name, values) of the preset a run uses: the one named, else the one made for the env, else
    (None, {}); "none" asks for the algorithm's defaults whatever the env; a path ending in .toml
    is a preset file (load_preset_file); "zoo:PATH.yml" is the env's entry of an RL-Zoo file,
    converted (ascent.core.zoo) for `config_class`'s fields, the keys that do not map named on
    stderr, or without a config_class for every field and silently. The values are the file's,
    the PRESET_META_KEYS (n_timesteps...) included."""
    if preset == NO_PRESET:
        return None, {}
    if preset is not None and preset.startswith(ZOO_PREFIX):
        fields = declarations(config_class) if config_class is not None else None
        return preset, zoo_preset(preset, algo, env_id, fields, report=config_class is not None)
    if preset is not None and preset.endswith(".toml"):
        return preset, load_preset_file(preset)
    presets = load_presets(algo)
    if preset is not None and preset not in presets:
        raise ConfigError(
            f"unknown preset {preset!r} for {algo}{did_you_mean(preset, presets)}; "
            f"available: {', '.join(sorted(presets)) or 'none'}"
        )
    chosen = preset if preset is not None else preset_for_env(presets, env_id)
    return chosen, dict(presets[chosen]) if chosen is not None else {}


def build_config(cls: type, algo: str, env_id: str | None, preset: str | None, overrides: dict[str, Any]):
    """defaults <- preset <- overrides, coerced and validated. Returns (config, preset name or None)."""
    chosen, preset_values = resolve_preset(algo, env_id, preset, cls)
    values = {k: v for k, v in preset_values.items() if k not in PRESET_META_KEYS}
    values.update(overrides)
    types = field_types(cls)
    for key in values:
        if key not in types:
            raise ConfigError(
                f"unknown hyperparameter {key!r} for {algo}{did_you_mean(key, types)}; "
                f"`ascent list {algo}` shows all of them"
            )
    config = cls(**{k: coerce(k, v, types[k]) for k, v in values.items()})
    config.validate()
    return config, chosen


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_help(cls: type) -> list[tuple[str, str, Any]]:
    """(name, help, default) of every field, for `ascent list ALGO`."""
    defaults = cls()
    return [(name, decl.get("help", ""), getattr(defaults, name)) for name, decl in declarations(cls).items()]

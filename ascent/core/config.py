"""Hyperparameters: dataclass configs, presets (data files), `--set key=value` parsing, validation.

Each algorithm declares `XConfig(CommonConfig)` whose fields carry SB3's names and a one-line help.
A config is built as: dataclass defaults <- preset (by name, or the one made for the env) <- user
overrides, then validated; every unknown key or bad value is a ConfigError naming the fix.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ascent.errors import ConfigError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def param(default: Any, help: str) -> Any:
    """A config field with its one-line help (shown by `ascent list ALGO`)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class CommonConfig:
    """Settings every algorithm has: environment, network, normalization, bookkeeping."""

    n_envs: int = param(1, "number of parallel environments")
    vectorization: str = param("auto", "sync | async | vector_entry_point | auto (env's numpy vector env if any, else sync)")
    gamma: float = param(0.99, "discount factor")
    net_arch: tuple = param((64, 64), "hidden layer widths of the actor and critic MLPs")
    activation: str = param("tanh", "tanh | relu | elu | gelu | silu")
    ortho_init: bool = param(True, "orthogonal initialization of the networks")
    normalize_obs: bool = param(False, "running mean/std observation normalization (clipped to +-10)")
    normalize_reward: bool = param(False, "scale rewards by the running std of the discounted return")
    torch_threads: int = param(1, "torch intra-op threads (small MLPs run fastest on one)")
    checkpoint_every: int = param(50_000, "write a checkpoint every this many env steps (0: only at the end)")
    log_interval: int = param(1, "iterations per row of metrics (CSV, TensorBoard)")
    eval_every: int = param(0, "evaluate every this many env steps during training (0: never)")
    eval_episodes: int = param(10, "episodes per periodic evaluation")

    def validate(self) -> None:
        positive = ["n_envs", "torch_threads", "eval_episodes", "log_interval"]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ["checkpoint_every", "eval_every"]:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_range("gamma", self.gamma, 0.0, 1.0)
        if self.activation not in ("tanh", "relu", "elu", "gelu", "silu"):
            raise ConfigError(f"activation must be one of tanh, relu, elu, gelu, silu; got {self.activation!r}")
        if not all(isinstance(w, int) and w > 0 for w in self.net_arch):
            raise ConfigError(f"net_arch must be a list of positive layer widths like 64,64; got {self.net_arch!r}")
        from ascent.envs.vector import VECTORIZATIONS

        if self.vectorization not in VECTORIZATIONS:
            raise ConfigError(f"vectorization must be one of {', '.join(VECTORIZATIONS)}; got {self.vectorization!r}")


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
    return typing.get_type_hints(cls)


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


def preset_for_env(presets: dict[str, dict[str, Any]], env_id: str | None) -> str | None:
    """The preset made for an env (listed in its `envs`), if any."""
    for name, values in presets.items():
        if env_id is not None and env_id in values.get("envs", []):
            return name
    return None


def build_config(cls: type, algo: str, env_id: str | None, preset: str | None, overrides: dict[str, Any]):
    """defaults <- preset <- overrides, coerced and validated. Returns (config, preset name or None)."""
    presets = load_presets(algo)
    if preset is not None and preset not in presets:
        raise ConfigError(
            f"unknown preset {preset!r} for {algo}{did_you_mean(preset, presets)}; "
            f"available: {', '.join(sorted(presets)) or 'none'}"
        )
    chosen = preset if preset is not None else preset_for_env(presets, env_id)
    values: dict[str, Any] = {}
    if chosen is not None:
        values.update({k: v for k, v in presets[chosen].items() if k not in PRESET_META_KEYS})
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
    return [(f.name, f.metadata.get("help", ""), getattr(defaults, f.name)) for f in dataclasses.fields(cls)]

"""Search spaces of `ascent tune`: which hyperparameters a study samples, and from what.

One format serves the space an algorithm declares next to its config (`SEARCH_SPACE` in
ascent/algorithms/ppo.py and its like, the class's `search_space`) and a user's own file
(`ascent tune ALGO --space FILE.toml`): one entry per hyperparameter, by ascent's config names
(`ascent list ALGO` shows them, and the algorithm's space in this format, a file to start from):

    learning_rate = {type = "float", low = 1e-5, high = 2e-3, log = true}   # log-uniform; step = X allowed
    n_epochs = {type = "int", low = 1, high = 20}                            # log = true or step = N allowed
    batch_size = {type = "categorical", choices = [32, 64, 128]}
    net_arch = {type = "categorical", choices = [[64], [64, 64]]}           # lists are choices too
    gradient_steps = -1                                                      # a plain value: fixed, not searched

A file's space replaces the algorithm's; the hyperparameters it does not name keep the env's preset
or the defaults. The distributions are Optuna's (suggest_float, suggest_int, suggest_categorical);
its categoricals hold only None, bools, numbers and strings, so a list choice is sampled under a
label ("64,64") and turned back into its list here.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ascent.core.config import check_declared, coerce, field_types
from ascent.errors import ConfigError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The keys each kind of entry takes besides `type`.
KEYS = {"float": ("low", "high", "log", "step"), "int": ("low", "high", "log", "step"), "categorical": ("choices",)}


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter of a search space: sampled ("float", "int", "categorical") or "fixed"."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    value: Any = None  # (fixed)

    def labels(self) -> list:
        """The categorical choices as Optuna holds them (a list choice by its label)."""
        return [label(c) for c in self.choices]

    def sample(self, trial: Any) -> Any:
        """This hyperparameter's value for an Optuna trial."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "categorical":
            return self.decode(trial.suggest_categorical(self.name, self.labels()))
        return self.value

    def decode(self, sampled: Any) -> Any:
        """The value of a sampled categorical label (numbers and strings are their own labels)."""
        if self.kind != "categorical":
            return sampled
        return self.choices[self.labels().index(sampled)]


def label(choice: Any) -> Any:
    """A categorical choice as Optuna can hold it: a list by its items joined with commas."""
    return ",".join(str(v) for v in choice) if isinstance(choice, (list, tuple)) else choice


def parse_space(entries: dict[str, Any], config_cls: type, algo: str, source: str) -> dict[str, Dimension]:
    """{name: Dimension} of a space's entries, each checked against the algorithm's config (a known
    name, a kind its type takes, bounds and choices inside the field's own bounds); a ConfigError
    names `source` (the file, or the algorithm's SEARCH_SPACE) and the fix."""
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{source}: the search space is empty; give one `name = {{type = ...}}` line per "
                          "hyperparameter (see `ascent tune --help`)")
    types = field_types(config_cls)
    space = {}
    for name, entry in entries.items():
        if name not in types:
            raise ConfigError(f"{source}: unknown hyperparameter {name!r} for {algo}{did_you_mean(name, types)}; "
                              f"`ascent list {algo}` shows them")
        space[name] = parse_entry(name, entry, types[name], source)
        for value in values_of(space[name]):
            check_value(config_cls, name, value, types[name], source)
    return space


def parse_entry(name: str, entry: Any, tp: Any, source: str) -> Dimension:
    """One entry: a table with `type` and its keys, or a plain value (fixed)."""
    if not isinstance(entry, dict):
        return Dimension(name, "fixed", value=entry)
    where = f"{source}: {name}"
    kind = entry.get("type")
    if kind not in KEYS:
        raise ConfigError(f"{where}: type must be one of {', '.join(KEYS)}, got {kind!r} "
                          f"(e.g. {name} = {{type = \"categorical\", choices = [...]}})")
    unknown = set(entry) - {"type", *KEYS[kind]}
    if unknown:
        raise ConfigError(f"{where}: type = \"{kind}\" takes {', '.join(KEYS[kind])}; not {', '.join(sorted(unknown))}")
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list, e.g. choices = [32, 64, 128]")
        labels = [label(c) for c in choices]
        if len(set(map(json.dumps, labels))) < len(labels):
            raise ConfigError(f"{where}: choices repeat a value ({choices!r})")
        return Dimension(name, kind, choices=tuple(tuple(c) if isinstance(c, list) else c for c in choices))
    low, high, log, step = entry.get("low"), entry.get("high"), entry.get("log", False), entry.get("step")
    number = int if kind == "int" else (int, float)
    for key, value in (("low", low), ("high", high), ("step", step)):
        if (value is not None or key != "step") and (isinstance(value, bool) or not isinstance(value, number)):
            raise ConfigError(f"{where}: {key} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
    if not low < high:
        raise ConfigError(f"{where}: low must be below high, got low = {low}, high = {high}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    if log and step is not None:
        raise ConfigError(f"{where}: give log = true or a step, not both (Optuna samples one or the other)")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: step must be > 0, got {step}")
    accepted = set(typing.get_args(tp)) or {tp}
    if kind == "float" and float not in accepted:
        raise ConfigError(f"{where} is not a real-valued hyperparameter; use type = \"int\" or \"categorical\"")
    if kind == "int" and not accepted & {int, float}:
        raise ConfigError(f"{where} is not a numeric hyperparameter; use type = \"categorical\"")
    return Dimension(name, kind, low=low, high=high, log=log, step=step)


def values_of(dim: Dimension) -> list:
    """The values that bound what a dimension samples: its ends, its choices, or its fixed value."""
    if dim.kind == "categorical":
        return list(dim.choices)
    if dim.kind == "fixed":
        return [dim.value]
    return [dim.low, dim.high]


def check_value(config_cls: type, name: str, value: Any, tp: Any, source: str) -> None:
    """ConfigError unless the field takes `value` (its type, and the bounds its `param` declares)."""
    try:
        check_declared(dataclasses.replace(config_cls(), **{name: coerce(name, value, tp)}))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_space_file(path: str | Path, config_cls: type, algo: str) -> dict[str, Dimension]:
    """The search space of a TOML file (the format at the top of this module)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"space file {path} does not exist; pass a TOML file of `name = {{type = ...}}` lines")
    try:
        entries = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"space file {path} is not valid TOML: {err}") from None
    return parse_space(entries, config_cls, algo, f"space file {path}")


def algorithm_space(cls: type) -> dict[str, Dimension]:
    """The search space an algorithm declares (its `search_space`), or a ConfigError asking for a file."""
    if not cls.search_space:
        raise ConfigError(f"{cls.algo} declares no search space; give one with --space FILE.toml (one line per "
                          "hyperparameter, e.g. learning_rate = {type = \"float\", low = 1e-5, high = 1e-2, log = true})")
    return parse_space(cls.search_space, cls.Config, cls.algo, f"{cls.algo}'s SEARCH_SPACE")


def space_lines(space: dict[str, Dimension]) -> list[str]:
    """A space as the lines of a space file (`load_space_file` reads them back to the same space)."""
    from ascent.tuning.report import toml_value

    lines = []
    for name, dim in space.items():
        if dim.kind == "fixed":
            lines.append(f"{name} = {toml_value(dim.value)}")
            continue
        keys = {"choices": list(dim.choices)} if dim.kind == "categorical" else {
            "low": dim.low, "high": dim.high, **({"log": True} if dim.log else {}),
            **({"step": dim.step} if dim.step is not None else {})}
        entry = ", ".join(f"{k} = {toml_value(v)}" for k, v in keys.items())
        lines.append(f"{name} = {{type = \"{dim.kind}\", {entry}}}")
    return lines


def sample(trial: Any, space: dict[str, Dimension]) -> dict[str, Any]:
    """The hyperparameters of one trial: each dimension sampled (or fixed)."""
    return {name: dim.sample(trial) for name, dim in space.items()}


def trial_params(space: dict[str, Dimension], sampled: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters a finished trial trained with, from the labels Optuna recorded."""
    return {name: dim.decode(sampled[name]) if dim.kind != "fixed" else dim.value for name, dim in space.items()}


def space_record(space: dict[str, Dimension]) -> dict[str, Any]:
    """A space as plain JSON data: what a study records, to refuse being continued with another."""
    return json.loads(json.dumps({name: dataclasses.asdict(dim) for name, dim in space.items()}))

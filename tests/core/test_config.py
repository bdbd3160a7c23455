"""Configs declared once: `param` bounds checked by the one generic validation, bounds and help kept
by a redeclared default, no field declared twice alike, network fields only where there are networks,
one preset resolution, and tabular checkpoints holding the retired network fields still load."""

import dataclasses
import inspect
import math

import pytest

import ascent
from ascent.core.checkpoint import load_checkpoint, save_checkpoint
from ascent.core.config import (CommonConfig, NetworkConfig, build_config, config_help, declarations, param,
                                resolve_preset)
from ascent.errors import CheckpointError, ConfigError
from ascent.registry import ALGORITHMS


@dataclasses.dataclass
class Toy(CommonConfig):
    count: int = param(2, "a count", positive=True)
    steps: int = param(0, "a count that may be 0", nonnegative=True)
    frac: float = param(0.5, "a fraction", range=(0.0, 1.0))
    rate: float = param(0.1, "a rate", range=(0.0, math.inf), low_open=True)
    mode: str = param("a", "a | b", choices=("a", "b"))
    lr: float | str = param(1e-3, "a schedule", schedule=True)
    alpha: float | str = param(0.1, "a schedule in (0, 1]", schedule=True, range=(0.0, 1.0), low_open=True)
    limit: float | None = param(None, "optional, > 0", range=(0.0, math.inf), low_open=True)
    flag: bool = param(False, "no bounds")


@dataclasses.dataclass
class ToyChild(Toy):
    count: int = param(5)  # a new default only: the help and the bound stay
    frac: float = param(0.25, "a fraction, redescribed")
    mode: str = param("b")
    flag: bool = param(True)


def message(config_cls, **values) -> str:
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(config_cls(), **values).validate()
    return str(err.value)


@pytest.mark.parametrize("values, expected", [
    ({"count": 0}, "count must be a positive integer, got 0"),
    ({"steps": -1}, "steps must be >= 0, got -1"),
    ({"frac": 1.5}, "frac must be in [0.0, 1.0], got 1.5"),
    ({"frac": math.nan}, "frac must be in [0.0, 1.0], got nan"),
    ({"rate": 0.0}, "rate must be in (0.0, inf], got 0.0"),
    ({"rate": math.inf}, "rate must be in (0.0, inf], got inf"),
    ({"mode": "x"}, "mode must be one of a, b; got 'x'"),
    ({"lr": "cos_1"}, "lr must be a number or 'lin_X' (linear decay from X to 0); got 'cos_1'"),
    ({"lr": "lin_x"}, "lr: cannot read the start value of 'lin_x'; write e.g. lin_0.001"),
    ({"lr": 0.0}, "lr must be > 0, got 0.0"),
    ({"lr": "lin_0"}, "lr must be > 0, got 'lin_0'"),
    ({"alpha": 1.5}, "alpha must be in (0.0, 1.0], got 1.5"),
    ({"alpha": "lin_2"}, "alpha must start in (0.0, 1.0], got 'lin_2'"),
    ({"limit": -1.0}, "limit must be in (0.0, inf], got -1.0"),
    ({"count": None}, "count must be set (only optional fields take None), got None"),
    ({"gamma": 1.5}, "gamma must be in [0.0, 1.0], got 1.5"),  # CommonConfig's own bounds
    ({"n_envs": 0}, "n_envs must be a positive integer, got 0"),
    ({"vectorization": "threads"}, "vectorization must be one of auto, sync, async, vector_entry_point; got 'threads'"),
])
def test_the_generic_validation_catches_each_kind_of_bound(values, expected):
    assert message(Toy, **values) == expected


def test_valid_values_pass_and_none_skips_an_optional_field():
    for values in [{}, {"limit": None}, {"limit": 2.0}, {"lr": "lin_0.01"}, {"alpha": "lin_1"}, {"alpha": 1.0},
                   {"steps": 0}, {"frac": 0.0}, {"mode": "b"}, {"flag": None}]:
        dataclasses.replace(Toy(), **values).validate()


def test_a_subclass_overriding_a_default_keeps_the_bound_and_the_help():
    child = ToyChild()
    assert (child.count, child.frac, child.mode, child.flag) == (5, 0.25, "b", True)
    child.validate()
    assert message(ToyChild, count=0) == "count must be a positive integer, got 0"
    assert message(ToyChild, frac=2.0) == "frac must be in [0.0, 1.0], got 2.0"
    assert message(ToyChild, mode="x") == "mode must be one of a, b; got 'x'"
    helps = {name: text for name, text, _ in config_help(ToyChild)}
    assert helps["count"] == "a count" and helps["frac"] == "a fraction, redescribed" and helps["flag"] == "no bounds"
    assert Toy().count == 2 and message(Toy, count=0)  # the base keeps its own default


def test_a_subclass_may_add_a_bound():
    @dataclasses.dataclass
    class Stricter(Toy):
        steps: int = param(3, positive=True)  # still >= 0 (the base's), now > 0 too

    assert message(Stricter, steps=0) == "steps must be a positive integer, got 0"
    assert message(Stricter, steps=-1) == "steps must be a positive integer, got -1"
    dataclasses.replace(Toy(), steps=0).validate()


def test_low_open_needs_a_range():
    with pytest.raises(TypeError, match="low_open"):
        param(1.0, "x", low_open=True)


# ---- the algorithms' configs ---------------------------------------------------------------------------
CONFIGS = {name: ascent.get_algorithm(name).Config for name in sorted(ALGORITHMS)}
TABULAR = {"qlearning", "sarsa", "minimaxq", "nashq", "iql", "dynaq"}
STUBBED_NETWORK_FIELDS_ONCE = {"qlearning", "sarsa"}  # (their old checkpoints hold the stubs: retired_fields)
NETWORK_FIELDS = ("net_arch", "activation", "ortho_init", "normalize_obs")


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_defaults_are_valid_and_every_field_has_help(algo):
    cls = CONFIGS[algo]
    cls().validate()
    assert all(help_text for _, help_text, _ in config_help(cls)), algo


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_a_subclass_redeclares_a_field_only_to_change_its_default_or_help(algo):
    for klass in CONFIGS[algo].__mro__:
        if not dataclasses.is_dataclass(klass) or klass is CommonConfig:
            continue
        base = klass.__mro__[1]
        if not dataclasses.is_dataclass(base):
            continue
        base_fields = {f.name: f for f in dataclasses.fields(base)}
        own_fields = {f.name: f for f in dataclasses.fields(klass)}
        for name in inspect.get_annotations(klass):
            if name in base_fields and name in own_fields:
                same_default = _default(own_fields[name]) == _default(base_fields[name])
                own_help = own_fields[name].metadata.get("help")
                same_help = own_help is None or own_help == declarations(base)[name].get("help")
                assert not (same_default and same_help), f"{klass.__name__}.{name} redeclares {base.__name__}'s"


def test_gamma_is_declared_once():
    owners = [k.__name__ for c in CONFIGS.values() for k in c.__mro__ if "gamma" in inspect.get_annotations(k)]
    assert set(owners) == {"CommonConfig"}
    assert all(c().gamma == 0.99 for c in CONFIGS.values())


@pytest.mark.parametrize("algo", sorted(CONFIGS))
def test_network_fields_only_where_there_are_networks(algo):
    cls, names = CONFIGS[algo], {f.name for f in dataclasses.fields(CONFIGS[algo])}
    if algo in TABULAR:
        assert not issubclass(cls, NetworkConfig) and not names & set(NETWORK_FIELDS)
        assert set(cls.retired_fields) == (set(NETWORK_FIELDS) if algo in STUBBED_NETWORK_FIELDS_ONCE else set())
    else:
        assert issubclass(cls, NetworkConfig) and set(NETWORK_FIELDS) <= names and cls.retired_fields == ()


def test_some_defaults_and_messages_of_the_algorithms():
    assert CONFIGS["dqn"]().activation == "relu" and CONFIGS["sac"]().net_arch == (256, 256)
    assert CONFIGS["td3"]().net_arch == (400, 300) and CONFIGS["ddpg"]().n_critics == 1
    assert CONFIGS["npg"]().line_search is False and CONFIGS["ppo"]().n_envs == 8
    assert CONFIGS["dqn"]().precision == "fp32" and CONFIGS["sac"]().checkpoint_every == 50_000
    assert message(CONFIGS["ddpg"], n_critics=0) == "n_critics must be a positive integer, got 0"
    assert message(CONFIGS["dqn"], precision="fp16") == "precision must be one of auto, fp32, bf16; got 'fp16'"
    assert message(CONFIGS["ppo"], activation="swish") == "activation must be one of tanh, relu, elu, gelu, silu; got 'swish'"
    assert "net_arch must be a list of positive layer widths" in message(CONFIGS["ppo"], net_arch=(64, 0))
    assert message(CONFIGS["ppo"], target_kl=0.0) == "target_kl must be in (0.0, inf], got 0.0"
    CONFIGS["ppo"](target_kl=None, clip_range_vf=None).validate()
    assert message(CONFIGS["qlearning"], learning_rate="lin_2") == "learning_rate must start in (0.0, 1.0], got 'lin_2'"
    # the cross-field checks stay with their configs
    assert "v_min < v_max" in message(CONFIGS["dqn"], distributional=True, v_min=1.0, v_max=0.0)
    assert "ent_coef" in message(CONFIGS["sac"], ent_coef="auto_x")
    assert "share_torso" in message(CONFIGS["trpo"], share_torso=True)
    assert "normalize_reward" in message(CONFIGS["reinforce"], normalize_reward=True)
    assert "gradient_steps" in message(CONFIGS["sac"], gradient_steps=-2)


# ---- presets ----------------------------------------------------------------------------------------------
def test_one_preset_resolution_for_the_cli_and_the_config():
    name, values = resolve_preset("qlearning", "FrozenLake-v1", None)
    assert name == "frozenlake" and values["n_timesteps"] == 200_000 and "envs" in values
    assert resolve_preset("qlearning", "CartPole-v1", None) == (None, {})
    assert resolve_preset("qlearning", "CartPole-v1", "taxi")[0] == "taxi"
    with pytest.raises(ConfigError, match="unknown preset 'nope' for qlearning"):
        resolve_preset("qlearning", None, "nope")
    config, chosen = build_config(CONFIGS["qlearning"], "qlearning", "FrozenLake-v1", None, {"n_envs": 2})
    assert chosen == "frozenlake" and config.learning_rate == values["learning_rate"] and config.n_envs == 2


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_shipped_preset_builds_a_valid_config(algo):
    from ascent.core.config import load_presets

    for name, values in load_presets(algo).items():
        config, chosen = build_config(CONFIGS[algo], algo, None, name, {})
        assert chosen == name and isinstance(values.get("description", ""), str)
        assert int(values.get("n_timesteps", 1)) > 0


def test_a_preset_file_of_key_value_lines(tmp_path):
    best = tmp_path / "best.toml"
    best.write_text('description = "tuned"\nn_timesteps = 5000\nlearning_rate = 0.25\nexploration_fraction = 0.3\n')
    name, values = resolve_preset("qlearning", "FrozenLake-v1", str(best))
    assert name == str(best) and values["n_timesteps"] == 5000
    config, chosen = build_config(CONFIGS["qlearning"], "qlearning", "FrozenLake-v1", str(best), {})
    assert chosen == str(best) and config.learning_rate == 0.25 and config.exploration_fraction == 0.3
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_preset("qlearning", None, str(tmp_path / "missing.toml"))
    (tmp_path / "bad.toml").write_text("learning_rate = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_preset("qlearning", None, str(tmp_path / "bad.toml"))
    (tmp_path / "tables.toml").write_text("[frozenlake]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="holds tables .frozenlake."):
        resolve_preset("qlearning", None, str(tmp_path / "tables.toml"))
    (tmp_path / "typo.toml").write_text("learning_rat = 0.1\n")
    with pytest.raises(ConfigError, match="unknown hyperparameter 'learning_rat'"):
        build_config(CONFIGS["qlearning"], "qlearning", None, str(tmp_path / "typo.toml"), {})


# ---- checkpoints ----------------------------------------------------------------------------------------
def test_a_tabular_checkpoint_with_the_retired_network_fields_loads(tmp_path):
    agent = ascent.QLearning("FrozenLake-v1", seed=0, verbose=0)
    agent.learn(64)
    path = agent.save(tmp_path / "new.pt")
    payload = load_checkpoint(path)
    payload["config"].update({"net_arch": [], "activation": "tanh", "ortho_init": True, "normalize_obs": False})
    save_checkpoint(tmp_path / "old.pt", payload)  # as the versions with the stubbed fields wrote it
    loaded = ascent.QLearning.load(tmp_path / "old.pt", verbose=0)
    assert loaded.config == agent.config and loaded.num_steps == agent.num_steps
    payload["config"]["momentum"] = 0.9  # any other unknown key is still a mismatch
    save_checkpoint(tmp_path / "bad.pt", payload)
    with pytest.raises(CheckpointError, match="does not match this version of qlearning"):
        ascent.QLearning.load(tmp_path / "bad.pt", verbose=0)


def test_a_checkpoint_from_before_a_new_field_loads_with_its_default(tmp_path):
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, n_envs=2, n_steps=16, batch_size=32, video_every=0)
    payload = load_checkpoint(agent.save(tmp_path / "new.pt"))
    del payload["config"]["video_every"]  # (added to CommonConfig after checkpoints had been written)
    save_checkpoint(tmp_path / "old.pt", payload)
    assert ascent.PPO.load(tmp_path / "old.pt", verbose=0).config == agent.config
    with pytest.raises(ConfigError, match="video_every must be >= 0, got -1"):
        ascent.PPO("CartPole-v1", verbose=0, video_every=-1)


def test_the_activation_names_are_the_networks_activations():
    # core/config.py lists them without importing the networks (and torch); the two must agree
    from ascent.core.config import ACTIVATION_NAMES
    from ascent.nets.layers import ACTIVATIONS

    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)

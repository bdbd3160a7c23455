"""RL-Zoo hyperparameter files through `--preset zoo:PATH.yml` (ascent.core.zoo): every key RL-Zoo's
ppo/sac/dqn/a2c/td3 files use, converted as written by hand below; the keys with no ascent
equivalent named once each; bad files and expressions refused with the fix; a train end to end.

The files are in RL-Zoo's format (rl_zoo3's hyperparams/*.yml, its entries copied or adapted): YAML
tags, anchors and merge keys, policy_kwargs and normalize as Python-expression strings.
"""

import json
import os
import subprocess
import sys

import pytest

from ascent.algorithms.a2c import A2CConfig
from ascent.algorithms.dqn import DQN, DQNConfig
from ascent.algorithms.ppo import PPOConfig
from ascent.algorithms.sac import SACConfig
from ascent.algorithms.td3 import DDPGConfig, TD3Config
from ascent.core.config import ACTIVATION_NAMES, build_config, resolve_preset
from ascent.core.zoo import ACTIVATION_FNS, PyName, read_expression
from ascent.errors import ConfigError

PPO_YML = """
atari:
  env_wrapper:
    - stable_baselines3.common.atari_wrappers.AtariWrapper
  frame_stack: 4
  policy: 'CnnPolicy'
  n_envs: 8
  n_steps: 128
  n_epochs: 4
  batch_size: 256
  n_timesteps: !!float 1e7
  learning_rate: lin_2.5e-4
  clip_range: lin_0.1
  vf_coef: 0.5
  ent_coef: 0.01

# Tuned
CartPole-v1:
  n_envs: 8
  n_timesteps: !!float 1e5
  policy: 'MlpPolicy'
  n_steps: 32
  batch_size: 256
  gae_lambda: 0.8
  gamma: 0.98
  n_epochs: 20
  ent_coef: 0.0
  learning_rate: lin_0.001
  clip_range: lin_0.2

Pendulum-v1:
  n_envs: 4
  n_timesteps: !!float 1e5
  policy: 'MlpPolicy'
  n_steps: 1024
  gae_lambda: 0.95
  gamma: 0.9
  n_epochs: 10
  ent_coef: 0.0
  learning_rate: !!float 1e-3
  clip_range: 0.2
  use_sde: True
  sde_sample_freq: 4
  callback:
    - rl_zoo3.callbacks.ParallelTrainCallback

HalfCheetahBulletEnv-v0: &pybullet-defaults
  normalize: true
  n_envs: 16
  n_timesteps: !!float 2e6
  policy: 'MlpPolicy'
  batch_size: 128
  n_steps: 512
  gamma: 0.99
  gae_lambda: 0.9
  n_epochs: 20
  ent_coef: 0.0
  max_grad_norm: 0.5
  vf_coef: 0.5
  learning_rate: !!float 3e-5
  clip_range: 0.4
  policy_kwargs: "dict(log_std_init=-2,
                       ortho_init=False,
                       activation_fn=nn.ReLU,
                       net_arch=dict(pi=[256, 256], vf=[256, 256])
                       )"

AntBulletEnv-v0:
  <<: *pybullet-defaults
  learning_rate: lin_3e-5
  policy_kwargs: "dict(log_std_init=-1, activation_fn=nn.GELU, net_arch=[dict(pi=[64], vf=[128])])"

CarRacing-v2:
  env_wrapper:
    - rl_zoo3.wrappers.FrameSkip:
        skip: 2
  frame_stack: 2
  normalize: "{'norm_obs': False, 'norm_reward': True}"
  n_timesteps: !!float 4e6
  policy: 'CnnPolicy'
  normalize_advantage: False
  target_kl: 0.05
  clip_range_vf: lin_0.3
  policy_kwargs: "dict(squash_output=True, use_expln=True, activation_fn=nn.LeakyReLU, optimizer_kwargs=dict(eps=1e-7))"

MountainCarContinuous-v0:
  normalize: true
  n_envs: 1
  n_timesteps: !!float 20000
  policy: 'MlpPolicy'
  batch_size: 256
  n_steps: 8
  use_sde: True
  policy_kwargs: "dict(log_std_init=-3.29, ortho_init=False)"
"""

SAC_YML = """
Pendulum-v1:
  # callback:
  #   - rl_zoo3.callbacks.ParallelTrainCallback
  n_timesteps: 20000
  policy: 'MlpPolicy'
  learning_rate: !!float 1e-3

LunarLanderContinuous-v3:
  n_timesteps: !!float 5e5
  policy: 'MlpPolicy'
  batch_size: 256
  learning_rate: lin_7.3e-4
  buffer_size: 1000000
  ent_coef: 'auto'
  gamma: 0.99
  tau: 0.01
  train_freq: 1
  gradient_steps: 1
  learning_starts: 10000
  policy_kwargs: "dict(net_arch=[400, 300])"

HumanoidBulletEnv-v0:
  normalize: "{'norm_obs': True, 'norm_reward': False}"
  n_timesteps: !!float 2e7
  policy: 'MlpPolicy'
  ent_coef: 'auto_0.1'
  target_entropy: -8.0
  train_freq: [4, "step"]
  gradient_steps: -1
  use_sde: True
  use_sde_at_warmup: True
  policy_kwargs: "dict(log_std_init=-3, n_critics=3, net_arch=dict(pi=[64, 64], qf=[400, 300]))"

donkey-generated-track-v0:
  normalize: True
  n_timesteps: !!float 1e6
  policy: 'MultiInputPolicy'
  train_freq: [1, "episode"]
  target_update_interval: 2
  optimize_memory_usage: True
  replay_buffer_kwargs: "dict(handle_timeout_termination=True)"
"""

DQN_YML = """
atari:
  env_wrapper:
    - stable_baselines3.common.atari_wrappers.AtariWrapper
  frame_stack: 4
  policy: 'CnnPolicy'
  n_timesteps: !!float 1e7
  buffer_size: 10000
  learning_rate: !!float 1e-4
  batch_size: 32
  learning_starts: 100000
  target_update_interval: 1000
  train_freq: 4
  gradient_steps: 1
  exploration_fraction: 0.1
  exploration_final_eps: 0.01
  optimize_memory_usage: True

CartPole-v1:
  n_timesteps: !!float 5e4
  policy: 'MlpPolicy'
  learning_rate: !!float 2.3e-3
  batch_size: 64
  buffer_size: 100000
  learning_starts: 1000
  gamma: 0.99
  target_update_interval: 10
  train_freq: 256
  gradient_steps: 128
  exploration_fraction: 0.16
  exploration_final_eps: 0.04
  exploration_initial_eps: 0.9
  max_grad_norm: 5
  tau: 1.0
  policy_kwargs: "dict(net_arch=[256, 256])"

LunarLander-v3:
  n_timesteps: !!float 1e5
  policy: 'MlpPolicy'
  learning_rate: lin_6.3e-4
  gradient_steps: -1
  policy_kwargs: "dict(net_arch=[256, 256], activation_fn=th.nn.Tanh)"
"""

A2C_YML = """
atari:
  env_wrapper:
    - stable_baselines3.common.atari_wrappers.AtariWrapper:
        terminal_on_life_loss: False
  frame_stack: 4
  policy: 'CnnPolicy'
  n_envs: 16
  n_timesteps: !!float 1e7
  ent_coef: 0.01
  vf_coef: 0.25
  policy_kwargs: "dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5, alpha=0.95))"

CartPole-v1:
  n_timesteps: !!float 5e5
  policy: 'MlpPolicy'
  ent_coef: 0.0

Pendulum-v1:
  normalize: True
  n_envs: 8
  n_timesteps: !!float 1e6
  policy: 'MlpPolicy'
  ent_coef: 0.0
  max_grad_norm: 0.5
  n_steps: 8
  gae_lambda: 0.9
  vf_coef: 0.4
  gamma: 0.9
  use_rms_prop: True
  rms_prop_eps: !!float 1e-5
  normalize_advantage: False
  learning_rate: lin_7e-4
  use_sde: True
  policy_kwargs: "dict(log_std_init=-2, ortho_init=False, optimizer_class=th.optim.Adam)"
"""

TD3_YML = """
MountainCarContinuous-v0:
  n_timesteps: 300000
  policy: 'MlpPolicy'
  noise_type: 'ornstein-uhlenbeck'
  noise_std: 0.5

Pendulum-v1:
  n_timesteps: 20000
  policy: 'MlpPolicy'
  gamma: 0.98
  buffer_size: 200000
  learning_starts: 10000
  noise_type: 'normal'
  noise_std: 0.1
  gradient_steps: -1
  train_freq: [1, "episode"]
  learning_rate: !!float 1e-3
  batch_size: 100
  tau: 0.005
  policy_delay: 2
  target_policy_noise: 0.2
  target_noise_clip: 0.5
  policy_kwargs: "dict(net_arch=[400, 300], n_critics=2)"

HalfCheetahBulletEnv-v0:
  env_wrapper: sb3_contrib.common.wrappers.TimeFeatureWrapper
  n_timesteps: !!float 1e6
  policy: 'MlpPolicy'
  learning_rate: lin_7e-4
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return f"zoo:{path}"


def values(algo, cls, env_id, spec):
    name, got = resolve_preset(algo, env_id, spec, cls)
    assert name == spec
    return got


# ---- every key of RL-Zoo's files, converted ------------------------------------------------------------
def test_ppo_keys(tmp_path, capsys):
    spec = write(tmp_path, "ppo.yml", PPO_YML)
    assert values("ppo", PPOConfig, "CartPole-v1", spec) == {
        "n_envs": 8, "n_timesteps": 100_000, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98,
        "n_epochs": 20, "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2"}
    assert values("ppo", PPOConfig, "Pendulum-v1", spec) == {
        "n_envs": 4, "n_timesteps": 100_000, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10,
        "ent_coef": 0.0, "learning_rate": 1e-3, "clip_range": 0.2, "use_sde": True, "sde_sample_freq": 4}
    # normalize: true is VecNormalize on observations and rewards; policy_kwargs read as an expression
    assert values("ppo", PPOConfig, "HalfCheetahBulletEnv-v0", spec) == {
        "n_envs": 16, "n_timesteps": 2_000_000, "n_steps": 512, "batch_size": 128, "gamma": 0.99, "gae_lambda": 0.9,
        "n_epochs": 20, "ent_coef": 0.0, "max_grad_norm": 0.5, "vf_coef": 0.5, "learning_rate": 3e-5,
        "clip_range": 0.4, "normalize_obs": True, "normalize_reward": True, "log_std_init": -2, "ortho_init": False,
        "activation": "relu", "net_arch": [256, 256]}
    # a merge key (<<) with overrides; the older [dict(pi, vf)] form whose critic differs: pi's widths
    ant = values("ppo", PPOConfig, "AntBulletEnv-v0", spec)
    assert (ant["learning_rate"], ant["log_std_init"], ant["activation"], ant["net_arch"], ant["n_envs"]) == \
        ("lin_3e-5", -1, "gelu", [64], 16)
    # left out of the entry: RL-Zoo's n_envs=1 and SB3's n_steps=2048, not ascent's 8 and 256
    car = values("ppo", PPOConfig, "CarRacing-v2", spec)
    assert car == {"n_envs": 1, "n_steps": 2048, "n_timesteps": 4_000_000, "normalize_obs": False,
                   "normalize_reward": True, "normalize_advantage": False, "target_kl": 0.05, "clip_range_vf": 0.3,
                   "adam_eps": 1e-7, "use_expln": True}
    # Atari ids take the "atari" entry, AtariWrapper and 4 frames being ascent's own Atari pipeline
    assert values("ppo", PPOConfig, "ALE/Pong-v5", spec) == {
        "n_envs": 8, "n_steps": 128, "n_epochs": 4, "batch_size": 256, "n_timesteps": 10_000_000,
        "learning_rate": "lin_2.5e-4", "clip_range": "lin_0.1", "vf_coef": 0.5, "ent_coef": 0.01}
    assert "AtariWrapper" not in capsys.readouterr().err
    # a minibatch larger than the rollout is the whole rollout in SB3: ascent's batch_size says so
    assert values("ppo", PPOConfig, "MountainCarContinuous-v0", spec) == {
        "normalize_obs": True, "normalize_reward": True, "n_envs": 1, "n_timesteps": 20_000, "batch_size": 8,
        "n_steps": 8, "log_std_init": -3.29, "ortho_init": False, "use_sde": True}

    config, chosen = build_config(PPOConfig, "ppo", "HalfCheetahBulletEnv-v0", spec, {"n_envs": 2})
    assert chosen == spec and config.net_arch == (256, 256) and config.activation == "relu"
    assert config.n_envs == 2 and config.log_std_init == -2.0 and config.normalize_obs and not config.ortho_init


def test_sac_keys(tmp_path):
    spec = write(tmp_path, "sac.yml", SAC_YML)
    assert values("sac", SACConfig, "Pendulum-v1", spec) == {"n_timesteps": 20_000, "learning_rate": 1e-3}
    # SAC's learning rate is a constant in ascent: a lin_ schedule becomes its start value
    assert values("sac", SACConfig, "LunarLanderContinuous-v3", spec) == {
        "n_timesteps": 500_000, "batch_size": 256, "learning_rate": 7.3e-4, "buffer_size": 1_000_000,
        "ent_coef": "auto", "gamma": 0.99, "tau": 0.01, "train_freq": 1, "gradient_steps": 1,
        "learning_starts": 10_000, "net_arch": [400, 300]}
    assert values("sac", SACConfig, "HumanoidBulletEnv-v0", spec) == {
        "normalize_obs": True, "normalize_reward": False, "n_timesteps": 20_000_000, "ent_coef": "auto_0.1",
        "target_entropy": -8.0, "train_freq": 4, "gradient_steps": -1, "n_critics": 3, "net_arch": [64, 64],
        "use_sde": True, "use_sde_at_warmup": True, "log_std_init": -3}
    # normalize: true on an off-policy algorithm normalizes observations only (raw rewards in the buffer)
    assert values("sac", SACConfig, "donkey-generated-track-v0", spec) == {
        "normalize_obs": True, "n_timesteps": 1_000_000, "target_update_interval": 2, "optimize_memory_usage": True}
    config, _ = build_config(SACConfig, "sac", "donkey-generated-track-v0", spec, {})
    assert config.normalize_obs and not config.normalize_reward and config.train_freq == 1  # (ascent's default)


def test_dqn_keys(tmp_path):
    spec = write(tmp_path, "dqn.yml", DQN_YML)
    assert values("dqn", DQNConfig, "CartPole-v1", spec) == {
        "n_timesteps": 50_000, "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000,
        "learning_starts": 1000, "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
        "exploration_fraction": 0.16, "exploration_final_eps": 0.04, "exploration_initial_eps": 0.9,
        "max_grad_norm": 5, "tau": 1.0, "net_arch": [256, 256]}
    assert values("dqn", DQNConfig, "BreakoutNoFrameskip-v4", spec) == {
        "n_timesteps": 10_000_000, "buffer_size": 10_000, "learning_rate": 1e-4, "batch_size": 32,
        "learning_starts": 100_000, "target_update_interval": 1000, "train_freq": 4, "gradient_steps": 1,
        "exploration_fraction": 0.1, "exploration_final_eps": 0.01, "optimize_memory_usage": True}
    assert values("dqn", DQNConfig, "LunarLander-v3", spec) == {
        "n_timesteps": 100_000, "learning_rate": 6.3e-4, "gradient_steps": -1, "net_arch": [256, 256],
        "activation": "tanh"}


def test_a2c_keys(tmp_path):
    spec = write(tmp_path, "a2c.yml", A2C_YML)
    assert values("a2c", A2CConfig, "CartPole-v1", spec) == {"n_envs": 1, "n_timesteps": 500_000, "ent_coef": 0.0}
    assert values("a2c", A2CConfig, "Pendulum-v1", spec) == {
        "normalize_obs": True, "normalize_reward": True, "n_envs": 8, "n_timesteps": 1_000_000, "ent_coef": 0.0,
        "max_grad_norm": 0.5, "n_steps": 8, "gae_lambda": 0.9, "vf_coef": 0.4, "gamma": 0.9, "use_rms_prop": False,
        "rms_prop_eps": 1e-5, "normalize_advantage": False, "learning_rate": "lin_7e-4", "log_std_init": -2,
        "ortho_init": False, "use_sde": True}
    # RL-Zoo's Atari A2C: RMSpropTFLike with eps 1e-5
    assert values("a2c", A2CConfig, "ALE/Breakout-v5", spec) == {
        "n_envs": 16, "n_timesteps": 10_000_000, "ent_coef": 0.01, "vf_coef": 0.25, "use_rms_prop": True,
        "rms_prop_eps": 1e-5, "rms_prop_alpha": 0.95}


def test_td3_and_ddpg_keys(tmp_path):
    spec = write(tmp_path, "td3.yml", TD3_YML)
    assert values("td3", TD3Config, "MountainCarContinuous-v0", spec) == {
        "n_timesteps": 300_000, "action_noise": "ornstein_uhlenbeck", "action_noise_std": 0.5}
    assert values("td3", TD3Config, "Pendulum-v1", spec) == {
        "action_noise": "normal", "n_timesteps": 20_000, "gamma": 0.98, "buffer_size": 200_000,
        "learning_starts": 10_000, "action_noise_std": 0.1, "gradient_steps": -1, "learning_rate": 1e-3,
        "batch_size": 100, "tau": 0.005, "policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5,
        "net_arch": [400, 300], "n_critics": 2}
    # no noise_type: SB3's TD3 and DDPG explore without action noise
    assert values("ddpg", DDPGConfig, "HalfCheetahBulletEnv-v0", spec) == {
        "action_noise": "none", "n_timesteps": 1_000_000, "learning_rate": 7e-4}
    config, _ = build_config(TD3Config, "td3", "Pendulum-v1", spec, {})
    assert config.action_noise == "normal" and config.net_arch == (400, 300) and config.gradient_steps == -1


# ---- keys that do not map: named once each, with why ------------------------------------------------------
def notes_of(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("ascent: ")]


def test_unmapped_keys_named_once_each(tmp_path, capsys):
    spec = write(tmp_path, "ppo.yml", PPO_YML)
    resolve_preset("ppo", "CarRacing-v2", spec)  # without a config class (train's first look): silent
    assert notes_of(capsys) == []
    build_config(PPOConfig, "ppo", "CarRacing-v2", spec, {})
    lines = notes_of(capsys)
    keys = [line.split(": ")[2] for line in lines]
    assert sorted(keys) == sorted(["env_wrapper", "frame_stack", "policy_kwargs.squash_output",
                                   "policy_kwargs.activation_fn", "clip_range_vf"]), lines
    assert all(line.startswith("ascent: ppo.yml [CarRacing-v2]: ") for line in lines)
    why = {line.split(": ")[2]: ": ".join(line.split(": ")[3:]) for line in lines}
    assert "gSDE" in why["policy_kwargs.squash_output"] and "LeakyReLU" in why["policy_kwargs.activation_fn"]
    assert "lin_0.3 becomes 0.3" in why["clip_range_vf"] and "FrameSkip" in why["env_wrapper"]

    build_config(PPOConfig, "ppo", "Pendulum-v1", spec, {})
    keys = [line.split(": ")[2] for line in notes_of(capsys)]
    assert keys == ["callback"]  # use_sde and sde_sample_freq map (gSDE)

    build_config(PPOConfig, "ppo", "MountainCarContinuous-v0", spec, {})
    why = dict(line.split(": ", 3)[2:] for line in notes_of(capsys))
    assert list(why) == ["batch_size"]
    assert why["batch_size"] == ("256 is larger than a rollout (n_steps * n_envs = 8), which SB3 then takes as one "
                                 "minibatch; batch_size becomes 8")

    build_config(PPOConfig, "ppo", "CartPole-v1", spec, {})  # every key maps: nothing said
    assert notes_of(capsys) == []

    spec = write(tmp_path, "sac.yml", SAC_YML)
    build_config(SACConfig, "sac", "HumanoidBulletEnv-v0", spec, {})
    keys = [line.split(": ")[2] for line in notes_of(capsys)]
    assert keys == ["policy_kwargs.net_arch"]  # gSDE's keys and log_std_init map (SAC has gSDE)
    build_config(SACConfig, "sac", "donkey-generated-track-v0", spec, {})
    keys = [line.split(": ")[2] for line in notes_of(capsys)]
    assert sorted(keys) == sorted(["normalize.norm_reward", "policy", "train_freq", "replay_buffer_kwargs"])

    spec = write(tmp_path, "a2c.yml", A2C_YML)
    build_config(A2CConfig, "a2c", "ALE/Breakout-v5", spec, {})
    keys = [line.split(": ")[2] for line in notes_of(capsys)]
    assert sorted(keys) == ["env_wrapper", "policy_kwargs.optimizer_class"]  # AtariWrapper's option; TF-like RMSprop


# ---- bad input -------------------------------------------------------------------------------------------
def test_file_without_the_env(tmp_path):
    spec = write(tmp_path, "ppo.yml", PPO_YML)
    with pytest.raises(ConfigError, match="no entry for CartPole-v0 \\(did you mean: CartPole-v1") as err:
        resolve_preset("ppo", "CartPole-v0", spec, PPOConfig)
    assert "its envs: atari, CartPole-v1, Pendulum-v1" in str(err.value)
    spec = write(tmp_path, "sac.yml", SAC_YML)
    with pytest.raises(ConfigError, match="no entry for ALE/Pong-v5"):  # no "atari" entry to fall back on
        resolve_preset("sac", "ALE/Pong-v5", spec, SACConfig)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_preset("ppo", "CartPole-v1", f"zoo:{tmp_path / 'missing.yml'}", PPOConfig)
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_preset("ppo", "CartPole-v1", write(tmp_path, "bad.yml", "CartPole-v1: [n_envs: 8"), PPOConfig)
    with pytest.raises(ConfigError, match="holds no entries"):
        resolve_preset("ppo", "CartPole-v1", write(tmp_path, "empty.yml", "# nothing\n"), PPOConfig)
    with pytest.raises(ConfigError, match="zoo:PATH.yml"):
        resolve_preset("ppo", "CartPole-v1", "zoo:", PPOConfig)


@pytest.mark.parametrize("policy_kwargs, needle", [
    ("dict(net_arch=[64, 64]", "cannot read"),                                  # unbalanced
    ("__import__('os').system('touch {canary}')", "read, never run"),           # a call that is not dict(...)
    ("dict(net_arch=[64] * 2)", "read, never run"),                             # arithmetic
    ("dict(**other)", "read, never run"),                                       # unpacking
    ("[64, 64]", "must be a dict"),                                             # not a dict
])
def test_invalid_policy_kwargs(tmp_path, policy_kwargs, needle):
    canary = tmp_path / "canary"
    text = f'CartPole-v1:\n  n_timesteps: 1000\n  policy_kwargs: "{policy_kwargs.format(canary=canary)}"\n'
    spec = write(tmp_path, "ppo.yml", text)
    with pytest.raises(ConfigError, match=needle) as err:
        build_config(PPOConfig, "ppo", "CartPole-v1", spec, {})
    assert "policy_kwargs of CartPole-v1" in str(err.value)
    assert not canary.exists()


def test_expressions_are_read_not_run():
    assert read_expression("dict(a=-2, b=[1, 2.5], c=nn.ReLU, d={'x': True}, e=None)", "x") == \
        {"a": -2, "b": [1, 2.5], "c": PyName("nn.ReLU"), "d": {"x": True}, "e": None}
    assert read_expression("th.optim.Adam", "x").last == "Adam"
    assert read_expression(True, "x") is True  # YAML values pass as they are
    assert set(ACTIVATION_FNS.values()) <= set(ACTIVATION_NAMES)


def test_noise_type_unknown(tmp_path):
    spec = write(tmp_path, "td3.yml", "Pendulum-v1:\n  noise_type: 'uniform'\n  noise_std: 0.1\n")
    with pytest.raises(ConfigError, match="noise_type of Pendulum-v1 must be one of normal, ornstein-uhlenbeck"):
        build_config(TD3Config, "td3", "Pendulum-v1", spec, {})


# ---- end to end -----------------------------------------------------------------------------------------
TINY_PPO = """
CartPole-v1:
  n_envs: 2
  n_timesteps: 256
  policy: 'MlpPolicy'
  n_steps: 64
  batch_size: 64
  n_epochs: 2
  learning_rate: lin_0.001
  clip_range: lin_0.2
  use_sde_at_warmup: True
  policy_kwargs: "dict(net_arch=dict(pi=[32], vf=[32]), activation_fn=nn.ReLU)"
"""


def test_cli_train_with_a_zoo_file(tmp_path):
    spec = write(tmp_path, "ppo.yml", TINY_PPO)
    rd = tmp_path / "run"
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "ascent.cli", "train", "ppo", "--env", "CartPole-v1", "--preset", spec,
                        "--run-dir", str(rd), "--no-progress", "--eval-episodes", "2"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("use_sde_at_warmup") == 1, r.stderr  # named once, though train resolves the preset twice
    assert "for 256 steps" in r.stdout and f"preset {spec}" in r.stdout  # n_timesteps is the default --steps
    recorded = json.loads((rd / "config.json").read_text())
    assert recorded["preset"] == spec
    config = recorded["config"]
    assert (config["n_envs"], config["n_steps"], config["batch_size"], config["n_epochs"]) == (2, 64, 64, 2)
    assert (config["learning_rate"], config["net_arch"], config["activation"]) == ("lin_0.001", [32], "relu")
    assert json.loads((rd / "eval.json").read_text())["episodes"] == 2

    r = subprocess.run([sys.executable, "-m", "ascent.cli", "train", "ppo", "--env", "Acrobot-v1", "--preset", spec,
                        "--run-dir", str(tmp_path / "run2"), "--no-progress"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2 and "no entry for Acrobot-v1" in r.stderr and "Traceback" not in r.stderr

    r = subprocess.run([sys.executable, "-m", "ascent.cli", "list", "dqn"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert "RL-Zoo key -> dqn field" in r.stdout and "policy_kwargs: net_arch -> net_arch" in r.stdout
    assert "callback" in r.stdout and "exploration_final_eps" in r.stdout


def test_python_api_with_a_zoo_file(tmp_path):
    text = DQN_YML.replace("n_timesteps: !!float 5e4", "n_timesteps: 300").replace("learning_starts: 1000",
                                                                                      "learning_starts: 100")
    spec = write(tmp_path, "dqn.yml", text)
    agent = DQN("CartPole-v1", preset=spec, seed=0, verbose=0, train_freq=16, gradient_steps=4)
    assert agent.preset == spec and agent.config.net_arch == (256, 256) and agent.config.train_freq == 16
    assert agent.config.target_update_interval == 10 and agent.config.exploration_final_eps == 0.04
    agent.learn(300)
    assert agent.num_steps >= 300

"""Minari datasets: collect -> read gives the same arrays; foreign, empty, corrupt datasets refused in one line."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from ascent.errors import DatasetError
from ascent.imitation.datasets import Demonstrations, collect, read_demonstrations, record_episodes, write_dataset


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, expert_controller):
    env = gym.make("CartPole-v1")
    episodes = record_episodes(expert_controller, env, 3, seed=7)
    path = write_dataset(tmp_path_factory.mktemp("ds") / "cartpole", episodes, env, "cartpole/test-v0", "controller")
    return path, episodes


def test_round_trip_gives_the_recorded_arrays(recorded):
    path, episodes = recorded
    demos = read_demonstrations(path, "CartPole-v1", gym.make("CartPole-v1").observation_space,
                                gym.make("CartPole-v1").action_space)
    assert demos.n_episodes == 3 and len(demos) == sum(len(e["rewards"]) for e in episodes)
    np.testing.assert_array_equal(demos.obs, np.concatenate([e["observations"][:-1] for e in episodes]))
    np.testing.assert_array_equal(demos.next_obs, np.concatenate([e["observations"][1:] for e in episodes]))
    np.testing.assert_array_equal(demos.actions, np.concatenate([e["actions"] for e in episodes]))
    np.testing.assert_array_equal(demos.terminated, np.concatenate([e["terminations"] for e in episodes]))
    np.testing.assert_array_equal(demos.truncated, np.concatenate([e["truncations"] for e in episodes]))
    np.testing.assert_allclose(demos.episode_returns, [e["rewards"].sum() for e in episodes])
    # episode i was reset with seed 7 + i: the first observation is that reset's
    first = np.flatnonzero(np.r_[True, np.diff(demos.episode) != 0])
    for i, row in enumerate(first):
        np.testing.assert_array_equal(demos.obs[row], gym.make("CartPole-v1").reset(seed=7 + i)[0])
    # the same dataset through Minari's own reader, and its metadata
    meta = json.loads((path / "data" / "metadata.json").read_text())
    assert meta["dataset_id"] == "cartpole/test-v0" and meta["total_episodes"] == 3
    assert json.loads(meta["env_spec"])["id"] == "CartPole-v1"


def test_a_dataset_for_another_env_or_space_is_refused(recorded):
    path, _ = recorded
    with pytest.raises(DatasetError, match="recorded on CartPole-v1, not Acrobot-v1"):
        read_demonstrations(path, "Acrobot-v1")
    other = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    with pytest.raises(DatasetError, match="observation space"):
        read_demonstrations(path, None, other)
    with pytest.raises(DatasetError, match="action space"):
        read_demonstrations(path, None, None, gym.spaces.Discrete(3))


def test_missing_empty_and_corrupt_datasets_are_one_clear_line(recorded, tmp_path):
    with pytest.raises(DatasetError, match="no locally installed Minari dataset"):
        read_demonstrations(tmp_path / "nowhere")
    (tmp_path / "notads").mkdir()
    with pytest.raises(DatasetError, match="not a Minari dataset"):
        read_demonstrations(tmp_path / "notads")
    env = gym.make("CartPole-v1")
    empty = write_dataset(tmp_path / "empty", [], env, "cartpole/empty-v0", "none")
    with pytest.raises(DatasetError, match="no episodes"):
        read_demonstrations(empty)
    path, _ = recorded
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(path), str(broken)], check=True)
    data = broken / "data" / "main_data.hdf5"
    data.write_bytes(data.read_bytes()[:200])  # truncated file
    with pytest.raises(DatasetError, match="corrupt") as err:
        read_demonstrations(broken)
    assert "\n" not in str(err.value)
    (broken / "data" / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="cannot be read"):
        read_demonstrations(broken)


def test_split_keeps_whole_episodes_and_select_renumbers(recorded):
    path, _ = recorded
    demos = read_demonstrations(path)
    train, val = demos.split(0.34, np.random.default_rng(0))
    assert train.n_episodes == 2 and val.n_episodes == 1
    assert len(train) + len(val) == len(demos)
    lengths = set(demos.episode_lengths.tolist())
    assert set(val.episode_lengths.tolist()) <= lengths
    one = demos.select_episodes(np.array([2]))
    assert one.n_episodes == 1 and (one.episode == 0).all()
    np.testing.assert_array_equal(one.obs, demos.obs[demos.episode == 2])
    assert demos.split(0.0, np.random.default_rng(0))[1] is None
    with pytest.raises(DatasetError, match="no episodes"):
        Demonstrations.from_episodes([])


def test_collect_from_a_run_and_random_policy(tmp_path):
    from ascent.algorithms.ppo import PPO

    run = tmp_path / "run"
    PPO("CartPole-v1", seed=0, run_dir=run, verbose=0, n_envs=2, n_steps=32, batch_size=32, n_epochs=1).learn(
        64, progress_bar=False)
    r = collect(run, 2, tmp_path / "ds", deterministic=True, seed=3)
    assert r["episodes"] == 2 and r["dataset_id"] == "cartpole/ascent-ppo-v0"
    demos = read_demonstrations(r["path"], "CartPole-v1")
    assert demos.n_episodes == 2 and r["steps"] == len(demos)
    assert r["mean_return"] == pytest.approx(demos.episode_returns.mean())
    with pytest.raises(DatasetError, match="already exists"):
        collect(run, 2, tmp_path / "ds")
    rand = collect(None, 3, tmp_path / "rand", policy="random", env="CartPole-v1", seed=0)
    assert rand["dataset_id"] == "cartpole/ascent-random-v0" and rand["mean_return"] < 100
    with pytest.raises(DatasetError, match="RUN_DIR"):
        collect(None, 3, tmp_path / "x")


def test_cli_collect_prints_the_mean_return_and_refuses_bad_input(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ascent.cli", "collect", "--policy", "random", "--env", "CartPole-v1",
                          "--episodes", "2", "--out", str(tmp_path / "ds")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "mean return" in out.stdout and "--set dataset=" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ascent.cli", "train", "bc", "--env", "Acrobot-v1", "--steps", "10",
                          "--set", f"dataset={tmp_path / 'ds'}", "--run-dir", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("ascent: error:") and "recorded on CartPole-v1" in bad.stderr


def test_a_locally_installed_minari_id_is_found(recorded, tmp_path, monkeypatch):
    import shutil

    path, _ = recorded
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "store"))
    with pytest.raises(DatasetError, match="no Minari dataset is installed locally"):
        read_demonstrations("cartpole/test-v0")
    shutil.copytree(path, tmp_path / "store" / "cartpole" / "test-v0")
    demos = read_demonstrations("cartpole/test-v0", "CartPole-v1")
    assert demos.n_episodes == 3
    with pytest.raises(DatasetError, match="installed: cartpole/test-v0"):
        read_demonstrations("cartpole/other-v0")

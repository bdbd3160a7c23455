"""Save/load, resume, determinism, corrupt checkpoints, and divergence handling."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import ascent
from ascent.core.checkpoint import load_checkpoint
from ascent.core.logger import read_csv

SMALL = dict(n_envs=2, n_steps=64, batch_size=64, n_epochs=2)


def test_save_load_gives_identical_actions_and_optimizer(tmp_path):
    agent = ascent.PPO("Pendulum-v1", seed=3, verbose=0, normalize_obs=True, normalize_reward=True, **SMALL)
    agent.learn(512)
    agent.save(tmp_path / "m.pt")
    loaded = ascent.PPO.load(tmp_path / "m.pt", verbose=0)
    obs = np.random.default_rng(0).uniform(-1, 1, (20, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    for a, b in zip(agent.step.optimizer.state_dict()["state"].values(), loaded.step.optimizer.state_dict()["state"].values()):
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"])
    assert loaded.num_steps == agent.num_steps and loaded.config == agent.config
    assert loaded.reward_scaler.var == agent.reward_scaler.var
    torch.testing.assert_close(loaded.policy.encoder.normalizer.mean, agent.policy.encoder.normalizer.mean)
    # the generic loader dispatches on the algorithm stored in the file
    assert type(ascent.load(tmp_path / "m.pt", verbose=0)) is ascent.PPO


def test_same_seed_same_metrics(tmp_path):
    runs = []
    for name in ("a", "b"):
        ascent.PPO("CartPole-v1", seed=7, verbose=0, run_dir=tmp_path / name, **SMALL).learn(1024)
        rows = read_csv(tmp_path / name / "metrics.csv")
        runs.append([{k: v for k, v in r.items() if k not in ("steps_per_s", "wall_time")} for r in rows])
    assert runs[0] == runs[1]


def test_resume_continues_where_interrupted(tmp_path):
    """An interrupted run (stopped by a callback after a checkpoint) resumes to the same result as an
    uninterrupted one: same counters, same RNG, same final weights."""
    cfg = dict(SMALL, checkpoint_every=256)
    full = ascent.PPO("CartPole-v1", seed=1, verbose=0, run_dir=tmp_path / "full", **cfg).learn(1024)
    stop_after = lambda agent, m: agent.num_steps < 512  # noqa: E731
    ascent.PPO("CartPole-v1", seed=1, verbose=0, run_dir=tmp_path / "cut", **cfg).learn(1024, callbacks=stop_after)
    (tmp_path / "cut" / "model.pt").unlink()
    resumed = ascent.PPO.resume(tmp_path / "cut", progress_bar=False)
    assert resumed.num_steps == full.num_steps == 1024
    steps = [int(r["steps"]) for r in read_csv(tmp_path / "cut" / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 1024


def test_sigkill_mid_training_then_resume(tmp_path):
    run = tmp_path / "run"
    code = ("import ascent; ascent.PPO('CartPole-v1', seed=0, verbose=0, run_dir=%r, n_envs=2, n_steps=64, "
            "batch_size=64, n_epochs=2, checkpoint_every=128).learn(200_000)" % str(run))
    proc = subprocess.Popen([sys.executable, "-c", code])
    ckpt = run / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if ckpt.exists() and load_checkpoint(ckpt)["num_steps"] >= 1024:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(ckpt)  # the atomic write left a whole, readable checkpoint
    assert saved["num_steps"] >= 1024
    agent = ascent.PPO.load(ckpt, verbose=0)
    agent.learn(256, progress_bar=False)
    assert agent.num_steps == saved["num_steps"] + 256


def test_corrupt_and_foreign_checkpoints(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ascent.CheckpointError, match="not a readable ascent checkpoint"):
        ascent.PPO.load(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ascent.CheckpointError, match="not an ascent checkpoint"):
        ascent.PPO.load(foreign)
    agent = ascent.PPO("CartPole-v1", verbose=0, **SMALL)
    agent.save(tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ascent.CheckpointError):
        ascent.PPO.load(tmp_path / "truncated.pt")
    with pytest.raises(ascent.CheckpointError, match="no checkpoint"):
        ascent.PPO.load(tmp_path / "missing.pt")


def test_nan_in_training_stops_and_keeps_last_checkpoint(tmp_path):
    def poison(agent, metrics):
        if agent.num_steps >= 256:
            with torch.no_grad():
                agent.policy.action_head.weight.fill_(float("nan"))

    agent = ascent.PPO("CartPole-v1", verbose=0, run_dir=tmp_path, checkpoint_every=128, **SMALL)
    with pytest.raises(ascent.TrainingDiverged, match="non-finite.*last good checkpoint"):
        agent.learn(2048, callbacks=poison)
    good = ascent.PPO.load(tmp_path / "checkpoints" / "last.pt", verbose=0)
    assert all(torch.isfinite(p).all() for p in good.policy.parameters())


def test_periodic_evaluation_is_logged(tmp_path):
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path, eval_every=256, eval_episodes=2, **SMALL)
    agent.learn(512)
    rows = read_csv(tmp_path / "metrics.csv")
    evals = [r for r in rows if r.get("eval_return")]
    assert [int(r["steps"]) for r in evals] == [256, 512]
    assert all(float(r["eval_return"]) > 0 for r in evals)


def test_log_interval_rows_keep_every_episode(tmp_path):
    agent = ascent.A2C("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path, log_interval=10, checkpoint_every=0)
    agent.learn(4000)  # 100 iterations of 40 steps
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["steps"]) for r in rows] == list(range(400, 4001, 400))
    assert all(r["episode_return"] for r in rows)  # episodes between rows are averaged into them
    with pytest.raises(ascent.ConfigError, match="log_interval"):
        ascent.A2C("CartPole-v1", log_interval=0)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_a_pickle_that_would_run_code_is_refused_and_said_so(tmp_path):
    torch.save({"format": "ascent-checkpoint", "payload": RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(ascent.CheckpointError, match=r"was refused: it asks to run code .*GLOBAL .*system"):
        ascent.load(tmp_path / "evil.pt")


def test_a_full_disk_surfaces_as_os_error_naming_the_file(tmp_path, monkeypatch):
    import errno

    from ascent.core import checkpoint

    def full(obj, f):  # torch.save reports ENOSPC as a RuntimeError from its zip writer
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 344000 vs 343928")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(OSError) as info:
        checkpoint.save_checkpoint(tmp_path / "last.pt", {"x": 1})
    assert info.value.errno == errno.ENOSPC and str(tmp_path) in info.value.filename
    assert not list(tmp_path.iterdir())  # no temp file left behind

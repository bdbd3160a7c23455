"""IMPALA on Ray: learning on CartPole, a killed actor replaced mid-run, and the Ray session's
edges (no process left after a run, an unreachable cluster, bad input). One Ray session serves
every test of this process (ascent.cluster.session); the CLI tests run in processes of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ascent.distributed.impala import IMPALA
from ascent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(n_actors=2, n_envs=4, n_steps=32, segments_per_batch=2)


def ascent_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ascent.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "RAY_ADDRESS": ""})


def ray_sessions() -> dict[str, list[int]]:
    """Ray session directory -> pids of the processes of that session (raylet, gcs, ray:: workers)."""
    sessions: dict[str, list[int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for part in cmd.split():
            if "/session_" in part and "ray" in cmd:
                session = part[part.index("session_"):].split("/")[0]
                sessions.setdefault(session, []).append(int(pid))
                break
    return sessions


@pytest.mark.slow
def test_impala_learns_cartpole():
    agent = IMPALA("CartPole-v1", seed=0, verbose=0, **SMALL, learning_rate=1e-3)
    agent.learn(60_000, progress_bar=False)
    result = agent.evaluate(10)
    assert result["mean_return"] >= 195, result


def test_a_killed_actor_is_replaced_and_the_run_reaches_its_target():
    agent = IMPALA("CartPole-v1", seed=1, verbose=0, **SMALL)
    killed = {}

    def kill_one_actor(agent, metrics):
        if agent.iteration == 5:
            import ray

            pid = ray.get(agent.runners.actors[0].pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed["pid"] = pid
        if agent.iteration > 5:
            killed.setdefault("restarts", metrics["actor_restarts"])
            killed["restarts"] = max(killed["restarts"], metrics["actor_restarts"])
        return True

    agent.learn(12_000, callbacks=kill_one_actor, progress_bar=False)
    assert agent.num_steps >= 12_000
    assert killed["pid"] and killed["restarts"] >= 1
    assert not agent.non_finite_parameters()


def test_cli_train_leaves_no_ray_process_behind(tmp_path):
    before = set(ray_sessions())
    out = ascent_cli("train", "impala", "--env", "CartPole-v1", "--steps", "2048", "--run-dir", str(tmp_path / "run"),
                     "--no-progress", "--eval-episodes", "2", "--set", "n_actors=2", "--set", "n_envs=2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "model.pt").exists()
    deadline = time.monotonic() + 10  # (processes of a stopped session exit within moments)
    while time.monotonic() < deadline:
        left = {s: pids for s, pids in ray_sessions().items() if s not in before}
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"ray processes left after `ascent train` exited: {left}"


def test_an_unreachable_cluster_is_a_clear_error_within_seconds(tmp_path):
    start = time.monotonic()
    out = ascent_cli("train", "impala", "--env", "CartPole-v1", "--steps", "1000", "--run-dir", str(tmp_path / "run"),
                     "--ray-address", "127.0.0.1:9", timeout=60)
    assert time.monotonic() - start < 15
    assert out.returncode == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in out.stderr and "ray start --head" in out.stderr


@pytest.mark.parametrize("bad", [0, -1])
def test_n_actors_must_be_positive(bad):
    with pytest.raises(ConfigError, match="n_actors"):
        IMPALA("CartPole-v1", verbose=0, n_actors=bad)


def test_per_actor_statistics_are_refused():
    with pytest.raises(ConfigError, match="normalize_obs is not supported by the distributed"):
        IMPALA("CartPole-v1", verbose=0, normalize_obs=True)


def test_segments_carry_the_behaviour_policy_and_bootstrap_data():
    """One segment from an actor: shapes, the behaviour log-probs of the actions it took (recomputed
    from the weights it was sent), and the final observations where episodes were truncated."""
    import ray
    import torch

    from ascent.cluster.weights import WeightBroadcast
    from ascent.distributed.common import start_runners

    agent = IMPALA("CartPole-v1", seed=3, verbose=0, n_actors=1, n_envs=3, n_steps=64)
    pool = start_runners(agent, 64)
    try:
        broadcast = WeightBroadcast()
        broadcast.publish(agent.policy)
        seg = ray.get(pool.submit(0, "sample", *broadcast.handle()))
    finally:
        pool.shutdown()
    assert seg["x"].shape == (64, 3, 4) and seg["last_x"].shape == (3, 4) and seg["version"] == 0
    with torch.no_grad():
        logp = agent.policy.distribution(torch.tensor(seg["x"].reshape(-1, 4))).log_prob(
            torch.tensor(seg["actions"].reshape(-1)))
    np.testing.assert_allclose(logp.numpy(), seg["logprobs"].reshape(-1), rtol=1e-4, atol=1e-5)
    assert seg["steps"] == 192 and seg["episodes"], "64 steps of 3 random CartPoles end episodes"

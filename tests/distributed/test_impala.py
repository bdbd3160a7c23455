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

from ascent.cluster.session import ray_processes
from ascent.core.checkpoint import load_checkpoint
from ascent.core.logger import read_csv
from ascent.distributed.impala import IMPALA
from ascent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(n_actors=2, n_envs=4, n_steps=32, segments_per_batch=2)


def ascent_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ascent.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "RAY_ADDRESS": ""})


def leftover_ray_processes(before: set[int]) -> dict[int, str]:
    """Ray processes started since `before` that are not this test process's own Ray session's."""
    mine = {os.getpid()}
    procs = ray_processes()
    for _ in range(3):  # this process's raylet and GCS, and their children
        mine |= {pid for pid, (parent, _) in procs.items() if parent in mine}
    return {pid: cmd[:80] for pid, (parent, cmd) in procs.items() if pid not in before and pid not in mine}


def wait_for_no_leftovers(before: set[int], seconds: float = 10) -> dict[int, str]:
    deadline = time.monotonic() + seconds  # (a stopped session's processes exit within moments)
    while True:
        left = leftover_ray_processes(before)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@pytest.mark.slow
def test_impala_learns_cartpole():
    agent = IMPALA("CartPole-v1", seed=0, verbose=0)  # 2 actors x 8 envs, 64-step segments
    agent.learn(100_000, progress_bar=False)  # (3 seeds measured: 337, 284, 435 at 100k)
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
    before = set(ray_processes())
    out = ascent_cli("train", "impala", "--env", "CartPole-v1", "--steps", "2048", "--run-dir", str(tmp_path / "run"),
                     "--no-progress", "--eval-episodes", "2", "--set", "n_actors=2", "--set", "n_envs=2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "model.pt").exists()
    left = wait_for_no_leftovers(before)
    assert not left, f"ray processes left after `ascent train` exited: {left}"


def test_resume_after_the_driver_is_killed(tmp_path):
    """SIGKILL of the driver mid-run: `ascent resume` continues from the last checkpoint to the
    target, and the Ray processes the killed driver left are stopped."""
    before = set(ray_processes())
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ascent.cli", "train", "impala", "--env", "CartPole-v1", "--steps", "60000",
           "--run-dir", str(run), "--no-progress", "--set", "n_envs=4", "--set", "checkpoint_every=4096"]
    driver = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "RAY_ADDRESS": ""})
    checkpoint = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), driver.stderr.read().decode()[-2000:] if driver.poll() is not None else "no checkpoint"
    driver.kill()  # SIGKILL: no handler runs
    driver.wait()
    saved = load_checkpoint(checkpoint)["num_steps"]
    assert 0 < saved < 60_000
    out = ascent_cli("resume", str(run), "--no-progress")
    assert out.returncode == 0, out.stderr[-2000:]
    assert load_checkpoint(checkpoint)["num_steps"] >= 60_000
    steps = [int(row["steps"]) for row in read_csv(run / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] > saved
    assert not wait_for_no_leftovers(before), "the killed driver's Ray processes were not stopped"


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


TWO_NODES = """
import json, sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
worker = cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
import ray
from ascent.distributed.impala import IMPALA
agent = IMPALA("CartPole-v1", seed=0, verbose=0, n_actors=2, n_envs=4, ray_address=cluster.address)
seen = {}
def where(agent, metrics):
    if "actors" not in seen:
        seen["actors"] = ray.get([a.node_id.remote() for a in agent.runners.actors])
    return True
agent.learn(20_000, callbacks=where, progress_bar=False)
print(json.dumps({"head": cluster.head_node.node_id, "worker": worker.node_id, "actors": seen["actors"],
                  "steps": agent.num_steps, "return": agent.evaluate(5)["mean_return"]}))
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.slow
def test_impala_runs_its_actors_on_the_second_node_of_a_two_node_cluster():
    """A head node with no CPUs (the driver's) and a worker node with two: the actors must run on
    the worker node (checked by node id), and the run reach its target through the cluster's address."""
    import json

    out = subprocess.run([sys.executable, "-c", TWO_NODES], capture_output=True, text=True, cwd=ROOT, timeout=240,
                         env={**os.environ, "RAY_ADDRESS": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["actors"] == [result["worker"]] * 2 and result["worker"] != result["head"]
    assert result["steps"] >= 20_000

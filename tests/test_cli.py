"""The CLI end to end, and its errors: non-zero exit, one line, no traceback."""

import json
import os
import subprocess
import sys

import pytest

ASCENT = [sys.executable, "-m", "ascent.cli"]
FAST = ["--set", "n_envs=2", "--set", "n_steps=64", "--set", "batch_size=64", "--set", "n_epochs=2"]


def run(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([*ASCENT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_train_eval_resume_plot_list(tmp_path):
    rd = tmp_path / "run"
    r = run("train", "ppo", "--env", "CartPole-v1", "--steps", "1024", "--seed", "1", "--run-dir", str(rd),
            "--no-progress", *FAST, "--set", "learning_rate=0.001", "--eval-episodes", "3")
    assert r.returncode == 0, r.stderr
    for name in ("config.json", "metrics.csv", "model.pt", "checkpoints/last.pt", "learning_curve.png", "eval.json"):
        assert (rd / name).exists(), name
    assert list((rd / "tb").glob("events.out.tfevents.*"))
    cfg = json.loads((rd / "config.json").read_text())
    assert cfg["config"]["learning_rate"] == 0.001 and cfg["seed"] == 1 and "torch" in cfg["versions"]
    header = (rd / "metrics.csv").read_text().splitlines()[0].split(",")
    for col in ("steps", "wall_time", "episode_return", "episode_length", "policy_loss", "value_loss", "approx_kl",
                "clip_fraction", "explained_variance", "entropy", "learning_rate", "steps_per_s"):
        assert col in header, col

    r = run("eval", str(rd), "--episodes", "3", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["episodes"] == 3 and {"mean_return", "std_return"} <= set(result)

    r = run("resume", str(rd), "--no-progress")  # already complete: finishes at once
    assert r.returncode == 0, r.stderr

    rd2 = tmp_path / "run2"
    assert run("train", "ppo", "--env", "CartPole-v1", "--steps", "512", "--seed", "2", "--run-dir", str(rd2),
               "--no-progress", *FAST).returncode == 0
    out = tmp_path / "both.png"
    r = run("plot", str(rd), str(rd2), "--out", str(out))
    assert r.returncode == 0 and out.stat().st_size > 1000, r.stderr

    r = run("list")
    assert r.returncode == 0 and "ppo" in r.stdout and "cartpole" in r.stdout
    r = run("list", "ppo")
    assert "clip_range" in r.stdout and "gae_lambda" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["train", "ppx", "--env", "CartPole-v1", "--steps", "10"], "did you mean: ppo"),
    (["train", "ppo", "--env", "CartPol-v1", "--steps", "10"], "CartPole-v1"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "10", "--set", "learning_rat=1"], "did you mean: learning_rate"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "10", "--set", "learning_rate=0"], "learning_rate must be > 0"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "10", "--set", "n_steps=abc"], "n_steps must be an integer"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "-5"], "positive integer"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "10", "--preset", "nope"], "unknown preset"),
    (["eval", "/nonexistent/run"], "no run directory"),
    (["resume", "/nonexistent/run"], "no run directory"),
])
def test_bad_input_one_clear_line(args, needle, tmp_path):
    r = run(*args, cwd=tmp_path)
    assert r.returncode != 0
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if "error" in line]) == 1


def test_corrupt_run_dir(tmp_path):
    rd = tmp_path / "run"
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "config.json").write_text(json.dumps({"algo": "ppo", "env_id": "CartPole-v1"}))
    (rd / "model.pt").write_bytes(b"garbage")
    (rd / "checkpoints" / "last.pt").write_bytes(b"garbage")
    for cmd in ("eval", "resume"):
        r = run(cmd, str(rd))
        assert r.returncode == 2 and "not a readable ascent checkpoint" in r.stderr and "Traceback" not in r.stderr
    (rd / "config.json").write_text("{not json")
    r = run("eval", str(rd))
    assert r.returncode == 2 and "corrupt" in r.stderr
    r = run("eval", str(tmp_path))
    assert r.returncode == 2 and "not an ascent run directory" in r.stderr


def test_eval_records_video(tmp_path):
    pytest.importorskip("moviepy")
    rd = tmp_path / "run"
    assert run("train", "ppo", "--env", "CartPole-v1", "--steps", "128", "--run-dir", str(rd), "--no-progress",
               *FAST, "--eval-episodes", "1").returncode == 0
    r = run("eval", str(rd), "--episodes", "3", "--video")
    assert r.returncode == 0, r.stderr
    clips = sorted(p.name for p in (rd / "videos" / "eval").iterdir())
    assert clips == [f"rl-video-episode-{k}.mp4" for k in range(3)], clips  # one file per episode, no stray clip
    assert r.stderr == "", r.stderr  # no warnings on a headless machine (SDL's XDG_RUNTIME_DIR complaint)


def test_mujoco_env_trains_a_few_steps(tmp_path):
    pytest.importorskip("mujoco")
    import ascent

    agent = ascent.PPO("HalfCheetah-v5", seed=0, verbose=0, n_steps=64, batch_size=64, n_epochs=1)
    assert agent.preset == "mujoco" and agent.config.normalize_obs
    agent.learn(64)
    assert agent.act(agent.envs.observation_space.sample()).shape == (6,)


def test_train_tracks_with_mlflow_in_the_working_directory_by_default(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    r = run("train", "ppo", "--env", "CartPole-v1", "--steps", "128", "--run-dir", "run", "--no-progress", *FAST,
            "--eval-episodes", "1", "--track", "mlflow", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    tracked = json.loads((tmp_path / "run" / "tracking.json").read_text())["mlflow"]
    assert tracked["tracking_uri"] == f"sqlite:///{tmp_path / 'mlruns.db'}" and (tmp_path / "mlruns.db").is_file()
    assert f"tracking with MLflow: run {tracked['run_id']}" in r.stderr


@pytest.mark.parametrize("algo", ["ppo", "dqn", "sac", "qlearning"])
def test_list_prints_the_search_space_as_a_space_file_tune_reads_back(algo, tmp_path, capsys):
    from ascent.cli import main
    from ascent.registry import get_algorithm
    from ascent.tuning.spaces import algorithm_space, load_space_file

    assert main(["list", algo]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(f"search space of `ascent tune {algo}` (the format of a --space FILE.toml):") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  "))
    (tmp_path / "space.toml").write_text("\n".join(lines[start:end]) + "\n")
    cls = get_algorithm(algo)
    assert load_space_file(tmp_path / "space.toml", cls.Config, algo) == algorithm_space(cls)


def test_list_says_when_an_algorithm_declares_no_search_space(capsys):
    from ascent.cli import main

    assert main(["list", "trpo"]) == 0
    assert "search space: none declared; `ascent tune trpo` takes one with --space FILE.toml" in capsys.readouterr().out

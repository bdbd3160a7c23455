"""The run around an agent survives what people do to it: interrupting (SIGINT/SIGTERM write a
checkpoint), reusing a run directory, two writers, resume bookkeeping (CSV, TensorBoard, clock,
replay buffer), logging by env steps, filming every video_every steps, and the env the agent was trained on."""

import csv
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

import ascent
from ascent.core.checkpoint import load_checkpoint, save_checkpoint
from ascent.core.logger import read_csv
from ascent.core.run import RunDirectory
from ascent.errors import CheckpointError, ConfigError, EnvError, TrainingInterrupted

SMALL = dict(n_envs=2, n_steps=64, batch_size=64, n_epochs=2)
ASCENT = [sys.executable, "-m", "ascent.cli"]


def cli(*args, cwd=None, **kw):
    return subprocess.run([*ASCENT, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=dict(os.environ, MPLBACKEND="Agg"), **kw)


def steps_of(run_dir) -> list[int]:
    return [int(r["steps"]) for r in read_csv(run_dir / "metrics.csv")]


def long_training(run_dir, n_steps: int, rows: int) -> subprocess.Popen:
    """`ascent train ppo` of 2M steps (checkpoints only when asked) in the background, once its metrics
    have `rows` rows: the moment to interrupt it."""
    proc = subprocess.Popen([*ASCENT, "train", "ppo", "--env", "CartPole-v1", "--steps", "2000000", "--run-dir",
                             str(run_dir), "--no-progress", "--set", "n_envs=2", "--set", f"n_steps={n_steps}",
                             "--set", "batch_size=64", "--set", "checkpoint_every=0", "--set", "checkpoint_seconds=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, MPLBACKEND="Agg"))
    deadline = time.time() + 120
    while not ((run_dir / "metrics.csv").exists() and len(steps_of(run_dir)) >= rows) and time.time() < deadline:
        time.sleep(0.1)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_iteration_writes_a_checkpoint_and_says_so(tmp_path, sig):
    # checkpoint_every and checkpoint_seconds far away: the only checkpoint is the one the signal asks for
    run = tmp_path / "run"
    proc = long_training(run, n_steps=64, rows=3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"interrupted by {signal.Signals(sig).name}: saved" in err
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["num_steps"]
    assert f"at step {saved} of 2000000" in err and (run / "model.pt").exists()
    assert steps_of(run)[-1] <= saved  # nothing trained after the checkpoint: no step lost
    assert load_checkpoint(run / "model.pt")["num_steps"] == saved


def test_a_signal_without_a_run_directory_stops_cleanly_and_claims_nothing():
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, **SMALL)

    def press_ctrl_c(agent, metrics):  # (a callback runs after its iteration: the loop stops before the next)
        if agent.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # (Python's default; SIG_IGN where the suite runs in the background)
    with pytest.raises(TrainingInterrupted, match="no run directory, so nothing was written") as info:
        agent.learn(100_000, callbacks=press_ctrl_c)
    assert info.value.signal_number == signal.SIGINT and agent.num_steps == 2 * 128
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_checkpoints_by_wall_time(tmp_path):
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path / "run", checkpoint_every=0,
                       checkpoint_seconds=0.5, **SMALL)

    def stop_when_checkpointed(agent, metrics):
        time.sleep(0.3)
        return not (tmp_path / "run" / "checkpoints" / "last.pt").exists()

    agent.learn(100_000, callbacks=stop_when_checkpointed)
    assert agent.num_steps < 100_000 and agent.iteration <= 4  # the clock, not the step count, wrote it


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with run.locked():
        agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=run.path, **SMALL)
        with pytest.raises(CheckpointError, match=rf"being written by another run \(PID {os.getpid()}\)"):
            agent.learn(128)
    agent.learn(128)  # the lock is free again
    assert steps_of(run.path) == [128]


def test_a_fresh_agent_does_not_write_into_a_used_run_directory(tmp_path):
    ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path / "run", **SMALL).learn(128)
    before = (tmp_path / "run" / "metrics.csv").read_text()
    with pytest.raises(ConfigError, match=r"already holds a run \(it has a checkpoint: `ascent resume` continues it\)"):
        ascent.PPO("CartPole-v1", seed=1, verbose=0, run_dir=tmp_path / "run", **SMALL).learn(128)
    assert (tmp_path / "run" / "metrics.csv").read_text() == before  # nothing appended, nothing replaced
    RunDirectory(tmp_path / "run").clear()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    ascent.PPO("CartPole-v1", seed=1, verbose=0, run_dir=tmp_path / "run", **SMALL).learn(128)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # clear() removes only what a run writes


def test_cli_train_refuses_a_used_run_dir_unless_overwrite(tmp_path):
    rd = tmp_path / "run"
    rd.mkdir()
    (rd / "metrics.csv").write_text("steps,x\n1,2\n")  # a run that never checkpointed
    fast = ["--no-progress", "--set", "n_envs=2", "--set", "n_steps=64", "--set", "batch_size=64", "--eval-episodes", "1"]
    r = cli("train", "ppo", "--env", "CartPole-v1", "--steps", "128", "--run-dir", str(rd), *fast)
    assert r.returncode == 2 and "already holds a run; --overwrite starts over" in r.stderr
    r = cli("train", "ppo", "--env", "CartPole-v1", "--steps", "128", "--run-dir", str(rd), "--overwrite", *fast)
    assert r.returncode == 0, r.stderr
    assert steps_of(rd) == [128]
    (tmp_path / "file").write_text("")
    r = cli("train", "ppo", "--env", "CartPole-v1", "--steps", "128", "--run-dir", str(tmp_path / "file"), *fast)
    assert r.returncode == 2 and "is a file, not a directory" in r.stderr and "Traceback" not in r.stderr


def test_resume_keeps_the_csv_the_tensorboard_events_and_the_clock_continuous(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = dict(SMALL, checkpoint_every=256)
    rd = tmp_path / "cut"
    ascent.PPO("CartPole-v1", seed=1, verbose=0, run_dir=rd, **cfg).learn(
        1024, callbacks=lambda agent, m: agent.num_steps < 640)  # stopped after 640: checkpoint at 512
    wall_at_checkpoint = load_checkpoint(rd / "checkpoints" / "last.pt")["train_seconds"]
    resumed = ascent.PPO.resume(rd, progress_bar=False)
    assert resumed.num_steps == 1024
    rows = read_csv(rd / "metrics.csv")
    steps = [int(r["steps"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 1024
    walls = [float(r["wall_time"]) for r in rows]
    assert walls == sorted(walls) and walls[-1] > wall_at_checkpoint  # the clock is carried, not restarted
    acc = EventAccumulator(str(rd / "tb"))
    acc.Reload()
    tb_steps = [e.step for e in acc.Scalars("train/policy_loss")]
    assert tb_steps == sorted(set(tb_steps)), tb_steps  # no step shown twice


def test_resume_after_a_crash_redoes_the_rows_past_the_checkpoint(tmp_path):
    rd = tmp_path / "run"
    ascent.PPO("CartPole-v1", seed=1, verbose=0, run_dir=rd, **dict(SMALL, checkpoint_every=256)).learn(
        1024, callbacks=lambda agent, m: agent.num_steps < 384)  # the last checkpoint holds step 384 (the end)
    ckpt = load_checkpoint(rd / "checkpoints" / "last.pt")
    assert ckpt["num_steps"] == 384
    with open(rd / "metrics.csv", "a", newline="") as f:  # rows a crashed process wrote after its checkpoint
        csv.writer(f).writerow([512] + [""] * (len(read_csv(rd / "metrics.csv")[0]) - 1))
    ascent.PPO.resume(rd, progress_bar=False)
    steps = steps_of(rd)
    assert steps == sorted(set(steps)) and steps[-1] == 1024 and steps.count(512) == 1


def test_off_policy_resume_keeps_its_buffer_and_refuses_one_of_another_step(tmp_path):
    rd = tmp_path / "run"
    kw = dict(learning_starts=50, batch_size=16, net_arch=(16,), buffer_size=1000, checkpoint_every=100)
    ascent.SAC("Pendulum-v1", seed=0, verbose=0, run_dir=rd, **kw).learn(300, callbacks=lambda a, m: a.num_steps < 150)
    assert ascent.SACConfig().save_replay_buffer  # the default
    replay_file = rd / "checkpoints" / load_checkpoint(rd / "checkpoints" / "last.pt")["replay_file"]
    assert replay_file.name == "last.replay-150.pt" and load_checkpoint(replay_file)["num_steps"] == 150  # kept by default
    loaded = ascent.SAC.load(rd / "checkpoints" / "last.pt", verbose=0)
    assert len(loaded.replay) == 150
    other = load_checkpoint(replay_file)
    other["num_steps"] = 100  # a buffer file from another moment of the run
    save_checkpoint(replay_file, {k: v for k, v in other.items() if k not in ("format", "format_version")})
    with pytest.raises(CheckpointError, match="replay buffer of step 100, but .* is at step 150"):
        ascent.SAC.load(rd / "checkpoints" / "last.pt", verbose=0)
    replay_file.unlink()
    resumed_err = subprocess.run([sys.executable, "-c", f"import ascent; ascent.SAC.resume({str(rd)!r}, progress_bar=False)"],
                                 capture_output=True, text=True, timeout=300)
    assert resumed_err.returncode == 0, resumed_err.stderr
    assert "EMPTY replay buffer" in resumed_err.stderr  # said loudly


def test_rows_are_logged_by_env_steps_whatever_the_iteration_length(tmp_path):
    # RL-Zoo's DQN CartPole preset: an iteration is 256 env steps and log_interval counts 1000 of them;
    # rows must still come every log_every_steps (2000) env steps
    rd = tmp_path / "run"
    ascent.DQN("CartPole-v1", seed=0, verbose=0, run_dir=rd, gradient_steps=1, learning_starts=256).learn(8192)
    steps = steps_of(rd)
    assert len(steps) >= 3 and all(b - a <= 2000 + 256 for a, b in zip(steps, steps[1:])), steps


def test_video_every_films_an_evaluation_episode_into_the_run_directory(tmp_path):
    pytest.importorskip("moviepy")
    from moviepy import VideoFileClip

    rd = tmp_path / "run"
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=rd, video_every=300, **SMALL)  # 128 steps an iteration
    agent.learn(1024)
    folders = sorted(p.name for p in (rd / "videos").iterdir())
    assert folders == ["step-000000384", "step-000000640", "step-000001024"]  # the first iteration past each multiple
    length = agent.evaluate(1)["mean_length"]  # (the filmed episode: the same deterministic one, from the same seed)
    clip = VideoFileClip(str(rd / "videos" / "step-000001024" / "rl-video-episode-0.mp4"))
    assert [p.name for p in (rd / "videos" / "step-000001024").iterdir()] == ["rl-video-episode-0.mp4"]
    assert clip.fps == 50 and abs(clip.duration * clip.fps - (length + 1)) <= 1  # (the reset frame, then one a step)
    clip.close()


def test_an_env_that_cannot_be_filmed_is_refused_before_training(tmp_path):
    agent = ascent.get_algorithm("minimaxq")("soccer", seed=0, verbose=0, run_dir=tmp_path / "run", video_every=100)
    with pytest.raises(EnvError, match="soccer is not a Gymnasium env and is not filmed"):
        agent.learn(200)
    assert agent.num_steps == 0 and not (tmp_path / "run").exists()


def test_evaluation_and_loading_keep_the_users_wrappers(tmp_path):
    env = gym.wrappers.TimeLimit(gym.make("CartPole-v1"), max_episode_steps=20)
    agent = ascent.PPO(env, seed=0, verbose=0, n_envs=1, n_steps=64, batch_size=64, n_epochs=1)
    agent.learn(64)
    assert max(agent.evaluate(3)["lengths"]) <= 20
    agent.save(tmp_path / "m.pt")
    loaded = ascent.load(tmp_path / "m.pt", verbose=0)  # no env= needed: the checkpoint holds the spec
    assert max(loaded.evaluate(3)["lengths"]) <= 20


def test_a_replay_buffer_that_does_not_fit_in_memory_is_refused_before_allocation(monkeypatch):
    import ascent.buffers.replay as replay

    monkeypatch.setattr(replay, "available_memory", lambda: 2**30)  # 1 GiB
    with pytest.raises(ConfigError, match=r"needs 1\.4 GiB, but 1\.0 GiB of memory is available: lower buffer_size, "
                                          r"or set optimize_memory_usage=true"):
        ascent.SAC(lambda: ImageEnv(), verbose=0, buffer_size=60_000)


class ImageEnv(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)  # 12 KiB a frame, twice with next obs
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros((3, 64, 64), np.uint8), {}

    def step(self, action):
        return np.zeros((3, 64, 64), np.uint8), 0.0, False, False, {}


def test_custom_env_module_from_the_cli_trains_evaluates_and_resumes(tmp_path):
    (tmp_path / "corridor_envs.py").write_text(
        "import gymnasium as gym\nimport numpy as np\n\n\n"
        "class Corridor(gym.Env):\n"
        "    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)\n"
        "    action_space = gym.spaces.Discrete(2)\n\n"
        "    def reset(self, *, seed=None, options=None):\n"
        "        super().reset(seed=seed)\n        self.t = 0\n        return np.zeros(1, np.float32), {}\n\n"
        "    def step(self, action):\n"
        "        self.t += 1\n        return np.array([self.t / 10], np.float32), float(action), self.t >= 10, False, {}\n\n\n"
        "gym.register('Corridor-v0', entry_point=Corridor)\n")
    fast = ["--no-progress", "--set", "n_envs=2", "--set", "n_steps=64", "--set", "batch_size=64", "--eval-episodes", "2"]
    r = cli("train", "ppo", "--env", "corridor_envs:Corridor-v0", "--steps", "256", "--run-dir", "run", *fast, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("eval", "run", "--episodes", "2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("resume", "run", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("train", "ppo", "--env", "nowhere:Corridor-v0", "--steps", "256", cwd=tmp_path)
    assert r.returncode == 2 and "cannot import 'nowhere'" in r.stderr and "Traceback" not in r.stderr
    # trained through the API on the plain id its module registered: the run records module:id
    script = ("import corridor_envs, ascent; ascent.PPO('Corridor-v0', verbose=0, run_dir='api', n_envs=2, n_steps=64, "
              "batch_size=64).learn(128)")
    assert subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=300).returncode == 0
    assert '"env_id": "corridor_envs:Corridor-v0"' in (tmp_path / "api" / "config.json").read_text()
    r = cli("eval", "api", "--episodes", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, words", [
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "64", "--seed", "-1"], "seed must be a non-negative integer"),
    (["plot", "RUN", "--metric", "episode_retrun"], "a column 'episode_retrun' (did you mean: episode_return"),
    (["train", "ppo", "--env", "CartPole-v1", "--steps", "64", "--set", "batch_size=512", "--set", "n_envs=2",
      "--set", "n_steps=64"], "batch_size (512) is larger than a rollout (n_steps * n_envs = 128)"),
])
def test_more_mistakes_get_one_line(tmp_path, args, words):
    if "RUN" in args:
        ascent.PPO("CartPole-v1", seed=0, verbose=0, run_dir=tmp_path / "run", **SMALL).learn(128)
        args = [str(tmp_path / "run") if a == "RUN" else a for a in args]
    r = cli(*args, "--run-dir", str(tmp_path / "new")) if args[0] == "train" else cli(*args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_os_errors_are_one_line(tmp_path):
    import errno

    from ascent.cli import os_error_line

    assert os_error_line(OSError(errno.ENOSPC, "No space left on device", "/x/last.pt")).startswith("disk full while writing /x/last.pt")
    assert "pick a location you can write to" in os_error_line(OSError(errno.EROFS, "Read-only file system", "/ro/run"))
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    r = cli("train", "ppo", "--env", "CartPole-v1", "--steps", "64", "--run-dir", str(blocker / "run"), "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(blocker) in r.stderr, r.stderr


def test_the_kl_column_is_only_there_with_the_kl_penalty():
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, **SMALL)
    agent.start_episodes()
    assert "kl" not in agent.train_iteration() and "approx_kl" in agent.train_iteration()
    agent = ascent.PPO("CartPole-v1", seed=0, verbose=0, kl_penalty=True, **SMALL)
    agent.start_episodes()
    assert agent.train_iteration()["kl"] > 0


def test_a_preset_chosen_for_the_env_is_announced_and_none_opts_out(capsys):
    agent = ascent.PPO("CartPole-v1", seed=0)
    assert agent.preset is not None and f"preset '{agent.preset}' made for CartPole-v1" in capsys.readouterr().err
    plain = ascent.PPO("CartPole-v1", seed=0, preset="none")
    assert plain.preset is None and plain.config == ascent.PPOConfig() and capsys.readouterr().err == ""


def test_a_second_signal_stops_at_once_and_claims_nothing(tmp_path):
    run = tmp_path / "run"
    proc = long_training(run, n_steps=2048, rows=1)
    proc.send_signal(signal.SIGINT)  # (an iteration of 4,096 steps with 10 epochs: the second comes inside it)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped at once; checkpoints written before stay as they are" in err, err
    assert "Traceback" not in err and "saved" not in err.split("stopped at once")[-1]

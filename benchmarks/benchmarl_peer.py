"""BenchMARL's MAPPO on PettingZoo MPE simple_spread_v3: the peer run beside ascent's MAPPO.

Run with the peer venv (benchmarks/setup_benchmarl.sh):

    .venv-benchmarl/bin/python benchmarks/benchmarl_peer.py --frames 60000 --seed 0 --eval-every 30000

Configuration: BenchMARL 1.5.2's own yaml defaults (`conf/experiment/base_experiment.yaml`,
`conf/algorithm/mappo.yaml`, `conf/model/layers/mlp.yaml` for actor and critic). BenchMARL ships tuned
configs only for VMAS, SMACv2 and MeltingPot (`fine_tuned/` in its repository), none for PettingZoo/MPE,
so the base defaults are the MPE defaults. Changed from them, and only these:
- task `simple_spread` (`conf/task/pettingzoo/simple_spread.yaml`: N=3, local_ratio=0.5) with
  max_cycles 25 instead of its 100, to match simple_spread_v3's own default and ascent's episodes;
- discrete actions: BenchMARL has no per-task `continuous_actions` key; it picks continuous whenever
  task and algorithm allow both (`prefer_continuous_actions: True`), so that is set to False. Discrete
  is MPE's own default and what ascent's MAPPO uses;
- `max_n_frames` = --frames, `evaluation_interval` = --eval-every (default: BenchMARL's 120_000);
- no wandb (loggers: csv only), `create_json` off, no checkpoints (BenchMARL's default already),
  `render` off (no evaluation video), save folder in a temp dir (or --log-dir), never the repo;
- `sampling_device`/`train_device` cpu (already BenchMARL's default).
Kept at BenchMARL's defaults: 6000 env frames collected per iteration from 10 envs (600 steps each,
run one after another in a SerialEnv: PettingZoo envs are not vectorised), 45 passes (epochs) over each
batch in minibatches of 400 frames (6000/400 = 15 minibatches → 675 Adam steps per iteration),
lr 5e-5 (Adam eps 1e-6, grad-norm clip 5), gamma 0.99, GAE lambda 0.9, clip 0.2, entropy coef 0,
critic coef 1 (l2), no advantage normalisation, shared actor and shared critic parameters, MLP
[256, 256] Tanh for both; the critic reads the global state (simple_spread has one: the three agents'
observations concatenated, 54 numbers). Evaluation: 10 episodes, deterministic actions (argmax of the
categorical policy), run on one env; BenchMARL also evaluates after the first iteration (6000 frames),
so the curve starts there. Left as BenchMARL does it: each of the 10 training envs and the evaluation
env is built with the same seed (`PettingZooClass.get_env_fun` passes `seed` to every PettingZooEnv, which
seeds its first reset with it), so the 10 training envs start every episode from the same layout.

"Frames" are environment steps (one step moves all 3 agents), as BenchMARL counts them
(`batch.numel()` of the [envs, steps] batch).

Return reported: per agent, EPyMARL's convention = the sum of all agents' rewards over the episode
divided by the number of agents. BenchMARL's `eval/reward/episode_reward_mean` (benchmarl/experiment/
logger.py, `Logger.log_evaluation`) is, per evaluation episode, `reward[group].sum(time).mean(agents)`
averaged over groups, then averaged over episodes. simple_spread has one group ("agent", all 3 agents),
so it is exactly the per-agent return; this script computes it from the evaluation rollouts in a
`Callback.on_evaluation_end` and checks it against BenchMARL's CSV log. (Each MPE agent's reward is
0.5 * shared landmark-distance term + 0.5 * its own collision penalty, so agents' returns differ.)

Timing: `setup_s` is building the Experiment (envs, networks, collector, logger), imports excluded;
`train_s` is `Experiment.run()`, i.e. collection + updates + the evaluations BenchMARL runs inside
its loop; `eval_s` is the part of it spent in evaluation (BenchMARL's own timers); `frames_per_s` is
frames / train_s.

Threads: torch runs on --threads intra-op threads (default 1), and the script keeps torchrl from raising
that count when the collector closes its SerialEnv (which it does once the last batch is in, before
that batch's update). With torch's default of 2 threads on this shared 2-core machine, OpenMP
spin-waiting made each update step 3-7x slower (measured: 675 steps took 28 s at 1 thread, 100-300 s
at 2 threads under other load).

Output: one JSON object on the last stdout line (and in --out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame prints a banner on stdout
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # MPE calls pygame.init(); no sound or display here
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
# torchrl tries every PettingZoo family (atari, sisl, ...) before MPE; those not installed only warn
warnings.filterwarnings("ignore", message=".*(failed to load|Creating .*WeightUpdater|SyncDataCollector has been).*")

_t_import = time.perf_counter()
import torch  # noqa: E402
import torchrl  # noqa: E402
from benchmarl import __version__ as benchmarl_version  # noqa: E402
from benchmarl.algorithms import MappoConfig  # noqa: E402
from benchmarl.environments import PettingZooTask  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.experiment.callback import Callback  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402

IMPORT_S = time.perf_counter() - _t_import


class EvalCurve(Callback):
    """Records [frames, mean per-agent return] after each BenchMARL evaluation."""

    def __init__(self):
        super().__init__()
        self.curve: list[list[float]] = []

    def on_evaluation_end(self, rollouts):
        returns = []
        for td in rollouts:  # one episode each, (T,) batch; the logger has already cut it at the first done
            done = td.get(("next", "done")).reshape(-1)  # (T,)
            end = int(done.nonzero()[0, 0]) + 1 if done.any() else done.numel()
            reward = td.get(("next", "agent", "reward"))[:end]  # (T, n_agents, 1)
            returns.append(reward.sum().item() / reward.shape[-2])
        self.curve.append([int(self.experiment.total_frames), sum(returns) / len(returns)])


def read_csv_scalar(scalars_dir: Path, name: str) -> list[float]:
    """Values of one scalar from torchrl's CSVLogger (`<name>.csv`, lines `step,value`)."""
    path = scalars_dir / f"{name}.csv"
    if not path.exists():
        return []
    return [float(line.split(",")[1]) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, required=True, help="env frames to train (max_n_frames)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=None,
                        help="frames between evaluations (evaluation_interval; default BenchMARL's 120000); "
                             "must be a multiple of the 6000 frames collected per iteration")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep BenchMARL's experiment folder (CSV logs) here; default: a temp dir, removed")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1; see the module docstring)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # torchrl noted torch's thread count at import and, when a SerialEnv closes (the collector closes
    # it once the last batch is in, before that batch's update), raises the count back towards it.
    torchrl._THREAD_POOL_INIT = args.threads

    task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()  # N=3, local_ratio=0.5, max_cycles=100
    task.config["max_cycles"] = 25

    algorithm_config = MappoConfig.get_from_yaml()
    model_config = MlpConfig.get_from_yaml()
    critic_model_config = MlpConfig.get_from_yaml()

    config = ExperimentConfig.get_from_yaml()
    config.sampling_device = "cpu"
    config.train_device = "cpu"
    config.buffer_device = "cpu"
    config.prefer_continuous_actions = False
    config.max_n_frames = args.frames
    if args.eval_every is not None:
        config.evaluation_interval = args.eval_every
    config.evaluation_episodes = 10
    config.evaluation_deterministic_actions = True
    config.render = False
    config.loggers = ["csv"]
    config.create_json = False
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False

    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        save_root = args.log_dir
    else:
        save_root = Path(tempfile.mkdtemp(prefix="benchmarl_peer_"))
    config.save_folder = str(save_root)

    try:
        curve = EvalCurve()
        t0 = time.perf_counter()
        experiment = Experiment(task=task, algorithm_config=algorithm_config, model_config=model_config,
                                critic_model_config=critic_model_config, seed=args.seed, config=config,
                                callbacks=[curve])
        setup_s = time.perf_counter() - t0
        assert not experiment.continuous_actions
        torch_threads = torch.get_num_threads()

        t0 = time.perf_counter()
        experiment.run()
        train_s = time.perf_counter() - t0

        scalars = Path(experiment.folder_name) / experiment.name / "scalars"
        logged_returns = read_csv_scalar(scalars, "eval_reward_episode_reward_mean")
        eval_s = sum(read_csv_scalar(scalars, "timers_evaluation_time"))
        # BenchMARL's own number is the per-agent return here (one group); check our reading of it
        if len(logged_returns) == len(curve.curve):
            for (_, ours), theirs in zip(curve.curve, logged_returns):
                assert abs(ours - theirs) < 1e-3 * max(1.0, abs(theirs)), (ours, theirs)
        else:
            print(f"warning: {len(logged_returns)} logged evaluations vs {len(curve.curve)} seen by the callback",
                  file=sys.stderr)
    finally:
        if args.log_dir is None:
            shutil.rmtree(save_root, ignore_errors=True)

    frames = int(experiment.total_frames)
    result = {
        "library": "benchmarl",
        "version": benchmarl_version,
        "algorithm": "mappo",
        "task": "simple_spread_v3",
        "seed": args.seed,
        "frames": frames,
        "setup_s": round(setup_s, 3),
        "train_s": round(train_s, 3),
        "frames_per_s": round(frames / train_s, 1),
        "curve": [[f, round(r, 4)] for f, r in curve.curve],
        "final_return": round(curve.curve[-1][1], 4) if curve.curve else None,
        "eval_s": round(eval_s, 3),
        "import_s": round(IMPORT_S, 3),
        "torch_threads": torch_threads,
        "frames_per_batch": config.on_policy_collected_frames_per_batch,
    }
    line = json.dumps(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

"""The peer side of ascent's imitation-learning benchmark: HumanCompatibleAI's `imitation` 1.0.1.

Runs INSIDE the separate virtual environment made by ``benchmarks/setup_imitation.sh``
(``.venv-imitation``: imitation 1.0.1, stable-baselines3 2.2.1, gymnasium 0.29.1, torch 2.13.0 CPU),
never in ascent's own venv, and imports nothing from ascent::

    bash benchmarks/setup_imitation.sh
    .venv-imitation/bin/python benchmarks/imitation_peer.py --algo bc   --env CartPole-v1 --dataset /tmp/ds --seed 0 --json
    .venv-imitation/bin/python benchmarks/imitation_peer.py --algo gail --env CartPole-v1 --dataset /tmp/ds --seed 0 --steps 300000

What it does, in order:

1. Reads the expert episodes that ``ascent collect`` wrote as a Minari dataset at ``--dataset``
   (``PATH/data/main_data.hdf5``), straight from the HDF5 file with h5py: Minari 0.5 needs
   gymnasium>=1.0, which imitation 1.0.1 (gymnasium~=0.29) refuses. Each group ``episode_<i>`` holds
   ``observations`` (T+1, obs_dim), ``actions`` (T,) for Discrete or (T, act_dim) for Box,
   ``rewards``, ``terminations`` and ``truncations`` (T,). Only flat Box observations are supported.
2. Turns each episode into an ``imitation.data.types.TrajectoryWithRew`` (obs T+1, acts T, rews T,
   infos None). ``terminal`` follows imitation's own rollout collector, which marks an episode
   terminal whenever the VecEnv reported done, i.e. terminated OR truncated (SB3's done): so
   terminal=True when the episode's last step is terminated or truncated, False only for an episode
   cut off mid-way (which ``ascent collect`` does not write).
3. Trains, with torch.set_num_threads(1) (the comparison runs on a 2-core machine; run ascent's
   side with one torch thread too) and every env stepped in-process:

   * ``--algo bc``: ``imitation.algorithms.bc.BC`` with its default policy (``FeedForward32Policy``:
     a 32x32 tanh ActorCriticPolicy) and the hyperparameters of imitation's own benchmark CLI
     (``python -m imitation.scripts.train_imitation bc``, ingredient ``scripts/ingredients/bc.py``):
     batch_size 32, Adam lr 4e-4, l2_weight 3e-5, ent_weight 1e-3 (BC's default), and, when neither
     n_epochs nor n_batches is given, ``n_batches=50_000`` (that script's default). ``--steps`` is
     the number of gradient steps (n_batches); ``--epochs`` gives n_epochs instead. BC takes no env
     steps.
   * ``--algo gail``: ``imitation.algorithms.adversarial.gail.GAIL`` with the setup of imitation's
     benchmark CLI (``python -m imitation.scripts.train_adversarial gail with cartpole|pendulum``):
     8 envs (``imitation.util.util.make_vec_env`` + RolloutInfoWrapper), an SB3 PPO generator with
     ``FeedForward32Policy``, n_steps = 2048 / 8 = 256, batch_size 64, n_epochs 10, lr 3e-4,
     ent_coef 0 (scripts/ingredients/rl.py); reward net ``BasicRewardNet`` with
     ``normalize_input_layer=RunningNorm``, wrapped in ``NormalizedRewardNet(RunningNorm)``
     (scripts/ingredients/reward.py); demo_batch_size 1024, n_disc_updates_per_round 4,
     gen_replay_buffer_capacity = 2048 (= the PPO rollout size, i.e. no replay);
     ``allow_variable_horizon=True`` for CartPole-v1 (as in their ``cartpole`` named config: its
     episodes end early). ``--steps`` env steps (default 300_000 CartPole-v1, 1_000_000 Pendulum-v1).
     Deviations from that CLI: (a) ``parallel=False`` (DummyVecEnv) instead of SubprocVecEnv, since
     8 subprocesses on 2 cores would measure the scheduler; (b) for Pendulum-v1 the PPO generator uses
     imitation's tuned Pendulum PPO hyperparameters from ``scripts/config/train_rl.py``
     (rollout 4096 -> n_steps 512, gamma 0.9, lr 1e-3; gen_replay_buffer_capacity 4096 to match),
     because SB3's PPO defaults do not learn Pendulum; their ``train_adversarial`` ``pendulum`` config
     sets only the env id.
4. Evaluates the trained policy (BC's policy, or GAIL's PPO generator) over 50 episodes,
   deterministic actions, on a fresh single env seeded from ``--seed``, with SB3's
   ``evaluate_policy`` on the true env reward.
5. Prints ``library, version, algo, env, seed, mean_return, std_return, train_seconds (wall time of
   training only, not of data loading, setup or evaluation), total_seconds (whole run from process
   start)`` plus a few descriptive extras (expert episodes/transitions/return; for GAIL the env
   steps actually taken, which imitation rounds down to whole 2048-step PPO rollouts, and env steps
   per second of training). With ``--json``, stdout is exactly one JSON line with those keys:
   imitation's logger, SB3's and tqdm's progress bars are silenced unless ``--verbose`` (which
   prints imitation's training stats to stdout before the result).

Note on CartPole-v1 GAIL: with ``allow_variable_horizon=True`` imitation itself warns that
variable-horizon episodes leak information about the reward through the termination and can give
spuriously high returns (a learned reward that stays above its mean acts as a survival bonus on
CartPole). GAIL reached 500 on CartPole-v1 within ~50k env steps here; that is imitation's behaviour
under its own ``cartpole`` config, not a bug of this script.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

T_START = time.perf_counter()
if "--verbose" not in sys.argv:
    os.environ.setdefault("TQDM_DISABLE", "1")  # GAIL's per-round progress bar (tqdm >= 4.66 honours it)

import warnings  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

# imitation 1.0.1's BC logs float(loss) of a tensor that still requires grad: harmless, noisy.
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")

DEFAULT_GAIL_STEPS = {"CartPole-v1": 300_000, "Pendulum-v1": 1_000_000}
DEFAULT_BC_BATCHES = 50_000  # imitation.scripts.train_imitation's default when neither n_epochs nor n_batches is set
N_EVAL_EPISODES = 50


def load_trajectories(path: str):
    """Read every episode of the Minari dataset at `path` as a list of imitation TrajectoryWithRew."""
    from imitation.data.types import TrajectoryWithRew

    h5 = os.path.join(path, "data", "main_data.hdf5")
    if not os.path.isfile(h5):
        raise SystemExit(f"no Minari dataset at {path}: {h5} does not exist")
    trajs = []
    with h5py.File(h5, "r") as f:
        names = sorted((k for k in f.keys() if k.startswith("episode_")), key=lambda k: int(k.split("_", 1)[1]))
        if not names:
            raise SystemExit(f"{h5} holds no episode_<i> groups")
        for name in names:
            ep = f[name]
            if not isinstance(ep["observations"], h5py.Dataset):
                raise SystemExit(f"{name}: dict observations are not supported by this peer script")
            obs = np.asarray(ep["observations"][()], dtype=np.float32)
            acts = np.asarray(ep["actions"][()])
            rews = np.asarray(ep["rewards"][()], dtype=np.float32)
            term = np.asarray(ep["terminations"][()], dtype=bool)
            trunc = np.asarray(ep["truncations"][()], dtype=bool)
            T = len(acts)
            if obs.shape[0] != T + 1 or len(rews) != T:
                raise SystemExit(f"{name}: expected T+1 observations and T rewards for T={T} actions, got {obs.shape[0]} and {len(rews)}")
            acts = acts.astype(np.int64) if np.issubdtype(acts.dtype, np.integer) else acts.astype(np.float32)
            # imitation's rollout collector marks a trajectory terminal whenever SB3's VecEnv reported
            # done (= terminated or truncated); same here.
            terminal = bool(T > 0 and (term[-1] or trunc[-1]))
            trajs.append(TrajectoryWithRew(obs=obs, acts=acts, infos=None, terminal=terminal, rews=rews))
    return trajs


def make_logger(verbose: bool, folder: str):
    from imitation.util import logger as imit_logger

    return imit_logger.configure(folder=folder, format_strs=["stdout"] if verbose else [])


def train_bc(args, trajs, rng, logdir):
    """imitation BC with the default policy and imitation's benchmark-CLI hyperparameters; returns (policy, train_seconds, extra result fields)."""
    import gymnasium as gym
    from imitation.algorithms import bc

    env = gym.make(args.env)
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    trainer = bc.BC(
        observation_space=obs_space,
        action_space=act_space,
        demonstrations=trajs,
        rng=rng,
        batch_size=32,
        optimizer_kwargs=dict(lr=4e-4),
        l2_weight=3e-5,
        device="cpu",
        custom_logger=make_logger(args.verbose, logdir),
    )
    if args.epochs is not None:
        kw = dict(n_epochs=args.epochs)
    else:
        kw = dict(n_batches=args.steps or DEFAULT_BC_BATCHES)
    t0 = time.perf_counter()
    trainer.train(**kw, log_interval=500, progress_bar=False)
    return trainer.policy, time.perf_counter() - t0, kw


def train_gail(args, trajs, rng, logdir):
    """imitation GAIL with an SB3 PPO generator and BasicRewardNet+RunningNorm; returns (policy, train_seconds, extra result fields)."""
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.policies.base import FeedForward32Policy
    from imitation.rewards.reward_nets import BasicRewardNet, NormalizedRewardNet
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    n_envs = 8
    venv = make_vec_env(args.env, rng=rng, n_envs=n_envs, parallel=False,
                        post_wrappers=[lambda env, _: RolloutInfoWrapper(env)])
    # scripts/ingredients/rl.py defaults (SB3 PPO defaults apart from ent_coef=0 and the rollout size)
    rollout = 2048
    ppo_kwargs = dict(learning_rate=3e-4, batch_size=64, n_epochs=10, ent_coef=0.0)
    if args.env == "Pendulum-v1":  # imitation's tuned Pendulum PPO (scripts/config/train_rl.py)
        rollout = 4096
        ppo_kwargs.update(gamma=0.9, learning_rate=1e-3)
    learner = PPO(policy=FeedForward32Policy, env=venv, n_steps=rollout // n_envs, seed=args.seed, verbose=0,
                  device="cpu", **ppo_kwargs)
    reward_net = NormalizedRewardNet(
        BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm),
        RunningNorm,
    )
    trainer = GAIL(
        demonstrations=trajs,
        demo_batch_size=1024,
        gen_replay_buffer_capacity=rollout,
        n_disc_updates_per_round=4,
        venv=venv,
        gen_algo=learner,
        reward_net=reward_net,
        allow_variable_horizon=(args.env == "CartPole-v1"),
        custom_logger=make_logger(args.verbose, logdir),
    )
    steps = args.steps or DEFAULT_GAIL_STEPS[args.env]
    t0 = time.perf_counter()
    trainer.train(steps)
    dt = time.perf_counter() - t0
    venv.close()
    taken = int(learner.num_timesteps)  # = (steps // 2048 or 4096) whole PPO rollouts
    return learner.policy, dt, dict(total_timesteps=steps, env_steps=taken, env_steps_per_second=round(taken / dt, 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=["bc", "gail"], required=True)
    p.add_argument("--env", choices=["CartPole-v1", "Pendulum-v1"], required=True)
    p.add_argument("--dataset", required=True, help="Minari dataset directory written by `ascent collect`")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None,
                   help="bc: gradient steps (n_batches, default 50000); gail: env steps (default 300000 CartPole-v1, 1000000 Pendulum-v1)")
    p.add_argument("--epochs", type=int, default=None, help="bc only: train n_epochs passes over the data instead of --steps batches")
    p.add_argument("--eval-episodes", type=int, default=N_EVAL_EPISODES)
    p.add_argument("--json", action="store_true", help="print exactly one JSON line with the result")
    p.add_argument("--verbose", action="store_true", help="let imitation/SB3 log their training stats to stdout")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    import imitation
    from imitation.util.util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    trajs = load_trajectories(args.dataset)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="imitation_peer_") as logdir:
        if args.algo == "bc":
            policy, train_s, extra = train_bc(args, trajs, rng, logdir)
        else:
            policy, train_s, extra = train_gail(args, trajs, rng, logdir)

    eval_env = make_vec_env(args.env, rng=np.random.default_rng(args.seed + 10_000), n_envs=1, parallel=False)
    returns, _ = evaluate_policy(policy, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True,
                                 return_episode_rewards=True)
    eval_env.close()
    result = {
        "library": "imitation",
        "version": imitation.__version__,
        "algo": args.algo,
        "env": args.env,
        "seed": args.seed,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "train_seconds": round(train_s, 3),
        "total_seconds": round(time.perf_counter() - T_START, 3),
        "expert_episodes": len(trajs),
        "expert_transitions": int(sum(len(t.acts) for t in trajs)),
        "expert_mean_return": float(np.mean([t.rews.sum() for t in trajs])),
        "eval_episodes": args.eval_episodes,
        **extra,
    }
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(f"imitation {result['version']} {args.algo} on {args.env} (seed {args.seed}): "
              f"{result['mean_return']:.2f} +- {result['std_return']:.2f} over {args.eval_episodes} episodes; "
              f"train {result['train_seconds']:.1f} s, total {result['total_seconds']:.1f} s "
              f"({result['expert_episodes']} expert episodes, {result['expert_transitions']} transitions, "
              f"expert return {result['expert_mean_return']:.2f})")
        for k, v in extra.items():
            print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

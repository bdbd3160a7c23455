"""Imitation learning measured on this machine: BC, DAgger, GAIL, AIRL, BC-initialized RL, and the
`imitation` library side by side. Prints markdown tables.

  python benchmarks/imitation_bench.py experts              # train (or reuse) the experts, record their datasets
  python benchmarks/imitation_bench.py bc [--seeds 3]       # BC CartPole (10 episodes), HalfCheetah (25), Pendulum (10)
  python benchmarks/imitation_bench.py dagger [--seeds 3]   # DAgger from 1 episode; DAgger vs BC at equal expert labels
  python benchmarks/imitation_bench.py gail [--seeds 3]     # GAIL CartPole <= 300k, Pendulum <= 1M; the random-expert control
  python benchmarks/imitation_bench.py airl [--seeds 3]     # AIRL CartPole, then a fresh PPO on its reward alone
  python benchmarks/imitation_bench.py init [--seeds 3]     # PPO / SAC from a BC policy vs from scratch
  python benchmarks/imitation_bench.py peer [--seeds 3]     # BC and GAIL against `imitation` 1.0.1 (makes its venv first)

Experts are ascent's own, trained here and cached under runs/imitation-bench (delete it to retrain):
PPO CartPole-v1 (its preset, 60k steps), SAC Pendulum-v1 (its preset, 20k steps), TD3 HalfCheetah-v5
(its preset, 100k steps; `--halfcheetah-run DIR` reuses a run). Their datasets are recorded with
`ascent collect --deterministic` (episode i reset with seed 1000 + i). Scores are the mean return of
50 deterministic evaluation episodes; normalized as the `imitation` library does:
(score - random) / (expert - random), random being uniform actions over 50 episodes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tables import table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "imitation-bench"
PEER_PYTHON = ROOT / ".venv-imitation" / "bin" / "python"
EVAL_EPISODES = 50

EXPERTS = {  # name: (algo, env, steps)
    "cartpole": ("ppo", "CartPole-v1", 60_000),
    "pendulum": ("sac", "Pendulum-v1", 20_000),
    "halfcheetah": ("td3", "HalfCheetah-v5", 100_000),
    "cartpole-weak": ("ppo", "CartPole-v1", 6_144),  # (a weak demonstrator: deterministic return ~175)
}


def expert_run(name: str, reuse: dict[str, str]) -> Path:
    """The expert's run directory, trained here once (the command is in its config.json)."""
    if name in reuse:
        return Path(reuse[name])
    run = CACHE / f"expert-{name}"
    if not (run / "model.pt").exists():
        algo, env, steps = EXPERTS[name]
        subprocess.run([sys.executable, "-m", "ascent.cli", "train", algo, "--env", env, "--steps", str(steps),
                        "--run-dir", str(run), "--no-progress", "--overwrite", "--set", "torch_threads=1"], check=True)
    return run


def dataset(name: str, episodes: int, reuse: dict[str, str]) -> str:
    """`episodes` deterministic episodes of the expert, as a Minari dataset (recorded once)."""
    from ascent.imitation.datasets import collect

    out = CACHE / f"demos-{name}-{episodes}"
    if not (out / "data" / "metadata.json").exists():
        collect(expert_run(name, reuse), episodes, out, deterministic=True, seed=1000)
    return str(out)


def scores(name: str, reuse: dict[str, str]) -> tuple[float, float]:
    """(random, expert) mean returns over 50 episodes, for normalizing (cached)."""
    path = CACHE / f"scores-{name}.json"
    if path.exists():
        s = json.loads(path.read_text())
        return s["random"], s["expert"]
    from ascent.core.agent import load_agent
    from ascent.imitation.datasets import record_episodes

    env_id = EXPERTS[name][1]
    env = gym.make(env_id)
    env.action_space.seed(0)
    rand = record_episodes(lambda obs: np.stack([env.action_space.sample() for _ in obs]), env, EVAL_EPISODES, 5000)
    expert = load_agent(expert_run(name, reuse) / "model.pt").evaluate(EVAL_EPISODES, seed=5000)["mean_return"]
    s = {"random": float(np.mean([e["rewards"].sum() for e in rand])), "expert": float(expert)}
    path.write_text(json.dumps(s))
    return s["random"], s["expert"]


def normalized(score: float, random: float, expert: float) -> float:
    return (score - random) / (expert - random)


def evaluate(agent) -> float:
    return agent.evaluate(EVAL_EPISODES, seed=5000)["mean_return"]


def first_step(rows: list[tuple[int, float]], target: float) -> int | None:
    """The first env step at which an evaluation reached the target."""
    return next((s for s, v in rows if v >= target), None)


def lowest_after(rows: list[tuple[int, float]], target: float) -> float | None:
    """The lowest evaluation from the first one at the target on (how well a run holds it)."""
    step = first_step(rows, target)
    return None if step is None else min(v for s, v in rows if s >= step)


def eval_rows(agent) -> list[tuple[int, float]]:
    """(steps, eval_return) of a run's periodic evaluations, from its metrics.csv."""
    from ascent.core.logger import read_csv

    return [(int(r["steps"]), float(r["eval_return"])) for r in read_csv(agent.run.metrics) if r.get("eval_return")]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


# ---- sections ----------------------------------------------------------------------------------------------
def cmd_experts(args, reuse):
    rows = []
    for name in args.only.split(",") if args.only else EXPERTS:
        rand, expert = scores(name, reuse)
        for n in (1, 10, 25):
            dataset(name, n, reuse)
        rows.append([name, EXPERTS[name][0], EXPERTS[name][1], EXPERTS[name][2], f"{expert:.1f}", f"{rand:.1f}",
                     expert_run(name, reuse)])
    table("Experts (50 deterministic episodes) and the random baseline", ["expert", "algo", "env", "steps", "expert return",
          "random return", "run"], rows)


def run_bc(name: str, episodes: int, seed: int, reuse, steps: int = 20_000, **hp):
    """BC on the expert's first `episodes` episodes (of the smallest recorded dataset that has them)."""
    from ascent.imitation.bc import BC

    pool = next(n for n in (1, 10, 25) if n >= episodes)
    agent = BC(EXPERTS[name][1], seed=seed, verbose=0, dataset=dataset(name, pool, reuse), n_episodes=episodes,
               eval_every=0, **hp)
    return agent.learn(steps, progress_bar=False)


def cmd_bc(args, reuse):
    rows = []
    for name, episodes, target, hp in (("cartpole", 10, "≥ 475", {}), ("pendulum", 10, "—", {}),
                                       ("halfcheetah", 25, "≥ 0.9 normalized", {})):
        rand, expert = scores(name, reuse)
        results = []
        for seed in range(args.seeds):
            agent = run_bc(name, episodes, seed, reuse, **hp)
            results.append((evaluate(agent), agent.num_steps, agent.train_seconds))
        ret = [r[0] for r in results]
        rows.append([EXPERTS[name][1], episodes, " / ".join(f"{r:.1f}" for r in ret), f"{median(ret):.1f}",
                     f"{normalized(median(ret), rand, expert):.3f}", f"{expert:.1f}", target,
                     f"{median([r[1] for r in results]):.0f}", f"{median([r[2] for r in results]):.1f}"])
    table(f"BC ({args.seeds} seeds; gradient steps until early stopping, at most 20k)",
          ["env", "expert episodes", "return per seed", "median", "normalized", "expert", "target", "gradient steps",
           "train s"], rows)


def cmd_dagger(args, reuse):
    from ascent.imitation.dagger import DAgger

    rounds_needed, rows = [], []
    for seed in range(args.seeds):  # 1. CartPole from one expert episode: rounds until 495
        agent = DAgger("CartPole-v1", seed=seed, verbose=0, expert=str(expert_run("cartpole", reuse)),
                       dataset=dataset("cartpole", 1, reuse), n_episodes=1, eval_every=0)
        seen = []
        agent.learn(10 * agent.config.round_steps, callbacks=lambda a, m: (seen.append(evaluate(a)), seen[-1] < 495)[1],
                    progress_bar=False)
        rounds_needed.append(len(seen) if seen[-1] >= 495 else None)
        rows.append([seed, " / ".join(f"{v:.0f}" for v in seen), fmt(rounds_needed[-1], "d"), f"{agent.train_seconds:.1f}"])
    table("DAgger on CartPole-v1 from 1 expert episode (eval after each round of 1000 steps; target ≥ 495 within 5)",
          ["seed", "eval return after each round", "rounds to ≥ 495", "train s"], rows)
    # 2. Equal expert labels, DAgger vs BC: BC on k expert episodes; DAgger on 1 episode and k - 1 rounds of
    #    one episode's worth of steps each (every visited state labelled), the same k episodes' worth of labels.
    for name in ("pendulum", "halfcheetah"):
        rand, expert = scores(name, reuse)
        length = 200 if name == "pendulum" else 1000
        rows = []
        for k in (1, 2, 4, 8):
            bc, dag = [], []
            for seed in range(args.seeds):
                bc.append(evaluate(run_bc(name, k, seed, reuse, validation_fraction=0.0, steps=10_000)))
                agent = DAgger(EXPERTS[name][1], seed=seed, verbose=0, expert=str(expert_run(name, reuse)),
                               dataset=dataset(name, 1, reuse), n_episodes=1, round_steps=length, train_steps=2000,
                               initial_train_steps=2000, eval_every=0)
                if k > 1:
                    agent.learn((k - 1) * length, progress_bar=False)
                dag.append(evaluate(agent))
            rows.append([k * length, f"{normalized(median(bc), rand, expert):.3f}",
                         f"{normalized(median(dag), rand, expert):.3f}", f"{median(bc):.1f}", f"{median(dag):.1f}"])
        table(f"DAgger vs BC on {EXPERTS[name][1]} at equal expert labels (medians of {args.seeds} seeds, normalized)",
              ["expert labels", "BC", "DAgger", "BC return", "DAgger return"], rows)


def run_adversarial(algo: str, env: str, data: str, steps: int, seed: int, run_dir: Path, **hp):
    import shutil

    from ascent.registry import get_algorithm

    shutil.rmtree(run_dir, ignore_errors=True)  # (a run of an earlier invocation: measured again)

    agent = get_algorithm(algo)(env, seed=seed, verbose=0, run_dir=run_dir, dataset=data, eval_every=steps // 30,
                                eval_episodes=10, checkpoint_every=0, **hp)
    return agent.learn(steps, progress_bar=False)


def cmd_gail(args, reuse):
    rows = LiveRows()
    for name, steps, target in (("cartpole", 300_000, 475.0), ("pendulum", 1_000_000, -250.0)):
        if args.only and name not in args.only.split(","):
            continue
        rand, expert = scores(name, reuse)
        for seed in range(args.first_seed, args.seeds):
            run = CACHE / f"gail-{name}-s{seed}"
            agent = run_adversarial("gail", EXPERTS[name][1], dataset(name, 10, reuse), steps, seed, run)  # (its preset)
            final = evaluate(agent)
            rows.append([EXPERTS[name][1], seed, fmt(first_step(eval_rows(agent), target), "d"), f"{final:.1f}",
                         f"{normalized(final, rand, expert):.3f}", f"{agent.train_seconds:.0f}"])
    rand, expert = scores("cartpole", reuse)
    for seed in range(args.seeds if not args.only or "control" in args.only else 0):  # the "expert" is random
        path = CACHE / "demos-random-cartpole"
        if not (path / "data").exists():
            from ascent.imitation.datasets import collect

            collect(None, 10, path, policy="random", env="CartPole-v1", seed=1000)
        for absorbing in (True, False):
            agent = run_adversarial("gail", "CartPole-v1", str(path), 300_000, seed,
                                    CACHE / f"gail-control-{absorbing}-s{seed}", absorbing=absorbing)
            rows.append([f"CartPole-v1, random expert{'' if absorbing else ', no absorbing states'}", seed, "—",
                         f"{evaluate(agent):.1f}", "—", f"{agent.train_seconds:.0f}"])
    table("GAIL (10 expert episodes; PPO generator with its preset; eval every 1/30 of the budget, 10 episodes)",
          ["env", "seed", "steps to target", "final return (50 ep.)", "normalized", "train s"], rows)


def cmd_airl(args, reuse):
    rand, expert = scores("cartpole", reuse)
    rows = LiveRows()
    for seed in range(args.seeds):
        run = CACHE / f"airl-cartpole-s{seed}"
        airl = run_adversarial("airl", "CartPole-v1", dataset("cartpole", 10, reuse), 150_000, seed, run)
        fresh = run_adversarial("airl", "CartPole-v1", "", 100_000, seed + 100, CACHE / f"airl-transfer-s{seed}",
                                reward_from=str(run))
        r_airl, r_fresh = evaluate(airl), evaluate(fresh)
        rows.append([seed, f"{r_airl:.1f}", f"{r_fresh:.1f}", f"{normalized(r_fresh, rand, expert):.3f}",
                     f"{airl.train_seconds:.0f} + {fresh.train_seconds:.0f}"])
    table("AIRL CartPole-v1 (10 expert episodes, 150k steps), then a fresh PPO trained 100k steps on the learned g alone",
          ["seed", "AIRL policy", "fresh PPO on g", "fresh, normalized (target ≥ 0.9)", "train s"], rows)


def cmd_init(args, reuse):
    import shutil

    from ascent.algorithms.ppo import PPO
    from ascent.algorithms.sac import SAC
    from ascent.imitation.bc import BC

    def wanted(key):
        return not args.only or key in args.only.split(",")

    scratch = {}  # (env, seed): PPO's row from scratch (measured once for both CartPole starts)

    def ppo_rows(task, env, bc_run, seed, steps, eval_every, target):
        for start in ("scratch", "bc"):
            if start == "scratch" and (env, seed) in scratch:
                rows.append([task, *scratch[env, seed]])
                continue
            hp = {"init_from": str(bc_run)} if start == "bc" else {}
            shutil.rmtree(CACHE / f"ppo-{env}-{start}-s{seed}", ignore_errors=True)  # (an interrupted earlier one)
            agent = PPO(env, seed=seed, verbose=0, run_dir=CACHE / f"ppo-{env}-{start}-s{seed}", eval_every=eval_every,
                        eval_episodes=10, checkpoint_every=0, **hp)
            agent.learn(steps, progress_bar=False)
            rows.append([task, start, seed, fmt(first_step(eval_rows(agent), target), "d"),
                         fmt(lowest_after(eval_rows(agent), target)), f"{evaluate(agent):.1f}"])
            if start == "scratch":
                scratch[env, seed] = rows[-1][1:]
            _clear(agent)

    rows = LiveRows()
    for seed in range(args.seeds):
        # PPO's presets as they are, BC without observation standardization like them (one episode's statistics
        # are too narrow to freeze; measured with them: 16k steps to 475 against 8k from scratch)
        if wanted("ppo"):  # BC from 1 episode of the expert
            bc_run = CACHE / f"bc-cartpole-1ep-raw-s{seed}"
            if not (bc_run / "model.pt").exists():
                BC("CartPole-v1", seed=seed, verbose=0, run_dir=bc_run, dataset=dataset("cartpole", 1, reuse),
                   n_episodes=1, eval_every=0, normalize_obs=False).learn(5000, progress_bar=False)
            ppo_rows("PPO CartPole-v1 (≥ 475), BC from 1 expert episode", "CartPole-v1", bc_run, seed, 100_000, 2048, 475)
        if wanted("weak"):  # BC from 10 episodes of a weak demonstrator (PPO after 6,144 steps)
            bc_run = CACHE / f"bc-cartpole-weak-s{seed}"
            if not (bc_run / "model.pt").exists():
                BC("CartPole-v1", seed=seed, verbose=0, run_dir=bc_run, dataset=dataset("cartpole-weak", 10, reuse),
                   eval_every=0, normalize_obs=False).learn(5000, progress_bar=False)
            ppo_rows("PPO CartPole-v1 (≥ 475), BC from 10 episodes of a weak demonstrator", "CartPole-v1", bc_run, seed,
                     100_000, 2048, 475)
        if wanted("pendulum"):  # PPO's Gaussian policy from BC of the SAC expert
            bc_run = CACHE / f"bc-pendulum-ac-raw-s{seed}"
            if not (bc_run / "model.pt").exists():
                BC("Pendulum-v1", seed=seed, verbose=0, run_dir=bc_run, dataset=dataset("pendulum", 10, reuse),
                   eval_every=0, normalize_obs=False).learn(20_000, progress_bar=False)
            ppo_rows("PPO Pendulum-v1 (≥ -200), BC from 10 expert episodes", "Pendulum-v1", bc_run, seed, 150_000, 4096,
                     -200)
        if not wanted("sac"):
            continue
        bc_sac = CACHE / f"bc-pendulum-sac-s{seed}"
        if not (bc_sac / "model.pt").exists():
            BC("Pendulum-v1", seed=seed, verbose=0, run_dir=bc_sac, dataset=dataset("pendulum", 10, reuse), policy="sac",
               net_arch=(256, 256), activation="relu", eval_every=0).learn(20_000, progress_bar=False)
        for start in ("scratch", "bc"):
            hp = {"init_from": str(bc_sac)} if start == "bc" else {}
            shutil.rmtree(CACHE / f"sac-{start}-s{seed}", ignore_errors=True)
            agent = SAC("Pendulum-v1", seed=seed, verbose=0, run_dir=CACHE / f"sac-{start}-s{seed}", eval_every=1000,
                        eval_episodes=10, checkpoint_every=0, normalize_obs=True, **hp)
            agent.learn(20_000, progress_bar=False)
            rows.append(["SAC Pendulum-v1 (≥ -200), BC from 10 expert episodes", start, seed,
                         fmt(first_step(eval_rows(agent), -200), "d"), fmt(lowest_after(eval_rows(agent), -200)),
                         f"{evaluate(agent):.1f}"])
            _clear(agent)
    table("RL started from imitation (init_from=BC run) vs from scratch: env steps to the target (eval every 2048 / 4096 "
          "/ 1000 steps, 10 episodes)", ["task", "start", "seed", "steps to target", "lowest eval after it",
                                           "final return (50 ep.)"], rows)


class LiveRows(list):
    """Rows also printed as they come (a long section's partial results survive an interruption)."""

    def append(self, row) -> None:
        super().append(row)
        print("row: | " + " | ".join(str(c) for c in row) + " |", flush=True)


def _clear(agent) -> None:
    import shutil

    shutil.rmtree(agent.run.path, ignore_errors=True)


def cmd_peer(args, reuse):
    subprocess.run(["bash", str(ROOT / "benchmarks" / "setup_imitation.sh")], check=True)  # (once: .venv-imitation)
    rows = LiveRows()
    for name, algo, steps in (("cartpole", "bc", None), ("pendulum", "bc", None), ("cartpole", "gail", 300_000),
                              ("pendulum", "gail", 1_000_000)):
        if args.only and f"{algo}:{name}" not in args.only.split(","):
            continue
        rand, expert = scores(name, reuse)
        data = dataset(name, 10, reuse)
        for seed in range(args.first_seed, args.seeds):
            cmd = [str(PEER_PYTHON), str(ROOT / "benchmarks" / "imitation_peer.py"), "--algo", algo, "--env",
                   EXPERTS[name][1], "--dataset", data, "--seed", str(seed), "--json"]
            if steps:
                cmd += ["--steps", str(steps)]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            peer = json.loads(out.stdout.strip().splitlines()[-1])
            peer_total = time.perf_counter() - t0
            t0 = time.perf_counter()
            if algo == "bc":
                agent = run_bc(name, 10, seed, reuse)
            else:
                agent = run_adversarial("gail", EXPERTS[name][1], data, steps, seed, CACHE / f"peer-gail-{name}-s{seed}")
            ours = evaluate(agent)
            ours_total = time.perf_counter() - t0
            rows.append([f"{algo.upper()} {EXPERTS[name][1]}", seed,
                         f"{normalized(ours, rand, expert):.3f}", f"{normalized(peer['mean_return'], rand, expert):.3f}",
                         f"{agent.train_seconds:.1f}", f"{peer['train_seconds']:.1f}",
                         f"{agent.train_seconds / peer['train_seconds']:.2f}", f"{ours_total:.0f} / {peer_total:.0f}"])
    table("ascent vs `imitation` 1.0.1 (same expert episodes, 10 each; each library's recommended settings; one torch "
          "thread each; normalized return over 50 episodes)",
          ["task", "seed", "ascent", "imitation", "ascent train s", "imitation train s", "time ratio", "total s (ascent / "
           "imitation, with imports and evaluation)"], rows)


SECTIONS = {"experts": cmd_experts, "bc": cmd_bc, "dagger": cmd_dagger, "gail": cmd_gail, "airl": cmd_airl,
            "init": cmd_init, "peer": cmd_peer}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=sorted(SECTIONS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="gail, peer: seeds first-seed .. seeds-1 only")
    p.add_argument("--only", default=None, help="experts: these experts only (comma list of cartpole, pendulum, "
                   "halfcheetah, cartpole-weak); peer: these tasks only (bc:cartpole, bc:pendulum, gail:cartpole, "
                   "gail:pendulum); init: ppo, weak, pendulum, sac")
    p.add_argument("--halfcheetah-run", default=None, help="reuse this run directory as the HalfCheetah expert")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    CACHE.mkdir(parents=True, exist_ok=True)
    reuse = {"halfcheetah": args.halfcheetah_run} if args.halfcheetah_run else {}
    SECTIONS[args.section](args, reuse)


if __name__ == "__main__":
    main()

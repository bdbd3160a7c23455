"""Fault matrix: what a run of `ascent train` keeps when it is interrupted, crowded or starved of disk.

  python benchmarks/faults.py [--quick] [--seed S] [--keep]

Every case runs the CLI (`ascent train ALGO --env ENV --steps N --run-dir D --no-progress --set ...`)
in fresh subprocesses, with small settings (ppo CartPole-v1, sac Pendulum-v1, dqn CartPole-v1), and
prints one markdown table row per case:

  SIGINT / SIGTERM / SIGKILL  the signal is sent after a seeded random delay (a random fraction of the
                     run's remaining time, measured from its first metrics rows); then `ascent resume D`.
                     SIGINT/SIGTERM must exit 128+signal having saved the iteration under way (steps lost
                     0); SIGKILL may lose at most one checkpoint interval (`checkpoint_every`).
  2nd writer: ...    while a first `ascent train` runs into D, a second `ascent train`, `ascent train
                     --overwrite` and `ascent resume` into D must be refused (exit 2, one line); the row
                     "1st writer" then says whether the first run finished unharmed.
  full disk          the run dir lies on a small tmpfs that the growing replay checkpoints fill: exit 2,
                     one line naming the disk, no traceback, and checkpoints/last.pt must still load.
  read-only: ...     an interrupted run on a tmpfs remounted read-only: train, eval --video and resume
                     must exit 2 with one line; plain eval (which writes nothing) must work.

Columns: exit code; what was kept (checkpoint step / model.pt step / replay file step); steps lost (the
process's last logged or reported step minus the checkpoint's num_steps); whether the resume reached
the target; whether metrics.csv is consistent (steps strictly increasing, no duplicates, last row at
the target); notes (FAIL: ... names each failed check; a traceback in stderr is always a failure).
The mounts need root; without them those rows say "not run: <reason>". Exits 1 if a goal fails.
With --quick only ppo is signalled, with fewer steps.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("ascent")
ASCENT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ascent.cli"]
TIMEOUT = 300  # seconds any one subprocess may take

# algorithm: (env, --preset, env steps, checkpoint_every, --set overrides)
ALGOS = {
    "ppo": ("CartPole-v1", "none", 30_720, 4096, ["n_envs=2", "n_steps=64", "batch_size=64"]),
    "sac": ("Pendulum-v1", "none", 6_000, 1000, ["net_arch=32,32", "learning_starts=100", "batch_size=64",
                                                  "log_interval=50"]),
    "dqn": ("CartPole-v1", "none", 30_000, 4000, ["learning_starts=200", "train_freq=4", "log_interval=25"]),
}
G_STOP, G_KILL = "SIGINT/SIGTERM lose 0 steps", "SIGKILL loses at most one checkpoint interval"
G_TORN, G_ERR = "nothing silently overwritten or torn", "OS errors: exit 2, one line, no traceback"
GOALS = (G_STOP, G_KILL, G_TORN, G_ERR)


class Proc:
    """One `ascent ...` subprocess, its stdout/stderr in files of the log folder."""

    def __init__(self, args: list[str], logs: Path, name: str):
        self.err_path = logs / f"{name}.err"
        with open(logs / f"{name}.out", "w") as out, open(self.err_path, "w") as err:
            self.p = subprocess.Popen([*ASCENT, *map(str, args)], stdout=out, stderr=err, cwd=ROOT)
        self.pid, self.rc = self.p.pid, None

    def wait(self) -> int:
        try:
            self.rc = self.p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.rc = self.p.wait()
            with self.err_path.open("a") as f:
                f.write(f"\n[faults.py: killed after {TIMEOUT} s]\n")
        return self.rc

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")


def train_args(algo: str, run_dir: Path, steps: int | None = None, sets: list[str] = ()) -> list:
    env, preset, default_steps, every, overrides = ALGOS[algo]
    sets = [*overrides, f"checkpoint_every={every}", "checkpoint_seconds=0", *sets]
    return ["train", algo, "--env", env, "--preset", preset, "--steps", steps or default_steps, "--run-dir", run_dir,
            "--no-progress", "--eval-episodes", 1, *(x for s in sets for x in ("--set", s))]


def csv_rows(run_dir: Path) -> list[dict]:
    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def csv_steps(run_dir: Path) -> list[int]:
    """The steps column (a torn row counts as -1, which breaks "strictly increasing")."""
    out = []
    for r in csv_rows(run_dir):
        try:
            out.append(int(float(r["steps"])))
        except (TypeError, ValueError, KeyError):
            out.append(-1)
    return out


def csv_check(run_dir: Path, target: int) -> tuple[bool, str]:
    s = csv_steps(run_dir)
    if not s:
        return False, "no rows"
    if len(set(s)) != len(s):
        return False, "duplicate steps"
    if any(a >= b for a, b in zip(s, s[1:])):
        return False, "steps not increasing"
    if s[-1] != target:
        return False, f"last row {s[-1]}, not {target}"
    return True, "yes"


def step_of(path: Path) -> int | None:
    """A checkpoint's num_steps; None when there is no file, -1 when it does not read."""
    from ascent.core.checkpoint import load_checkpoint

    try:
        return load_checkpoint(path)["num_steps"] if path.exists() else None
    except Exception:  # (CheckpointError, or a file vanishing under a concurrent writer)
        return -1


def kept(run_dir: Path) -> str:
    ck = run_dir / "checkpoints" / "last.pt"
    buffers = sorted(ck.parent.glob("last.replay*.pt"))  # (the one last.pt names: the newest)
    parts = [f"{name} {step_of(p)}" for name, p in (("ckpt", ck), ("model.pt", run_dir / "model.pt"),
                                                      ("replay", buffers[-1] if buffers else ck.with_name("none")))
             if p.exists()]
    return " / ".join(parts) or "nothing"


def wait_for(pred, proc: Proc, timeout: float = TIMEOUT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.p.poll() is None:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def one_error_line(err: str) -> str | None:
    """The stderr's only line, if it is a single `ascent: error: ...` line (else None)."""
    lines = [line for line in err.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 and lines[0].startswith("ascent: error:") else None


def new_row(fault: str, algo: str) -> dict:
    return {"fault": fault, "algo": algo, "rc": "-", "kept": "-", "lost": "-", "resumed": "-", "csv": "-",
            "notes": [], "fails": {}}


def check(row: dict, goal: str, ok: bool, why: str) -> None:
    row["fails"].setdefault(goal, [])
    if not ok:
        row["fails"][goal].append(why)


def no_traceback(row: dict, goal: str, *procs: Proc) -> None:
    for p in procs:
        check(row, goal, "Traceback" not in p.err, f"traceback in stderr of {p.err_path.name}")


def signal_row(algo: str, sig: signal.Signals, rng: random.Random, work: Path) -> dict:
    target, every = ALGOS[algo][2], ALGOS[algo][3]
    row, d, goal = new_row(sig.name, algo), work / f"{algo}-{sig.name}", G_KILL if sig == signal.SIGKILL else G_STOP
    fraction = rng.uniform(0.1, 0.75)
    p = Proc(train_args(algo, d), work, d.name + "-train")
    if not wait_for(lambda: csv_rows(d), p):
        p.wait()
        check(row, goal, False, f"no metrics row appeared (exit {p.rc}): {p.err.strip()[-200:]}")
        return row
    time.sleep(0.5)  # a few rows, to measure the speed
    last = (csv_rows(d) or [{}])[-1]
    rate = float(last.get("steps_per_s") or 1000)
    delay = fraction * max(target - int(float(last.get("steps", 0))), 0) / max(rate, 1.0)
    time.sleep(delay)
    if p.p.poll() is not None:
        check(row, goal, False, "the run finished before the signal (raise its steps)")
    p.p.send_signal(sig)
    row["rc"] = p.wait()
    row["notes"].append(f"signal after {delay + 0.5:.1f} s")
    reported = re.search(r"at step (\d+) of", p.err)
    logged = max(csv_steps(d), default=0)
    ck = step_of(d / "checkpoints" / "last.pt")
    row["kept"], row["lost"] = kept(d), max(logged, int(reported.group(1)) if reported else 0) - (ck or 0)
    if sig == signal.SIGKILL:
        check(row, goal, row["rc"] == -signal.SIGKILL, f"exit {row['rc']}, not -9")
        check(row, goal, row["lost"] <= every, f"lost {row['lost']} > checkpoint_every {every}")
        if ck is None:
            row["notes"].append("killed before the first checkpoint")
    else:
        check(row, goal, row["rc"] == 128 + sig, f"exit {row['rc']}, not {128 + sig}")
        check(row, goal, reported is not None, "no 'saved ... at step N' message")
        check(row, goal, row["lost"] == 0, f"lost {row['lost']} steps")
        check(row, goal, ck is not None and step_of(d / "model.pt") == ck, "model.pt missing or not at the checkpoint")
    r = Proc(["resume", d, "--no-progress"], work, d.name + "-resume")
    r.wait()
    final = step_of(d / "checkpoints" / "last.pt")
    row["resumed"] = "yes" if r.rc == 0 and final == target else f"no (exit {r.rc}, at {final})"
    ok, row["csv"] = csv_check(d, target)
    if ck is not None or sig != signal.SIGKILL:  # (a run killed before any checkpoint has nothing to resume)
        check(row, goal, r.rc == 0 and final == target, f"resume: {one_error_line(r.err) or 'exit ' + str(r.rc)}")
        check(row, goal, ok, f"metrics.csv: {row['csv']}")
    elif one_error_line(r.err) is None or r.rc != 2:
        check(row, goal, False, "resume without a checkpoint was not refused with one line")
    no_traceback(row, goal, p, r)
    return row


def second_writers(work: Path) -> list[dict]:
    """A second train / train --overwrite / resume while a first train writes the same run dir."""
    algo, d = "ppo", work / "two-writers"
    target = ALGOS[algo][2] * 2
    first = Proc(train_args(algo, d, steps=target), work, "two-writers-first")
    rows = []
    if not wait_for(lambda: (d / "checkpoints" / "last.pt").exists(), first):
        first.wait()
        row = new_row("2nd writer", algo)
        check(row, G_TORN, False, f"the first run wrote no checkpoint (exit {first.rc})")
        return [row]
    for label, args in (("train", train_args(algo, d)), ("train --overwrite", train_args(algo, d) + ["--overwrite"]),
                        ("resume", ["resume", d, "--no-progress"])):
        row = new_row(f"2nd writer: {label}", algo)
        second = Proc(args, work, f"two-writers-{label.replace(' --', '-')}")
        row["rc"] = second.wait()
        line = one_error_line(second.err)
        row["notes"].append(f"`{line}`" if line else f"stderr: {second.err.strip()[-160:]!r}")
        check(row, G_TORN, first.p.poll() is None, "the first run had ended: inconclusive (raise its steps)")
        check(row, G_TORN, row["rc"] == 2 and line is not None, "not refused with exit 2 and one line")
        if label != "train":  # (plain train is refused earlier: the dir holds a run)
            check(row, G_TORN, f"PID {first.pid}" in (line or ""), f"the refusal does not name PID {first.pid}")
        no_traceback(row, G_TORN, second)
        rows.append(row)
    row = new_row("1st writer (during the above)", algo)
    row["rc"], row["kept"] = first.wait(), kept(d)
    ok, row["csv"] = csv_check(d, target)
    check(row, G_TORN, row["rc"] == 0, f"exit {row['rc']}")
    check(row, G_TORN, step_of(d / "model.pt") == target, "model.pt missing or not at the target")
    check(row, G_TORN, ok, f"metrics.csv: {row['csv']}")
    no_traceback(row, G_TORN, first)
    return rows + [row]


def mount(*args: str) -> str | None:
    """None, or why `mount ARGS` failed."""
    if os.geteuid() != 0:
        return "not root"
    try:
        r = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount exited {r.returncode}")


def unmount(path: Path) -> None:
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)


def full_disk(work: Path, size: str = "1m") -> list[dict]:
    algo, mnt = "dqn", work / "tmpfs-full"
    row = new_row(f"full disk (tmpfs {size})", algo)
    mnt.mkdir()
    why = mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt))
    if why:
        row["notes"].append(f"not run: {why}")
        return [row]
    try:
        d = mnt / "run"
        p = Proc(train_args(algo, d, steps=200_000, sets=["checkpoint_every=1000"]), work, "full-disk")
        row["rc"], row["kept"] = p.wait(), kept(d)
        line = one_error_line(p.err)
        row["notes"].append(f"`{line}`" if line else f"stderr: {p.err.strip()[-200:]!r}")
        check(row, G_ERR, row["rc"] == 2 and line is not None, f"exit {row['rc']} and not one error line")
        check(row, G_ERR, "disk full" in (line or "") and str(mnt) in (line or ""), "the line names no disk/path")
        no_traceback(row, G_ERR, p)
        try:
            import ascent

            agent = ascent.load(d / "checkpoints" / "last.pt", verbose=0)
            row["notes"].append(f"last.pt loads (step {agent.num_steps})")
        except Exception as err:  # what a user would meet on `ascent resume`
            check(row, G_TORN, False, f"last.pt does not load: {type(err).__name__}: {str(err)[:160]}")
        stray = [p.name for p in d.rglob("*.tmp")]
        check(row, G_TORN, not stray, f"temporary files left: {stray}")
    finally:
        unmount(mnt)
    return [row]


def read_only(work: Path) -> list[dict]:
    algo, mnt = "ppo", work / "tmpfs-ro"
    mnt.mkdir()
    why = mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt))
    cases = ("train", "eval --video", "resume", "eval (writes nothing)")
    if why:
        return [dict(new_row(f"read-only: {c}", algo), notes=[f"not run: {why}"]) for c in cases]
    try:
        d = mnt / "run"
        p = Proc(train_args(algo, d), work, "read-only-setup")
        if wait_for(lambda: (d / "checkpoints" / "last.pt").exists(), p):
            p.p.send_signal(signal.SIGINT)
        p.wait()
        why = mount("-o", "remount,ro", str(mnt))
        if why or p.rc != 128 + signal.SIGINT:
            reason = why or f"the interrupted setup run exited {p.rc}"
            return [dict(new_row(f"read-only: {c}", algo), notes=[f"not run: {reason}"]) for c in cases]
        rows = []
        for case, args in zip(cases, (train_args(algo, mnt / "new"), ["eval", d, "--video", "--episodes", 1],
                                      ["resume", d, "--no-progress"], ["eval", d, "--episodes", 1])):
            row = new_row(f"read-only: {case}", algo)
            q = Proc(args, work, "read-only-" + case.split()[0] + ("-video" if "video" in case else ""))
            row["rc"], row["kept"] = q.wait(), kept(d)
            line = one_error_line(q.err)
            if case.startswith("eval ("):
                check(row, G_ERR, row["rc"] == 0, f"exit {row['rc']}: {q.err.strip()[-160:]!r}")
            else:
                row["notes"].append(f"`{line}`" if line else f"stderr: {q.err.strip()[-200:]!r}")
                check(row, G_ERR, row["rc"] == 2 and line is not None, f"exit {row['rc']} and not one error line")
            no_traceback(row, G_ERR, q)
            rows.append(row)
        return rows
    finally:
        unmount(mnt)


def table(rows: list[dict]) -> str:
    out = ["| fault | algorithm | exit code | kept (ckpt / model.pt / replay) | steps lost | resume completed "
           "| CSV consistent | notes |", "|" + "---|" * 8]
    for r in rows:
        fails = [f"FAIL: {w}" for ws in r["fails"].values() for w in ws]
        notes = "; ".join(fails + r["notes"]).replace("|", "\\|").replace("\n", " ")
        out.append(f"| {r['fault']} | {r['algo']} | {r['rc']} | {r['kept']} | {r['lost']} | {r['resumed']} "
                   f"| {r['csv']} | {notes} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="signal only ppo, with fewer steps")
    ap.add_argument("--seed", type=int, default=0, help="seeds the signal delays")
    ap.add_argument("--keep", action="store_true", help="keep the run dirs and logs (printed at the end)")
    args = ap.parse_args()
    rng, start = random.Random(args.seed), time.perf_counter()
    if args.quick:
        for algo in ALGOS:
            env, preset, steps, every, sets = ALGOS[algo]
            ALGOS[algo] = (env, preset, steps // 2, every // 2, sets)
    work = Path(tempfile.mkdtemp(prefix="ascent-faults-"))
    rows = []
    try:
        for algo in (["ppo"] if args.quick else ALGOS):
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                rows.append(signal_row(algo, sig, rng, work))
                print(f"[{time.perf_counter() - start:5.0f} s] {sig.name} {algo} done", file=sys.stderr, flush=True)
        for case in (second_writers, full_disk, read_only):
            rows += case(work)
            print(f"[{time.perf_counter() - start:5.0f} s] {case.__name__} done", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    print()
    failed = False
    for goal in GOALS:
        checked = [r for r in rows if goal in r["fails"]]
        bad = [f"{r['fault']} {r['algo']}: {'; '.join(r['fails'][goal])}" for r in checked if r["fails"][goal]]
        failed |= bool(bad)
        verdict = f"FAIL ({len(bad)} of {len(checked)} rows): " + " | ".join(bad) if bad else f"ok ({len(checked)} rows)"
        print(f"- {goal}: {verdict if checked else 'not run'}")
    not_run = sum(any(n.startswith("not run") for n in r["notes"]) for r in rows)
    print(f"\n{len(rows)} rows ({not_run} not run) in {time.perf_counter() - start:.0f} s, seed {args.seed}"
          + (f"; files kept in {work}" if args.keep else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

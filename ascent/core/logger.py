"""Run logging: metrics to CSV and TensorBoard, and a live progress bar."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

# TensorBoard groups: episode statistics under rollout/, timing under time/, the rest under train/.
_GROUPS = {"episode_return": "rollout", "episode_length": "rollout", "episode_return_100": "rollout",
           "eval_return": "eval", "eval_return_std": "eval", "steps_per_s": "time", "wall_time": "time"}


class MetricsLog:
    """Appends one row per iteration to `metrics.csv` and the TensorBoard event file of a run dir.

    The CSV's columns are those of the first row; a later row with a new column rewrites the file
    with the wider header (rare: e.g. the first evaluation)."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, purge_step: int | None = None):
        """purge_step: TensorBoard hides the run's earlier events from this step on (a resumed run)."""
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "metrics.csv"
        self.columns: list[str] = []
        if self.csv_path.exists():
            with open(self.csv_path, newline="") as f:
                self.columns = next(csv.reader(f), [])
        self._file = open(self.csv_path, "a", newline="")
        self._writer = None if not self.columns else csv.DictWriter(self._file, self.columns, restval="")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tb"), flush_secs=10, purge_step=purge_step)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"steps": step, **metrics}
        try:
            if self._writer is None or any(k not in self.columns for k in row):
                self._widen([k for k in row if k not in self.columns])
            self._writer.writerow({k: _fmt(v) for k, v in row.items()})
            self._file.flush()
        except OSError as err:  # (a full disk: name the file, the write itself does not)
            raise OSError(err.errno, err.strerror, str(err.filename or self.csv_path)) from None
        if self.tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(f"{_GROUPS.get(key, 'train')}/{key}", value, step)

    def _widen(self, new: list[str]) -> None:
        self._file.close()
        rows = read_csv(self.csv_path) if self.columns else []
        self.columns = self.columns + new
        self._file = open(self.csv_path, "w", newline="")
        self._writer = csv.DictWriter(self._file, self.columns, restval="")
        self._writer.writeheader()
        for r in rows:
            self._writer.writerow(r)

    def close(self) -> None:
        self._file.close()
        if self.tb is not None:
            self.tb.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def truncate_csv(path: str | Path, max_step: int) -> None:
    """Drop rows logged after `max_step` (the steps a resumed run will redo)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames or [], [r for r in reader if int(float(r["steps"])) <= max_step]
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


class ProgressBar:
    """tqdm bar over env steps showing steps/s and the recent mean episode return."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = ""):
        self.bar = tqdm(total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True,
                        disable=not enabled, desc=desc, file=sys.stderr, mininterval=0.5, smoothing=0.1)

    def update(self, n: int, recent_return: float | None) -> None:
        if recent_return is not None and not self.bar.disable:
            self.bar.set_postfix_str(f"return={recent_return:.1f}", refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()

"""Checkpoints: written atomically (temp file, fsync, rename), read with clear errors.

Loading uses torch's weights-only unpickler, so a foreign or malicious file cannot run code; it
holds only tensors and plain Python values.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ascent.errors import CheckpointError

FORMAT = "ascent-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` so that a crash at any moment leaves either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, f)
            except RuntimeError as err:  # torch's zip writer reports a failed write (a full disk) as a RuntimeError
                cause = err.__context__ or err.__cause__
                if isinstance(cause, OSError):
                    raise OSError(cause.errno, cause.strerror, tmp) from None
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # (a full disk fails in flush or close too, without naming the file)
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, or raise CheckpointError saying what is wrong."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass a checkpoint file (or use a run directory with `ascent eval/resume`)")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler raises many types on garbage (IndexError, KeyError, ...)
        text = str(err).strip()
        blocked = [line.strip() for line in text.splitlines() if "GLOBAL" in line]
        if text.startswith("Weights only load failed") and blocked:  # a pickle that would run code
            raise CheckpointError(
                f"{path} was refused: it asks to run code or build objects an ascent checkpoint never holds "
                f"({blocked[0]}); do not load files you cannot trust"
            ) from None
        first = text.splitlines()[0] if text else type(err).__name__
        raise CheckpointError(
            f"{path} is not a readable ascent checkpoint (corrupt, truncated or not made by ascent): {first[:200]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not an ascent checkpoint (no '{FORMAT}' marker)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer ascent (format {payload['format_version']} > {FORMAT_VERSION}); upgrade ascent"
        )
    return payload

"""Process-wide torch settings, set in this one place when an agent is built.

torch's thread count and its floating-point mode are global to the process, not to an agent: the
last agent built decides them for every agent of the process.
"""

from __future__ import annotations

import torch


def configure_torch(threads: int) -> None:
    """torch intra-op threads (small MLPs run fastest on one), and subnormal floats flushed to zero:
    Adam's second moments of parameters whose gradient is often zero (dead ReLUs, unused inputs)
    decay into subnormals, which x86 computes ~100x slower; a DQN update spent 0.5 ms of its 1.7 ms
    in Adam until they were flushed (benchmarks/RESULTS.md)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)

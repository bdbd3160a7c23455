"""Mixed precision of the network passes: bfloat16 matmuls on CPUs that compute them natively.

One switch, `precision` ("auto" | "fp32" | "bf16"), resolved once per agent; `autocast(precision)`
is the one context every network pass of an algorithm runs under.
"""

from __future__ import annotations

import contextlib

import torch

from ascent.errors import ConfigError


def bf16_supported() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 matmuls
    are emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """'auto' -> 'bf16' where the networks run on a CPU that computes it natively, else 'fp32'.
    bf16 is the CPU's: on a GPU it is refused (a ConfigError), fp32 or auto run there."""
    on_cpu = torch.device(device).type == "cpu"
    if precision == "auto":
        return "bf16" if on_cpu and bf16_supported() else "fp32"
    if precision == "bf16" and not on_cpu:
        raise ConfigError(f"precision=bf16 runs the CPU's bfloat16 matmuls; on device {device} use precision=fp32 "
                          "(or auto)")
    return precision


def autocast(precision: str):
    """The context a network runs its hidden layers under: with 'bf16', matmuls in bfloat16 on the
    CPU (weights stay fp32 masters; each weight is cast once per region). The networks that take a
    `precision` (off-policy actors, QEnsemble, QNetwork) enter it themselves and compute their
    output layer in fp32 outside it, so Q values and the targets built from them keep full
    precision; algorithms never call it."""
    if precision != "bf16":  # a disabled torch.autocast still costs its enter/exit on every pass
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)



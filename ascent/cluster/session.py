"""One Ray session per process: a local Ray by default, an existing cluster by address.

`ensure_ray(address)` starts or joins Ray once per process (later calls check they ask for the same
place); `shutdown_ray()` ends the session this process started or joined. Where no address is given
(None or ""), `RAY_ADDRESS` is read, and without it a local Ray starts with the dashboard off and
as many CPUs as the machine has; "local" asks for that local Ray whatever RAY_ADDRESS says. An
address names a cluster started with `ray start --head` ("auto": the one on this machine;
"HOST:PORT": its GCS). An address that cannot be reached is a
ClusterError within seconds, not a hang: the GCS port is tried first with a short timeout.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading

from ascent.errors import ClusterError

CONNECT_TIMEOUT_S = 5.0
_state: dict = {"address": None, "owner": False, "ours": False}
_lock = threading.Lock()


def requested_address(address: str | None) -> str | None:
    """The address a run asks for: its own, else RAY_ADDRESS, else None (a local Ray; "local" too)."""
    if (address or "").strip().lower() == "local":
        return None
    address = (address or "").strip() or os.environ.get("RAY_ADDRESS", "").strip()
    return address or None


def _check_reachable(address: str) -> None:
    """ClusterError unless a HOST:PORT address (or ray://HOST:PORT) accepts a TCP connection."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"ray address {address!r} is not HOST:PORT, ray://HOST:PORT or 'auto'")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({err.strerror or err}); start it with "
                           "`ray start --head` there, or drop --ray-address to run on a local Ray") from None


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> dict:
    """Start or join Ray for this process (once); returns the cluster's resources."""
    import ray

    address = requested_address(address)
    with _lock:
        if ray.is_initialized():
            if not _state.get("ours"):  # the user's own ray.init: run there
                return ray.cluster_resources()
            if address != _state["address"] and not (address == "auto" and _state["address"] is not None):
                where = f"the Ray cluster at {_state['address']}" if _state["address"] else "a local Ray"
                raise ClusterError(f"this process already runs on {where}; one process runs on one Ray "
                                   f"(asked for {address or 'a local Ray'}): run the other in a process of its own")
            return ray.cluster_resources()
        if address is None:
            reap_orphans()
            # (address "local": a new local Ray; ray.init would otherwise join the one RAY_ADDRESS names)
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     log_to_driver=True, configure_logging=False)
            _state.update(address=None, owner=True)
        else:
            if address != "auto":
                _check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=True, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                raise ClusterError(f"cannot join the Ray cluster at {address!r}: {first}; start one with "
                                   "`ray start --head`, or drop --ray-address to run on a local Ray") from None
            _state.update(address=address, owner=False)
        _state["ours"] = True
        atexit.register(shutdown_ray)
        return ray.cluster_resources()


def ray_processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of this user's Ray processes (workers and agents are named
    ray::..., the raylet and GCS by their binaries)."""
    found = {}
    uid = os.getuid()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if cmd.startswith("ray::") or "/ray/core/src/ray/" in cmd:
            found[int(entry)] = (parent, cmd)
    return found


def reap_orphans() -> list[int]:
    """Stop the Ray workers and agents whose raylet is gone (their parent is now init): what a local
    Ray leaves when its driver is killed with SIGKILL (its agents do not always follow the raylet;
    ray-project/ray#52385). A live session's workers are its raylet's children, never init's."""
    orphans = [pid for pid, (parent, cmd) in ray_processes().items() if parent == 1 and cmd.startswith("ray::")]
    for pid in orphans:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if orphans:
        print(f"ascent: stopped {len(orphans)} Ray processes left by a Ray session whose driver was killed",
              file=sys.stderr, flush=True)
    return orphans


def shutdown_ray() -> None:
    """End this process's Ray session (a local Ray stops with its processes; a cluster stays up)."""
    ray = sys.modules.get("ray")
    with _lock:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
        _state.update(address=None, owner=False, ours=False)

"""A supervised pool of Ray actors: a worker killed mid-run is replaced and the run goes on.

`ActorPool(make, n)` holds n actors, actor i made by `make(i, incarnation)`. Calls go out with
`submit(i, method, *args)`; `wait()` returns the calls that finished, each a `Result` with its
value, or `lost=True` where the actor died under it (SIGKILL, OOM, a lost node): that actor is
then replaced by `make(i, incarnation + 1)` (a fresh seed is the maker's business), the restart is
counted, and what it had in flight is dropped. A call that failed because another actor it called
died (a parameter server, a replay) comes back with `dependency_lost=True`: its actor lives on,
and the caller rebuilds what died. Any other exception raised inside a method propagates, as the
bug or bad input it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


def lost_errors() -> tuple[type, ...]:
    """The Ray exceptions that mean an actor (or its node) died, not that its code raised."""
    import ray.exceptions as rex

    return tuple(getattr(rex, name) for name in ("RayActorError", "WorkerCrashedError", "ObjectLostError",
                                                 "OwnerDiedError", "NodeDiedError", "ActorUnavailableError")
                 if hasattr(rex, name))


@dataclass
class Result:
    index: int  # the actor's place in the pool
    value: Any = None
    lost: bool = False  # the actor died before it answered (it has been replaced)
    dependency_lost: bool = False  # the call failed because an actor it called died (this one lives)


class ActorPool:
    """n Ray actors with restarts; see the module docstring."""

    def __init__(self, make: Callable[[int, int], Any], n: int):
        self.make = make
        self.incarnations = [0] * n
        self.actors = [make(i, 0) for i in range(n)]
        self.restarts = 0
        self._pending: dict[Any, tuple[int, int]] = {}  # ref -> (actor index, incarnation)

    def __len__(self) -> int:
        return len(self.actors)

    def ready(self, timeout: float = 120.0, probe: str = "pid") -> list[Any]:
        """Wait until every actor runs (answers `probe`); a ClusterError if they cannot be placed
        in `timeout` seconds (the cluster lacks the CPUs they ask for) instead of waiting forever."""
        import ray
        from ray.exceptions import GetTimeoutError

        refs = [getattr(actor, probe).remote() for actor in self.actors]
        try:
            return ray.get(refs, timeout=timeout)
        except GetTimeoutError:
            from ascent.errors import ClusterError

            raise ClusterError(f"{len(self.actors)} actors did not start within {timeout:.0f} s: the Ray cluster has "
                               f"{ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.available_resources().get('CPU', 0):g} "
                               "free; lower n_actors, or add nodes") from None

    def submit(self, index: int, method: str, *args: Any) -> Any:
        ref = getattr(self.actors[index], method).remote(*args)
        self._pending[ref] = (index, self.incarnations[index])
        return ref

    def in_flight(self, index: int | None = None) -> int:
        return sum(1 for i, _ in self._pending.values() if index is None or i == index)

    def wait(self, timeout: float | None = None, at_least: int = 1) -> list[Result]:
        """The calls that have finished (at least `at_least` of those in flight, unless `timeout`
        seconds pass first), in the order they finished."""
        import ray

        if not self._pending:
            return []
        ready, _ = ray.wait(list(self._pending), num_returns=min(at_least, len(self._pending)), timeout=timeout)
        return [self._collect(ref) for ref in ready]

    def call_all(self, method: str, *args: Any, retries: int = 3) -> list[Any]:
        """`method(*args)` on every actor, waiting for all; an actor that dies is replaced and asked
        again (up to `retries` times each): for the synchronous algorithms' rounds."""
        return self.call_each(method, [args] * len(self.actors), retries)

    def call_each(self, method: str, args: list[tuple], retries: int = 3) -> list[Any]:
        """`method(*args[i])` on actor i, for every actor, as call_all."""
        import ray

        refs = [self.submit(index, method, *args[index]) for index in range(len(self.actors))]
        try:  # the common case, in one wait: every actor answers
            values = ray.get(refs)
        except Exception:  # noqa: BLE001  (one died, or raised: sorted out call by call below)
            values = None
        if values is not None:
            for ref in refs:
                del self._pending[ref]
            return values
        results: dict[int, Any] = {}
        attempts = [0] * len(self.actors)
        while len(results) < len(self.actors):
            for res in self.wait(at_least=len(self._pending)):
                if not res.lost:
                    results[res.index] = res.value
                    continue
                attempts[res.index] += 1
                if attempts[res.index] > retries:
                    from ascent.errors import ClusterError
                    raise ClusterError(f"actor {res.index} died {attempts[res.index]} times in one round; see the Ray "
                                       "logs (/tmp/ray/session_latest/logs) for why")
                self.submit(res.index, method, *args[res.index])
        return [results[i] for i in range(len(self.actors))]

    def _collect(self, ref: Any) -> Result:
        import ray

        index, incarnation = self._pending.pop(ref)
        try:
            return Result(index, ray.get(ref))
        except ray.exceptions.RayTaskError as err:  # raised inside the method: its actor is alive
            if isinstance(err.cause, lost_errors()):
                return Result(index, dependency_lost=True)
            raise
        except lost_errors():
            if incarnation == self.incarnations[index]:  # the first of its calls to fail: replace it once
                self.replace(index)
            return Result(index, lost=True)

    def replace(self, index: int) -> None:
        """A new actor in place `index` (its old one's calls in flight are dropped)."""
        import ray

        old = self.actors[index]
        self._pending = {r: p for r, p in self._pending.items() if p[0] != index}
        try:
            ray.kill(old, no_restart=True)
        except Exception:  # noqa: BLE001  (already dead: nothing to kill)
            pass
        self.incarnations[index] += 1
        self.actors[index] = self.make(index, self.incarnations[index])
        self.restarts += 1

    def shutdown(self) -> None:
        """Kill every actor of the pool (their calls in flight are dropped)."""
        import ray

        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._pending.clear()
        self.actors = []


def actor_cpus(n_actors: int) -> float:
    """CPUs to ask for per actor so that n of them fit the cluster: one each where there are
    enough, an even share otherwise (16 actors of a slow simulator on 2 cores)."""
    import ray

    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(0.01, min(1.0, total / max(1, n_actors)))

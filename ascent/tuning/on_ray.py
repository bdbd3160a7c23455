"""`ascent tune --ray-address`: a study's trials as Ray tasks on a cluster, its storage where the command runs.

A remote node cannot open the study's SQLite file, so only this process (the driver) touches it: it
takes each trial as a local worker does (`reserve`, under the study's lock, a queued copy first),
samples its hyperparameters and hands them to a Ray task (one CPU, one torch thread) that trains
them with the objective a local worker runs (`trials.objective`). The driver keeps --jobs tasks in
flight, beats the heartbeats of their trials, and tells the study each outcome with the trial's
evaluations. The finalists' fresh-seed runs stay on the driver's machine (ascent.tuning.study's
final_evaluation): their run directories, OUT/final/trial-T-seed-N, are written beside the study.

Pruning mid-trial: a task sends each evaluation to a small actor, the pruner's mirror, which holds
the evaluations of the study's complete trials (the driver sends them again after each trial it
tells) and answers with the study's own MedianPruner whether to stop: the answer a local worker's
trial.should_prune() gets from the storage, since that pruner reads only the complete trials.
Nothing on the cluster opens the file: only the driver's machine needs it, and the mirror may be
placed on any node.

A task whose worker dies (killed, out of memory, its node lost) is recorded failed and queued again
with the same hyperparameters, as a killed local worker's trial is (`fail_and_queue_again`, at most
MAX_RETRIES copies): Ray itself retries nothing, so a trial never runs twice unrecorded. A driver
killed leaves its trials RUNNING; silent, they go stale and are queued again when the same command
runs again, on Ray or not. SIGINT/SIGTERM fail and queue the trials in flight at once.
"""

from __future__ import annotations

import time
from typing import Any

from ascent.cluster.session import ensure_ray, requested_address
from ascent.core.run import StopSignals
from ascent.errors import ClusterError, TrainingInterrupted
from ascent.registry import get_algorithm
from ascent.tuning.spaces import sample
from ascent.tuning.trials import (WAIT_SECONDS, TuneSettings, fail_and_queue_again, objective, open_storage, pruner,
                                  quiet_optuna, reserve, search_space, tell)

POLL_SECONDS = 1.0  # the driver looks at its tasks (and at a signal) this often


def join_ray(s: TuneSettings) -> str:
    """Join (or start) the Ray that --ray-address names: its ClusterError if it cannot be reached or
    has no CPU for a trial; returns where the trials will run, in words."""
    cpus = float(ensure_ray(s.ray_address).get("CPU", 0))
    address = requested_address(s.ray_address)
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    if cpus < 1:
        raise ClusterError(f"{where} has {cpus:g} CPUs: a trial needs one; add a node with CPUs to it")
    if cpus < s.jobs:
        print(f"ascent: {s.jobs} trials at a time asked, and {where} has {cpus:g} CPUs: the others wait for one",
              flush=True)
    return f"{where} ({cpus:g} CPUs)"


class PrunerMirror:
    """The study's pruner on Ray (an actor): the evaluations of the complete trials, as the driver
    last sent them, and Optuna's pruner over them. It holds nothing else: a restarted one answers
    "go on" until the driver's next update, as the pruner does before startup_trials complete."""

    def __init__(self, s: TuneSettings, complete: list[tuple[float, dict[int, float]]]):
        quiet_optuna()
        self.pruner = pruner(s)
        self.update(complete)

    def update(self, complete: list[tuple[float, dict[int, float]]]) -> None:
        import optuna
        from optuna.trial import TrialState, create_trial

        self.study = optuna.create_study(direction="maximize")  # (in memory)
        self.study.add_trials([create_trial(state=TrialState.COMPLETE, value=value, intermediate_values=evaluations)
                               for value, evaluations in complete])

    def should_prune(self, evaluations: dict[int, float]) -> bool:
        """Whether a running trial with these evaluations so far ({step: mean return}) stops now."""
        from optuna.trial import TrialState, create_trial

        return self.pruner.prune(self.study, create_trial(state=TrialState.RUNNING, intermediate_values=evaluations))


class RemoteTrial:
    """The trial `Evaluations` reports to inside a Ray task: its evaluations kept here (they go back
    with the outcome) and each one sent to the pruner's mirror, whose answer should_prune gives."""

    def __init__(self, mirror: Any):
        self.mirror = mirror
        self.evaluations: dict[int, float] = {}  # step -> mean return
        self.prune = False

    def report(self, value: float, step: int) -> None:
        import ray

        self.evaluations[step] = value
        self.prune = ray.get(self.mirror.should_prune.remote(dict(self.evaluations)))

    def should_prune(self) -> bool:
        return self.prune


def trial_task(s: TuneSettings, params: dict[str, Any], mirror: Any) -> tuple:
    """One trial in a Ray worker: (value, state, user attributes, evaluations, the node's address)."""
    import ray
    import torch

    torch.set_num_threads(1)  # (the task has one CPU)
    quiet_optuna()
    trial = RemoteTrial(mirror)
    value, state, attrs = objective(get_algorithm(s.algo), s, params, trial)
    return value, state, attrs, trial.evaluations, ray.util.get_node_ip_address()


def complete_evaluations(study) -> list[tuple[float, dict[int, float]]]:
    """(value, {step: evaluation}) of each complete trial: what the pruner's mirror judges by."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [(t.value, dict(t.intermediate_values)) for t in complete]


def work_on_ray(s: TuneSettings) -> None:
    """Keep --jobs trials in flight on Ray until --trials are finished, or --timeout (no trial
    starts after it); see the module docstring."""
    import optuna
    import ray

    quiet_optuna()
    space = search_space(s, get_algorithm(s.algo))
    storage = open_storage(s)
    study = optuna.load_study(study_name=s.study_name, storage=storage, pruner=pruner(s))
    mirror = ray.remote(PrunerMirror).options(num_cpus=0, max_restarts=-1, max_task_retries=-1).remote(
        s, complete_evaluations(study))
    task = ray.remote(trial_task)
    in_flight: dict[Any, Any] = {}  # task's ObjectRef -> its optuna Trial
    updated = []  # the mirror's last update, waited for before it is let go
    deadline = time.monotonic() + s.timeout if s.timeout else None
    beaten = time.monotonic()
    try:
        with StopSignals(saving=False) as stop:
            while stop.received is None:
                starting = deadline is None or time.monotonic() < deadline
                others = False  # trials running elsewhere (another command's, or stale ones) once the budget is spent
                while starting and len(in_flight) < s.jobs:
                    trial, others = reserve(study, storage, s)
                    if trial is None:
                        break
                    # max_retries=0: a dead worker's trial is failed and queued again here (recorded), not rerun by Ray
                    ref = task.options(num_cpus=1, max_retries=0, name=f"ascent-trial-{trial.number}").remote(
                        s, sample(trial, space), mirror)
                    in_flight[ref] = trial
                if not in_flight:
                    if not (starting and others):
                        return
                    time.sleep(WAIT_SECONDS)  # another's trials end, or go stale and come back to run here
                    continue
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_SECONDS)
                if time.monotonic() - beaten >= s.heartbeat_interval:
                    for trial in in_flight.values():
                        storage.record_heartbeat(trial._trial_id)
                    beaten = time.monotonic()
                for ref in done:
                    finish(study, storage, in_flight.pop(ref), ref)
                    updated = [mirror.update.remote(complete_evaluations(study))]
        raise TrainingInterrupted("interrupted", stop.received)
    except (TrainingInterrupted, KeyboardInterrupt):
        for ref, trial in in_flight.items():  # each failed and queued again now (tune() says so, and how to go on)
            ray.cancel(ref, force=True)
            fail_and_queue_again(study, storage, trial, "interrupted by a signal; queued again")
        raise
    finally:
        ray.wait(updated, timeout=POLL_SECONDS)
        ray.kill(mirror)


def finish(study, storage, trial, ref: Any) -> None:
    """Tell the study a task's outcome (its evaluations first) and print the trial's line; a task
    whose worker died: the trial failed and queued again."""
    import optuna
    import ray
    from optuna.trial import TrialState

    try:
        value, state, attrs, evaluations, node = ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # raised past the objective: a signal in the worker, or Ray's own error
        cause = err.cause if err.cause is not None else err
        why = (str(cause).strip().splitlines() or [""])[0][:300]
        if isinstance(cause, (TrainingInterrupted, KeyboardInterrupt)):
            fail_and_queue_again(study, storage, trial, "interrupted by a signal in its Ray worker; queued again")
            print(f"trial {trial.number}: interrupted in its Ray worker; queued again", flush=True)
            return
        value, state, evaluations, node = None, TrialState.FAIL, {}, None
        attrs = {"failed_because": f"{type(cause).__name__}: {why}"}
    except ray.exceptions.RayError as err:  # its worker or node died (WorkerCrashedError, NodeDiedError, OOM, ...)
        fail_and_queue_again(study, storage, trial, f"its Ray worker died ({type(err).__name__}); queued again")
        print(f"trial {trial.number}: its Ray worker died ({type(err).__name__}); queued again with the same "
              "hyperparameters", flush=True)
        return
    try:
        for step, evaluation in sorted(evaluations.items()):
            trial.report(evaluation, step)
        for name, text in {**attrs, "worker": f"ray {node}" if node else "ray"}.items():
            trial.set_user_attr(name, text)
    except optuna.exceptions.UpdateFinishedTrialError:  # its heartbeat came late: failed as stale, queued again
        print(f"trial {trial.number}: found stale while it ran (its heartbeat was late); its copy runs it again",
              flush=True)
        return
    tell(study, storage, trial, value, state)

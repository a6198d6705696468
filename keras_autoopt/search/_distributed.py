"""keras-tuner's chief/worker search, made to survive a worker that dies mid-trial.

keras-tuner runs a distributed search from three environment variables read
in every process: ``KERASTUNER_TUNER_ID`` (``chief`` for the process that
serves the oracle over gRPC, any other unique id for a worker),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. Its chief hands each
worker a trial and waits for the worker to end it; a worker killed mid-trial
never does, so keras-tuner 1.4.8 waits forever and the search never ends.

Two pieces close that gap:

* `TrialLeases` (chief): each handed-out trial is a lease, renewed whenever
  its worker reports (``update_trial``, ``get_trial``). A lease older than
  ``timeout_s`` is revoked: the worker is dropped and the trial goes back to
  the oracle's retry queue, to be handed to the next worker that asks, under
  the same id and hyperparameters. While any lease is out, workers that find
  no new trial are told to wait (``IDLE``) instead of to stop, so a trial
  handed out again still has a worker to run it.
* `WorkerHeartbeat` (worker): a daemon thread that renews the lease of the
  worker's current trial every ``interval_s`` seconds, however long its
  epochs, compression or export take; it also makes an idle worker wait a
  moment before asking again.

A result that arrives for a trial that already ended (a worker presumed dead
that was only slow) is ignored: every trial ends exactly once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from keras_autoopt._backend import kt
from keras_autoopt._checks import check_positive_float
from keras_autoopt.search._reliability import ENDED_STATUSES

__all__ = ["DISTRIBUTED_ENV", "TrialLeases", "WorkerHeartbeat", "distributed_env",
           "distributed_role"]

#: The environment variables of keras-tuner's distributed mode.
DISTRIBUTED_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def _status(trial) -> str:
    return str(getattr(trial.status, "value", trial.status))


def distributed_role() -> str | None:
    """This process's part in a distributed search, from keras-tuner's variables.

    Returns:
        ``"chief"`` (``KERASTUNER_TUNER_ID`` contains "chief", as keras-tuner
        decides), ``"worker"``, or None when ``KERASTUNER_ORACLE_IP`` is unset.

    Raises:
        ValueError: If ``KERASTUNER_ORACLE_IP`` is set without the other two.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [name for name in DISTRIBUTED_ENV if not os.environ.get(name)]
    if missing:
        raise ValueError(
            f"Received: KERASTUNER_ORACLE_IP={os.environ['KERASTUNER_ORACLE_IP']!r} without "
            f"{', '.join(missing)}; expected all of {', '.join(DISTRIBUTED_ENV)} for a "
            "distributed search.")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def distributed_env(address: str, tuner_id: str) -> dict[str, str]:
    """keras-tuner's environment variables for ``tuner_id`` and the chief at ``address``.

    Args:
        address: ``HOST:PORT`` of the chief (the chief binds to it).
        tuner_id: ``"chief"`` or the worker's unique id.

    Returns:
        The three variables, to merge into ``os.environ``.

    Raises:
        ValueError: For an address that is not ``HOST:PORT`` with a port in
            1-65535, or an empty id.
    """
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"Received: address={address!r}; expected HOST:PORT with a port in 1-65535, "
            "e.g. 127.0.0.1:8470.")
    if not isinstance(tuner_id, str) or not tuner_id.strip():
        raise ValueError(f"Received: tuner_id={tuner_id!r}; expected a non-empty string.")
    return {"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": port}


class TrialLeases:
    """Chief side: the trial of a worker that stopped reporting is handed out again.

    Args:
        oracle: The chief's oracle (any keras-tuner ``Oracle``).
        timeout_s: Seconds without a report after which a worker is presumed
            dead and its trial handed out again. Workers run a `WorkerHeartbeat`
            reporting well within it.
        clock: Time source (seconds); tests pass a fake one.
        stream: Where the revocations are printed; None prints nothing.

    Attributes:
        revoked: One dict per revoked lease: ``trial_id``, ``tuner_id``,
            ``silent_s``.
        late_results: Trial ids whose result arrived after the trial had ended.
        handed_out: One dict per trial handed to a worker: ``trial_id``,
            ``tuner_id`` (a trial handed out again appears twice).

    Raises:
        ValueError: For a non-positive ``timeout_s``.
    """

    def __init__(self, oracle: kt.Oracle, timeout_s: float, *,
                 clock: Callable[[], float] = time.monotonic, stream=None):
        self.oracle = oracle
        self.timeout_s = check_positive_float("timeout_s", timeout_s)
        self.clock = clock
        self.stream = stream
        self.revoked: list[dict[str, Any]] = []
        self.late_results: list[str] = []
        self.handed_out: list[dict[str, str]] = []
        self._leases: dict[str, list] = {}  # trial id -> [tuner id, last report time]
        self._lock = threading.RLock()
        self._originals: dict[str, Callable] = {}

    def install(self) -> TrialLeases:
        """Wrap the oracle's trial methods (instance attributes; the class is untouched).

        Returns:
            This object.
        """
        for name in ("create_trial", "update_trial", "end_trial", "get_trial"):
            self._originals[name] = getattr(self.oracle, name)
            setattr(self.oracle, name, getattr(self, f"_{name}"))
        return self

    @property
    def leases(self) -> dict[str, str]:
        """Trial id -> id of the worker running it."""
        with self._lock:
            return {trial_id: lease[0] for trial_id, lease in self._leases.items()}

    def expire(self) -> list[str]:
        """Revoke every lease older than ``timeout_s``.

        Returns:
            The trial ids put back in the retry queue.
        """
        with self._lock:
            now = self.clock()
            revoked = []
            for trial_id, (tuner_id, seen) in list(self._leases.items()):
                if now - seen <= self.timeout_s:
                    continue
                del self._leases[trial_id]
                ongoing = self.oracle.ongoing_trials.get(tuner_id)
                if ongoing is not None and ongoing.trial_id == trial_id:
                    del self.oracle.ongoing_trials[tuner_id]
                self.oracle.tuner_ids.discard(tuner_id)
                if _status(self.oracle.trials[trial_id]) not in ENDED_STATUSES \
                        and trial_id not in self.oracle._retry_queue:
                    self.oracle._retry_queue.append(trial_id)
                    revoked.append(trial_id)
                self.revoked.append({"trial_id": trial_id, "tuner_id": tuner_id,
                                     "silent_s": round(now - seen, 1)})
                if self.stream is not None:
                    print(f"keras-autoopt chief: worker {tuner_id!r} silent for "
                          f"{now - seen:.0f}s (timeout {self.timeout_s:g}s); trial {trial_id} "
                          "is handed out again", file=self.stream, flush=True)
            if revoked:
                self.oracle.save()
            return revoked

    def _renew(self, trial_id: str) -> None:
        lease = self._leases.get(trial_id)
        if lease is not None:
            lease[1] = self.clock()

    def _create_trial(self, tuner_id: str):
        with self._lock:
            self.expire()
            trial = self._originals["create_trial"](tuner_id)
            status = _status(trial)
            if status == "RUNNING":
                self._leases[trial.trial_id] = [tuner_id, self.clock()]
                self.handed_out.append({"trial_id": trial.trial_id, "tuner_id": tuner_id})
            elif status == "STOPPED" and self._leases:
                # A running trial may still come back for retry: keep this worker.
                self.oracle.tuner_ids.add(tuner_id)
                return kt.engine.trial.Trial(self.oracle.get_space(), trial_id="idle",
                                             status="IDLE")
            return trial

    def _update_trial(self, trial_id: str, metrics, step: int = 0):
        with self._lock:
            self._renew(trial_id)
            return self._originals["update_trial"](trial_id, metrics, step=step)

    def _get_trial(self, trial_id: str):
        with self._lock:
            self._renew(trial_id)
            return self._originals["get_trial"](trial_id)

    def _end_trial(self, trial) -> None:
        with self._lock:
            if trial.trial_id in self.oracle.end_order:  # it ended already
                self.late_results.append(trial.trial_id)
                return None
            # The lease ends with this run (an INVALID trial is retried under a new one).
            self._leases.pop(trial.trial_id, None)
            return self._originals["end_trial"](trial)


class WorkerHeartbeat:
    """Worker side: renew the current trial's lease; wait a moment when told to.

    Args:
        oracle: The worker's oracle client (``tuner.oracle`` in a worker).
        interval_s: Seconds between two reports; a fraction of the chief's
            ``timeout_s`` (a quarter is a safe choice).
        idle_wait_s: Seconds to wait after an ``IDLE`` answer before asking
            again.

    Attributes:
        trials_run: Ids of the trials this worker was handed, in order.
        beats: Reports sent.

    Raises:
        ValueError: For non-positive intervals.
    """

    def __init__(self, oracle, interval_s: float, *, idle_wait_s: float = 1.0):
        self.oracle = oracle
        self.interval_s = check_positive_float("interval_s", interval_s)
        self.idle_wait_s = check_positive_float("idle_wait_s", idle_wait_s)
        self.current: str | None = None
        self.trials_run: list[str] = []
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._create = oracle.create_trial
        self._end = oracle.end_trial
        self._own = {name: name in vars(oracle) for name in ("create_trial", "end_trial")}

    def _create_trial(self, tuner_id: str):
        trial = self._create(tuner_id)
        if _status(trial) == "IDLE":
            self.current = None
            time.sleep(self.idle_wait_s)
        elif _status(trial) == "RUNNING":
            self.current = trial.trial_id
            self.trials_run.append(trial.trial_id)
        return trial

    def _end_trial(self, trial):
        self.current = None
        return self._end(trial)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            trial_id = self.current
            if trial_id is None:
                continue
            try:
                self.oracle.get_trial(trial_id)
                self.beats += 1
            except Exception:  # the chief is gone or busy; the search loop will say so
                continue

    def __enter__(self) -> WorkerHeartbeat:
        self.oracle.create_trial = self._create_trial
        self.oracle.end_trial = self._end_trial
        self._thread = threading.Thread(target=self._run, name="keras-autoopt-heartbeat",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        for name, original in (("create_trial", self._create), ("end_trial", self._end)):
            if self._own[name]:
                setattr(self.oracle, name, original)
            else:
                delattr(self.oracle, name)

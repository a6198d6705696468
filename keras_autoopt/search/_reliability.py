"""Failing trials fail alone; a broken setup stops the search before the first trial.

keras-tuner already isolates a trial that raises: the trial ends INVALID
(retried up to ``max_retries_per_trial`` times) or FAILED
(`keras_tuner.errors.FailedTrialError`: no retry), its traceback is kept as
the trial's message, and the search goes on until
``max_consecutive_failed_trials`` failures in a row. Two faults slip through
that net, and this module closes them:

* A loss that turns NaN or infinite does not raise: Keras trains on, the
  trial "completes" with garbage weights, and keras-tuner retries it when its
  score is NaN. `FailOnNonFiniteLoss` stops training at the first such batch
  and fails the trial (no retry: the same hyperparameters diverge again).
* Data that cannot fit the model (wrong sample shape, labels beyond the
  output units) fails every trial the same way: with a limit of 3 that is
  three wasted trainings and a RuntimeError that hides the cause behind a
  traceback. `check_setup` builds the HyperModel's first model and compares
  it with the data before any trial, raising `SetupError`.

keras-tuner also prints the traceback of every failing trial (``traceback.
print_exc()`` in ``Tuner._try_run_and_update_trial``) next to the one-line
``FAILED: <reason>`` progress line. `ReliableTunerMixin` keeps the traceback
in the trial's message (``trial.message``, saved in its ``trial.json``) and
prints it only in debug mode: `set_debug` or ``KERAS_AUTOOPT_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import traceback
from typing import Any

import numpy as np

from keras_autoopt._backend import keras, kt
from keras_autoopt._failure import InputError, RunStopped

__all__ = ["DEBUG_ENV", "FailOnNonFiniteLoss", "NonFiniteLossError", "SetupError",
           "check_setup", "debug_enabled", "failure_reason", "set_debug"]

#: Longest reason `failure_reason` returns.
REASON_CHARS = 300

_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit))(?::\s*(.*))?$")


#: Environment variable that turns debug mode on (``1``) when `set_debug` was not called.
DEBUG_ENV = "KERAS_AUTOOPT_DEBUG"
_ENV_TRUE = ("1", "true", "yes", "on")
_ENV_FALSE = ("", "0", "false", "no", "off")

#: `set_debug`'s choice; None follows `DEBUG_ENV`.
_debug: bool | None = None


def set_debug(enabled: bool | None) -> None:
    """Print (or not) the traceback of every failed trial of every search.

    Off by default: a failed trial shows as one ``FAILED: <reason>`` progress
    line, and its traceback is kept in its message (``trial.message``, in its
    ``trial.json``). On, the traceback is also printed on stderr as the trial
    fails. The choice holds for the process, from the next failing trial on.

    Args:
        enabled: True or False; None goes back to the environment variable
            ``KERAS_AUTOOPT_DEBUG`` (``1``/``true``/``yes``/``on`` turn debug
            mode on; unset, empty, ``0``/``false``/``no``/``off`` leave it off),
            read each time a trial fails.

    Raises:
        ValueError: If ``enabled`` is not True, False or None.
    """
    global _debug
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"Received: enabled={enabled!r}; expected True, False or None.")
    _debug = enabled


def debug_enabled() -> bool:
    """Whether failed trials print their traceback (see `set_debug`).

    Returns:
        `set_debug`'s choice if one was made, else the value of
        ``KERAS_AUTOOPT_DEBUG`` read now.

    Raises:
        ValueError: If ``KERAS_AUTOOPT_DEBUG`` holds another value than
            those `set_debug` lists.
    """
    if _debug is not None:
        return _debug
    value = os.environ.get(DEBUG_ENV, "").strip().lower()
    if value in _ENV_TRUE:
        return True
    if value in _ENV_FALSE:
        return False
    raise ValueError(
        f"Received: {DEBUG_ENV}={os.environ[DEBUG_ENV]!r}; expected one of "
        f"{', '.join(_ENV_TRUE)} (debug on), or unset, empty, {', '.join(_ENV_FALSE[1:])} "
        "(debug off).")


class NonFiniteLossError(kt.errors.FailedTrialError):
    """The training loss became NaN or infinite: the trial failed (not retried)."""


class SetupError(InputError):
    """The data and the HyperModel cannot work together: no trial could succeed."""


class SearchStopped(RunStopped):
    """The search stopped on failing trials (or none completed); its trials are kept."""


#: How keras-tuner's and `DeployableTuner`'s consecutive-failure stops begin.
_FAILURE_STOPS = ("Number of consecutive failures exceeded", "trials failed in a row")


@contextlib.contextmanager
def failures_stop_cleanly(folder: str):
    """Turn a search stopped by ``max_consecutive_failed_trials`` into `SearchStopped`.

    The message keeps the limit, adds the last trial's reason in one line
    (not its traceback) and says how to resume.

    Args:
        folder: The search's folder (named in the message).

    Raises:
        SearchStopped: For a consecutive-failure stop; other errors pass unchanged.
    """
    try:
        yield
    except RuntimeError as exc:
        text = str(exc)
        if isinstance(exc, SearchStopped) or not any(s in text for s in _FAILURE_STOPS):
            raise
        first = text.strip().splitlines()[0].rstrip(".:")
        raise SearchStopped(
            f"{first}; the last one: {failure_reason(text)}. The trials so far are kept in "
            f"{folder}: fix the cause (or raise max_consecutive_failed_trials) and run the "
            "same command to resume.") from exc


class FailOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop ``fit`` at the first batch whose loss is NaN or infinite, and fail the trial.

    Unlike ``keras.callbacks.TerminateOnNaN``, which ends training quietly and
    leaves a model that looks trained, this raises `NonFiniteLossError`
    naming the epoch, the batch and the value: keras-tuner marks the trial
    FAILED with that message and goes on with the next one.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(np.asarray(loss))
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"Training loss became {value} at epoch {self._epoch + 1}, batch {batch + 1}; "
                "the trial is stopped and marked failed (a lower learning rate or gradient "
                "clipping usually avoids it).")


def _sample_shape(data: Any) -> tuple | None:
    shape = getattr(data, "shape", None)
    return None if shape is None or len(shape) < 1 else tuple(shape[1:])


def check_setup(hypermodel: kt.HyperModel, x: Any, y: Any,
                validation_data: Any = None) -> None:
    """Check that the data fit the HyperModel before any trial trains.

    The HyperModel's model for its default hyperparameters is built once and
    compared with the arrays: the sample shape must match the model's input
    (``None`` dimensions match anything), labels must be integers in
    ``[0, units)`` of a softmax output (or one-hot rows of that width), and the
    validation split must have the training samples' shape. Inputs that are not
    arrays (``tf.data`` datasets, generators) are not checked.

    Args:
        hypermodel: The searched HyperModel.
        x: Training inputs.
        y: Training labels.
        validation_data: ``(x_val, y_val)`` or None.

    Raises:
        SetupError: If a model of the HyperModel cannot take ``x`` or predict ``y``;
            the message names the argument, the value received and what the
            model expects.
    """
    if _sample_shape(x) is None:
        return
    keras.backend.clear_session()
    model = hypermodel.build(kt.HyperParameters())
    if not isinstance(model, keras.Model) or isinstance(model.input_shape, list):
        return
    expected = tuple(model.input_shape[1:])
    pairs = [("x", x, y)]
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
        pairs.append(("validation_data", *validation_data))
    for name, inputs, labels in pairs:
        got = _sample_shape(inputs)
        if got is None:
            continue
        if len(got) != len(expected) or any(e is not None and e != g
                                             for e, g in zip(expected, got, strict=True)):
            raise SetupError(
                f"Received: {name} with samples of shape {got}; expected {expected}, the "
                f"input shape of the models {type(hypermodel).__name__} builds. No trial "
                "could train on these data, so the search stops before the first one.")
        _check_labels(name, labels, model)


def _check_labels(name: str, labels: Any, model: keras.Model) -> None:
    units = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if units is None or getattr(labels, "shape", None) is None:
        return
    labels = np.asarray(labels)
    label_name = "y" if name == "x" else f"{name}[1]"
    if labels.ndim == 2 and labels.shape[1] > 1:
        if labels.shape[1] != units:
            raise SetupError(
                f"Received: {label_name} one-hot with {labels.shape[1]} columns; expected "
                f"{units}, the output units of the models. The search stops before the "
                "first trial.")
        return
    if labels.size == 0 or not np.issubdtype(labels.dtype, np.number):
        return
    low, high = labels.min(), labels.max()
    if low < 0 or high >= units:
        raise SetupError(
            f"Received: {label_name} with labels in [{low}, {high}]; expected class indices "
            f"in [0, {units - 1}] for a model with {units} output units. The search stops "
            "before the first trial.")


def failure_reason(message: str | None) -> str | None:
    """The exception behind a failed trial, in one line, from the trial's traceback.

    keras-tuner keeps the whole traceback as the trial's message; its last
    line is often the tail of a multi-line message (the TFLite converter ends
    with a dump of its MLIR). This returns the last ``Name: message`` line of
    the traceback, without the exception's module path, with its message's
    continuation lines joined, cut at `REASON_CHARS`.

    Args:
        message: A trial's message (a traceback, or any text), or None.

    Returns:
        The reason, e.g. ``"UnsupportedLayerError: Layer 'x' (MyDense) cannot
        be wrapped ..."``; the last non-empty line when no exception line is
        found; None for an empty message.
    """
    lines = [line.rstrip() for line in (message or "").splitlines()]
    start = None
    for index, line in enumerate(lines):
        if _EXCEPTION_LINE.match(line) and not line.startswith((" ", "Traceback")):
            start = index
    if start is None:
        rest = [line.strip() for line in lines if line.strip()]
        return rest[-1][:REASON_CHARS] if rest else None
    match = _EXCEPTION_LINE.match(lines[start])
    text = " ".join([f"{match.group(1)}: {match.group(2) or ''}".strip(),
                     *(line.strip() for line in lines[start + 1:] if line.strip())])
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


#: Trial statuses after which a trial never runs again.
ENDED_STATUSES = ("COMPLETED", "FAILED")
#: Statuses of a trial that started and has not ended.
_UNFINISHED = ("RUNNING", "INVALID")


def repair_reloaded_oracle(oracle: kt.Oracle) -> dict[str, list[str]]:
    """Make a reloaded oracle agree with its trial files after a kill -9.

    keras-tuner writes a trial's ``trial.json`` and then ``oracle.json``: a
    process killed between the two leaves them disagreeing, and keras-tuner
    1.4.8 trusts ``oracle.json``. Killed while starting a trial, the trial
    file says RUNNING but the oracle never saw it start: nothing runs it
    again and the search ends one trial short. Killed while ending one, the
    trial file says COMPLETED but the oracle still lists it as running: it is
    run a second time. This puts every started, unfinished trial in the retry
    queue (it runs again, under the same id and hyperparameters) and takes
    every ended one out of it.

    Args:
        oracle: The oracle, right after ``reload``. A worker's remote oracle
            (no ``trials``) is left alone: its chief repairs its own.

    Returns:
        ``{"requeued": [...], "unqueued": [...]}``: the trial ids moved.
    """
    moved: dict[str, list[str]] = {"requeued": [], "unqueued": []}
    trials = getattr(oracle, "trials", None)
    queue = getattr(oracle, "_retry_queue", None)
    if not isinstance(trials, dict) or not isinstance(queue, list):
        return moved
    ongoing = {trial.trial_id for trial in oracle.ongoing_trials.values()}
    for trial_id in list(queue):
        if trials[trial_id].status in ENDED_STATUSES:
            queue.remove(trial_id)
            moved["unqueued"].append(trial_id)
    for trial_id, trial in sorted(trials.items()):
        status = str(getattr(trial.status, "value", trial.status))
        if status in ENDED_STATUSES and trial_id not in oracle.end_order:
            oracle.end_order.append(trial_id)
        elif status in _UNFINISHED and trial_id not in queue and trial_id not in ongoing:
            queue.append(trial_id)
            moved["requeued"].append(trial_id)
    if moved["requeued"] or moved["unqueued"]:
        oracle.save()
    return moved


class ReliableTunerMixin:
    """Tuner mixin: repairs a reloaded oracle, checks the setup, fails diverging trials.

    After keras-tuner reloads the oracle, `repair_reloaded_oracle` runs;
    `check_setup` runs before the search; `FailOnNonFiniteLoss` joins every fit.
    A trial that raises ends as keras-tuner ends it (FAILED for a
    ``FailedTrialError``, else INVALID and retried; a ``FatalError`` stops
    the search), its traceback kept as its message, but that traceback is
    printed only in debug mode (`set_debug`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        repair_reloaded_oracle(self.oracle)

    def search(self, *fit_args, **fit_kwargs):
        x = fit_args[0] if fit_args else fit_kwargs.get("x")
        y = fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y")
        debug_enabled()  # a bad KERAS_AUTOOPT_DEBUG stops here, before any trial
        check_setup(self.hypermodel, x, y, fit_kwargs.get("validation_data"))
        return super().search(*fit_args, **fit_kwargs)

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        # keras-tuner 1.4.8's method, whose `traceback.print_exc()` (under its
        # always-true `config.DEBUG`) is replaced by a print in debug mode only.
        statuses = kt.engine.trial.TrialStatus
        try:
            self._run_and_update_trial(trial, *fit_args, **fit_kwargs)
            trial.status = statuses.COMPLETED
            return
        except Exception as exc:
            if isinstance(exc, kt.errors.FatalError):
                raise
            failed = isinstance(exc, kt.errors.FailedTrialError)
            trial.status = statuses.FAILED if failed else statuses.INVALID
            trial.message = traceback.format_exc()
        if debug_enabled():
            print(f"Trial {trial.trial_id} raised (debug mode):\n{trial.message.rstrip()}",
                  file=sys.stderr, flush=True)

    def run_trial(self, trial, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, FailOnNonFiniteLoss) for c in callbacks):
            callbacks.append(FailOnNonFiniteLoss())
        return super().run_trial(trial, *args, callbacks=callbacks, **kwargs)

"""One line of progress per trial, printed by the tuners of `make_tuner`."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from keras_autoopt.search._reliability import failure_reason

#: Short names used in the one-line summaries of hyperparameters.
_SHORT_NAMES = {
    "learning_rate": "lr",
    "optimizer": "opt",
    "lr_schedule": "sched",
    "batch_size": "batch",
    "conv_blocks": "blocks",
    "kernel_size": "kernel",
    "conv_batch_norm": "bn",
    "conv_activation": "act",
    "conv_dropout": "drop",
    "head_layers": "head",
    "head_units": "head_units",
}


def format_value(value: Any) -> str:
    """Format one hyperparameter value compactly (floats to 3 significant digits).

    Args:
        value: The value.

    Returns:
        Its short text.

    """
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def summarize_hyperparameters(values: dict[str, Any], *, limit: int = 12) -> str:
    """Return ``name=value`` pairs in short form, keras-tuner's ``tuner/*`` left out.

    Args:
        values: Hyperparameter values of a trial.
        limit: Most pairs shown; the rest are counted as ``+N``.

    Returns:
        One line of text.

    """
    pairs = [
        f"{_SHORT_NAMES.get(name, name)}={format_value(value)}"
        for name, value in values.items()
        if not name.startswith("tuner/")
    ]
    extra = len(pairs) - limit
    return " ".join(pairs[:limit]) + (f" +{extra}" if extra > 0 else "")


def trial_number(trial, oracle) -> int:
    """The 1-based number of ``trial`` in its search.

    keras-tuner numbers trial ids from 0; other ids count the oracle's trials
    (a distributed worker's remote oracle, which has no trial list, gives 0).
    """
    if str(trial.trial_id).isdigit():
        return int(trial.trial_id) + 1
    trials = getattr(oracle, "trials", None) if not hasattr(oracle, "stub") else None
    return len(trials) if isinstance(trials, dict) else 0


class TrialLogger:
    """Prints ``[trial n/N]`` lines: status, metric, best so far, time, hyperparameters.

    Args:
        total: Planned number of trials, or None when the tuner decides
            (Hyperband).
        stream: Where to print; None means ``sys.stdout`` at print time.

    """

    def __init__(self, total: int | None = None, stream: TextIO | None = None):
        self.total = total
        self.stream = stream
        self._started: dict[str, float] = {}
        self._search_start = time.perf_counter()

    def trial_begin(self, trial) -> None:
        """Record the start time of ``trial``.

        Args:
            trial: A keras-tuner ``Trial``.

        """
        self._started[trial.trial_id] = time.perf_counter()

    def trial_end(self, trial, *, number: int, objective_name: str,
                  best: float | None, outcome: str | None = None) -> None:
        """Print the line of a finished trial.

        Args:
            trial: A keras-tuner ``Trial``.
            number: The trial's 1-based number in the search.
            objective_name: The metric name (e.g. ``val_accuracy``).
            best: Best score so far, or None.
            outcome: Text replacing the score part of a completed trial's
                line (a multi-objective tuner lists its objectives).

        """
        now = time.perf_counter()
        elapsed = now - self._started.pop(trial.trial_id, now)
        total = "?" if self.total is None else str(self.total)
        status = str(getattr(trial.status, "value", trial.status))
        if outcome is not None and status == "COMPLETED":
            pass
        elif trial.score is not None and status == "COMPLETED":
            outcome = f"{objective_name}={trial.score:.4f}"
            if best is not None:
                outcome += f" (best {best:.4f})"
        else:
            reason = failure_reason(trial.message)
            outcome = f"{status}" + (f": {reason}" if reason else "")
        line = (
            f"[trial {number}/{total}] {outcome} | {elapsed:.1f}s, "
            f"{now - self._search_start:.0f}s total | "
            f"{summarize_hyperparameters(trial.hyperparameters.values)}"
        )
        print(line, file=self.stream or sys.stdout, flush=True)
